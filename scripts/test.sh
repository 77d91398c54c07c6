#!/usr/bin/env bash
# test.sh - install what is missing, build, run every test suite, and close with "N passed, N failed[, N skipped]"
#
# Suites: unit (no network), integration (real PostgreSQL and Kafka: the test
# broker, a real Apache Kafka in KRaft mode, PostgreSQL 13 to 18),
# the unit suite (and a few snapshot cases) again under AddressSanitizer + UBSan, and the decoder's unit
# tests (every fixture cut at every byte, the fuzz corpus) under valgrind, and
# a short libFuzzer run of the decoder (clang, ASan+UBSan) so the fuzz target
# keeps building. Not run by default: "fresh", scripts/fresh-check.sh --reduced
# (the demo and a reduced suite in a brand-new minimal Debian 12; needs root),
# which .ci/run adds.
#
# PGCDC_TEST_BROKERS runs the integration suite against a real Kafka.
# PGCDC_TEST_SUITES chooses the suites (default "unit integration asan valgrind fuzz").
# PGCDC_TEST_INTEGRATION limits the integration suite to the tests named.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh || { echo "test.sh: installing dependencies failed" >&2; echo "0 passed, 1 failed"; exit 1; }

JOBS=$(nproc 2>/dev/null || echo 2)
SUITES=${PGCDC_TEST_SUITES:-"unit integration asan valgrind fuzz"}
failed_build=0

if [[ " $SUITES " == *" integration "* ]]; then
  # Apache Kafka's jars (Maven Central) and PostgreSQL 13-18 (npm), cached outside the tree
  tests/deps/fetch.sh || {
    echo "test.sh: fetching Apache Kafka or the PostgreSQL builds failed" >&2
    failed_build=$((failed_build + 1))
  }
fi

build() { # build DIR [meson options...]
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; return 1; }
  fi
  ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log" >&2; return 1; }
}

run_suite() { # DIR SUITE [TEST...]
  meson test -C "$1" --suite "$2" --num-processes "$JOBS" --print-errorlogs --no-rebuild \
    --logbase "testlog-$2" "${@:3}" >&2 || true
}

rm -f build/meson-logs/testlog-*.json build-asan/meson-logs/testlog-*.json \
  build-fuzz/meson-logs/testlog-*.json build-fresh/testlog-*.json

if [[ " $SUITES " == *" unit "* || " $SUITES " == *" integration "* || " $SUITES " == *" valgrind "* ]]; then
  if build build; then
    [[ " $SUITES " == *" unit "* ]] && run_suite build unit
    # one at a time on a Kafka of PGCDC_TEST_BROKERS: each test deletes the topics it made
    [ -n "${PGCDC_TEST_BROKERS:-}" ] && JOBS=1
    # shellcheck disable=SC2086
    [[ " $SUITES " == *" integration "* ]] && run_suite build integration ${PGCDC_TEST_INTEGRATION:-}
    if [[ " $SUITES " == *" valgrind "* ]]; then
      meson test -C build --no-rebuild --print-errorlogs --logbase testlog-valgrind \
        --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect -q' \
        reader pgoutput pgoutput_corpus event >&2 || true
    fi
  else
    echo "test.sh: build failed" >&2; failed_build=$((failed_build + 1))
  fi
fi
if [[ " $SUITES " == *" asan "* ]]; then
  if build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_suite build-asan unit
    # a few snapshot cases with the sanitized pgcdc (its environment sets the options)
    [[ " $SUITES " == *" integration "* ]] && run_suite build-asan asan-integration
  else
    echo "test.sh: sanitizer build failed" >&2; failed_build=$((failed_build + 1))
  fi
fi

if [[ " $SUITES " == *" fuzz "* ]]; then
  # One test: build the libFuzzer target and run 50,000 executions from the corpus.
  mkdir -p build-fuzz/meson-logs
  fuzz_result=FAIL
  if [ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true \
       -Db_sanitize=address,undefined -Db_lundef=false >build-fuzz.setup.log 2>&1; then
    if ninja -C build-fuzz tests/fuzz/fuzz_pgoutput >build-fuzz.build.log 2>&1; then
      corpus=$(mktemp -d)
      cp tests/fuzz/corpus/pgoutput/* "$corpus"/
      if build-fuzz/tests/fuzz/fuzz_pgoutput -runs=50000 -dict=tests/fuzz/pgoutput.dict \
           "$corpus" >build-fuzz/meson-logs/fuzz.log 2>&1; then
        fuzz_result=OK
      else
        tail -30 build-fuzz/meson-logs/fuzz.log >&2
      fi
      rm -rf "$corpus"
    else
      tail -30 build-fuzz.build.log >&2
    fi
  else
    cat build-fuzz.setup.log >&2
  fi
  echo "fuzz: libFuzzer 50000 runs: $fuzz_result" >&2
  echo "{\"name\": \"fuzz_pgoutput\", \"result\": \"$fuzz_result\"}" > build-fuzz/meson-logs/testlog-fuzz.json
fi

if [[ " $SUITES " == *" fresh "* ]]; then
  # One test per command: the quickstart and a reduced test.sh in a fresh minimal Debian 12.
  mkdir -p build-fresh
  scripts/fresh-check.sh --reduced --results build-fresh/testlog-fresh.json --logs build-fresh/logs ||
    [ -s build-fresh/testlog-fresh.json ] ||
    echo '{"name": "fresh_check", "result": "FAIL"}' >build-fresh/testlog-fresh.json
fi

# Count from meson's machine-readable logs: one JSON object per test run.
/usr/bin/python3 - "$failed_build" build/meson-logs/testlog-*.json build-asan/meson-logs/testlog-*.json \
  build-fuzz/meson-logs/testlog-*.json build-fresh/testlog-*.json <<'PY'
import json, sys
failed_build = int(sys.argv[1])
passed = failed = skipped = 0
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
failed += failed_build
if passed + failed + skipped == 0:
    failed = 1  # a run that executed nothing is a failure
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
PY
