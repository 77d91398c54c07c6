#!/usr/bin/env bash
# fresh-check.sh - run the README's two commands in a brand-new minimal Debian 12 and report how they did
#
#   sudo bash scripts/fresh-check.sh [--reduced] [--results FILE] [--logs DIR]
#
# Builds a minimal Debian 12 (debootstrap --variant=minbase, 88 packages: no
# python3, git, sudo or compilers), cached as a tarball in
# /var/cache/pgcdc/fresh/ ($PGCDC_CACHE_DIR/fresh) and unpacked anew for
# every run. Mounts proc, dev,
# sys and a tmpfs on /tmp, copies in a clean clone of this checkout's HEAD
# (committed work only), and runs, as root with a clean environment:
#
#   1. bash scripts/quickstart.sh   (must exit 0 and show the changes in Kafka)
#   2. bash scripts/test.sh         (must exit 0 and end "N passed, 0 failed")
#
# Between the two it starts the default cluster that Debian's postgresql
# package created (15/main, port 5432), as a machine with systemd would have
# it running: the quickstart runs with port 5432 free, the test suite with it
# taken, and the check fails if the scripts stopped that cluster.
#
# --reduced runs the unit suite and three integration tests instead of every
# suite (what .ci/run uses): one on the test broker, one on a real Apache
# Kafka and one on PostgreSQL 17, so that each way of fetching is proven. --results FILE appends one JSON line per command
# in meson's test-log form ({"name", "result"}), which scripts/test.sh counts.
# --logs DIR keeps each command's full output there.
#
# The chroot shares this machine's network, so it gets this machine's site
# settings: DNS (resolv.conf, hosts), the apt sources and their Acquire
# options, and the locally added CA certificates (a proxy's CA, say). Nothing
# else crosses over. Everything made is removed at the end, also on failure
# or Ctrl-C. Needs root (chroot, mount).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

reduced=0
results=""
logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reduced) reduced=1 ;;
    --results) results=$2; shift ;;
    --logs) logs=$2; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-check: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "fresh-check: $*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  say "needs root (debootstrap, chroot and mount); run it with sudo"; exit 2
fi
[ -n "$results" ] && results=$(realpath -m "$results")
[ -n "$logs" ] && { mkdir -p "$logs" && logs=$(realpath "$logs"); }

record() { # NAME OK|FAIL
  [ -n "$results" ] && echo "{\"name\": \"$1\", \"result\": \"$2\"}" >>"$results"
  return 0
}

SUITE=bookworm
MIRROR=${PGCDC_FRESH_MIRROR:-http://deb.debian.org/debian}
CACHE=${PGCDC_CACHE_DIR:-/var/cache/pgcdc}/fresh
BASE_TAR=$CACHE/$SUITE-minbase.tar

# ------------------------------------------------------------ host tools

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} on this machine"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
    { say "could not install ${need[*]}"; record fresh_setup FAIL; exit 1; }
fi

# ------------------------------------------------------------ clean-up

WORK=$(mktemp -d /var/tmp/pgcdc-fresh.XXXXXX)
R=$WORK/root

