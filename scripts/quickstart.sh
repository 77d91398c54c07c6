#!/usr/bin/env bash
# quickstart.sh - demo on a fresh Debian 12 machine: throwaway PostgreSQL + test Kafka broker, changes streamed by pgcdc and shown
#
# Installs what is missing, builds pgcdc, starts a throwaway PostgreSQL 15
# cluster and the Kafka test broker on loopback, creates a small shop schema,
# runs `pgcdc setup` and `pgcdc start`, makes some changes, shows them arriving
# in Kafka through `pgcdc tail`, prints `pgcdc status`, then stops and removes
# everything. Ctrl-C at any point leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null

export PGCDC_BIN="$PWD/build/src/pgcdc"
export PGCDC_TESTBROKER_BIN="$PWD/build/tests/tools/pgcdc-testbroker"
export PYTHONPATH="$PWD/tests/integration"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 scripts/quickstart.py "$@"
