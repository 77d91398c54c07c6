#!/bin/sh
# run.sh - pgcdc benchmark: throughput vs pg_recvlogical, CPU, memory, latency (docs/PERFORMANCE.md)
#
#   tests/bench/run.sh            quick smoke run (about 2 minutes)
#   tests/bench/run.sh --full     the figures in docs/PERFORMANCE.md (about 8 minutes)
#   tests/bench/run.sh --full --profile --reps 3 --workloads oltp,bulk --no-latency ...
#
# Builds pgcdc and the test broker with --buildtype=release into $PGCDC_BENCH_BUILD
# (default build-bench; PGCDC_BENCH_NO_BUILD=1 skips the build), runs tests/bench/bench.py with /usr/bin/python3 and
# writes results.json, report.md and every log to $PGCDC_BENCH_OUT (default
# $PGCDC_BENCH_BUILD/bench-results/<time>). Needs PostgreSQL 15 (pg_recvlogical,
# pgbench), psycopg2 and confluent_kafka; --profile needs perf.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${PGCDC_BENCH_BUILD:-$repo/build-bench}
case $build in /*) ;; *) build=$repo/$build ;; esac
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$repo" --buildtype=release
fi
if [ -z "${PGCDC_BENCH_NO_BUILD:-}" ]; then
    if ! log=$(ninja -C "$build" src/pgcdc tests/tools/pgcdc-testbroker 2>&1); then
        printf '%s\n' "$log" >&2
        echo "run.sh: build failed (PGCDC_BENCH_NO_BUILD=1 uses the binaries already in $build)" >&2
        exit 1
    fi
fi
out=${PGCDC_BENCH_OUT:-$build/bench-results/$(date +%Y%m%d-%H%M%S)}
PGCDC_BIN=$build/src/pgcdc
PGCDC_TESTBROKER_BIN=$build/tests/tools/pgcdc-testbroker
PYTHONDONTWRITEBYTECODE=1
export PGCDC_BIN PGCDC_TESTBROKER_BIN PYTHONDONTWRITEBYTECODE
echo "results in $out" >&2
exec /usr/bin/python3 "$repo/tests/bench/bench.py" --out "$out" "$@"