chroot_pids() { # pids of processes whose root directory is inside the chroot
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$R"|"$R"/*) echo "${p#/proc/}" ;; esac
  done
}

mounts_under() { # mount points at or below $1, deepest first
  awk -v top="$1" '$2 == top || index($2, top "/") == 1 {print $2}' /proc/self/mounts | sort -r
}

cleanup() {
  local pids i m
  trap - EXIT INT TERM
  for i in 1 2 3 4 5; do
    pids=$(chroot_pids)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill $([ "$i" -le 2 ] && echo -TERM || echo -KILL) $pids 2>/dev/null
    sleep 1
  done
  for m in $(mounts_under "$WORK"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  if [ -n "$(mounts_under "$WORK")" ]; then
    say "could not unmount everything under $WORK; left it in place:"
    mounts_under "$WORK" >&2
    return
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

# ------------------------------------------------------------ the base system

t0=$(date +%s)
if [ ! -s "$BASE_TAR" ]; then
  say "building a minimal Debian 12 ($SUITE, minbase) from $MIRROR, cached in $CACHE"
  mkdir -p "$CACHE"
  if ! debootstrap --variant=minbase "$SUITE" "$WORK/base" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -20 "$WORK/debootstrap.log" >&2
    say "debootstrap failed"; record fresh_setup FAIL; exit 1
  fi
  tar -C "$WORK/base" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$WORK/base"
fi
mkdir -p "$R"
tar -C "$R" -xf "$BASE_TAR" || { say "could not unpack $BASE_TAR"; record fresh_setup FAIL; exit 1; }
say "minimal Debian 12 ready in $(($(date +%s) - t0)) s: $(chroot "$R" dpkg-query -W | wc -l) packages"

# this machine's site settings: DNS, apt sources and options, local CAs
cp -L /etc/resolv.conf /etc/hosts "$R/etc/"
if ls /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list >/dev/null 2>&1 ||
   [ -s /etc/apt/sources.list ]; then
  rm -f "$R/etc/apt/sources.list"
  [ -s /etc/apt/sources.list ] && cp /etc/apt/sources.list "$R/etc/apt/"
  cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$R/etc/apt/sources.list.d/" 2>/dev/null
fi
for f in /etc/apt/apt.conf.d/*; do
  grep -q '^[[:space:]]*Acquire' "$f" 2>/dev/null && cp "$f" "$R/etc/apt/apt.conf.d/"
done
if ls /usr/local/share/ca-certificates/* >/dev/null 2>&1; then
  mkdir -p "$R/usr/local/share/ca-certificates"
  cp -r /usr/local/share/ca-certificates/. "$R/usr/local/share/ca-certificates/"
fi

# a clean clone: what is committed, nothing built
git clone -q --no-hardlinks "$ROOT" "$R/root/pgcdc" ||
  { say "git clone of $ROOT failed"; record fresh_setup FAIL; exit 1; }
say "clean clone of $(git -C "$ROOT" rev-parse --short HEAD) in /root/pgcdc"

mount -t proc proc "$R/proc" &&
  mount --rbind /dev "$R/dev" && mount --make-rslave "$R/dev" &&
  mount -t sysfs sysfs "$R/sys" &&
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp" ||
  { say "mounting proc, dev, sys or /tmp in the chroot failed"; record fresh_setup FAIL; exit 1; }

# ------------------------------------------------------------ the two commands

in_chroot() { # COMMAND...: run in the chroot as root with a clean environment, no stdin
  chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" </dev/null
}

status=0
run_step() { # NAME LOGNAME COMMAND: sets step_rc, step_secs, step_log
  local name=$1 log=$WORK/$2.log t
  shift 2
  say "running $name"
  t=$(date +%s)
  in_chroot bash -c "cd /root/pgcdc && $*" >"$log" 2>&1
  step_rc=$?
  step_secs=$(($(date +%s) - t))
  step_log=$log
  [ -n "$logs" ] && cp "$log" "$logs/"
}

closing_line() { grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -1; }

# 1. the demo
run_step "bash scripts/quickstart.sh" quickstart "bash scripts/quickstart.sh"
shown=$(grep -cE '^  shop\.public\.[a-z]+ \[' "$step_log")
if [ "$step_rc" -eq 0 ] && [ "$shown" -ge 9 ]; then
  say "quickstart: exit $step_rc in $step_secs s, $shown changes shown arriving in Kafka"
  record fresh_quickstart OK
else
  tail -40 "$step_log" >&2
  say "quickstart: FAILED: exit $step_rc in $step_secs s, $shown changes shown (9 expected)"
  record fresh_quickstart FAIL; status=1
fi

# the default cluster, running as under systemd (unless the port is already in use here)
default_up=0
if in_chroot pg_lsclusters -h 2>/dev/null | grep -q '^15 main '; then
  if in_chroot pg_ctlcluster 15 main start >"$WORK/default-cluster.log" 2>&1; then
    default_up=1
    say "Debian's default cluster 15/main is running on port 5432 during the test suite"
  else
    say "Debian's default cluster did not start (port 5432 in use on this machine?):"
    tail -3 "$WORK/default-cluster.log" >&2
  fi
else
  say "the postgresql package created no default cluster"
fi

# 2. the test suite
if [ "$reduced" -eq 1 ]; then
  cmd='PGCDC_TEST_SUITES="unit integration" PGCDC_TEST_INTEGRATION="test_kafka_rebuild test_kafka_rebuild@kafka test_setup@pg17" bash scripts/test.sh'
  label="bash scripts/test.sh (reduced: unit suite, test_kafka_rebuild on the test broker and on Apache Kafka, test_setup on PostgreSQL 17)"
else
  cmd='bash scripts/test.sh'
  label="bash scripts/test.sh"
fi
run_step "$label" test "$cmd"
closing=$(closing_line "$step_log")
if [ "$step_rc" -eq 0 ] && [[ "$closing" =~ \ 0\ failed ]]; then
  say "test.sh: exit $step_rc in $step_secs s, closing line \"$closing\""
  record fresh_test_sh OK
else
  grep -E 'FAIL|ERROR|Error|error:' "$step_log" | tail -30 >&2
  tail -20 "$step_log" >&2
  say "test.sh: FAILED: exit $step_rc in $step_secs s, closing line \"${closing:-none}\""
  record fresh_test_sh FAIL; status=1
fi

if [ "$default_up" -eq 1 ]; then
  if in_chroot pg_lsclusters -h | grep -qE '^15 +main +5432 +online'; then
    say "the default cluster is still running: the scripts left it alone"
    record fresh_default_cluster OK
    in_chroot pg_ctlcluster 15 main stop -m fast >/dev/null 2>&1
  else
    say "FAILED: the scripts stopped Debian's default cluster"
    record fresh_default_cluster FAIL; status=1
  fi
fi

say "total $(($(date +%s) - t0)) s; $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
