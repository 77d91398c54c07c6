#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages pgcdc needs to build, test and run its demo (only what is missing)
set -euo pipefail

PACKAGES=(
  build-essential pkg-config meson ninja-build clang
  libpq-dev librdkafka-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
  postgresql postgresql-contrib
  python3 python3-psycopg2 python3-confluent-kafka
  valgrind kcat procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
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
# The postgresql package starts a default cluster; the tests use their own.
if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r v c; do
    $SUDO pg_ctlcluster "$v" "$c" stop || true
  done
fi
