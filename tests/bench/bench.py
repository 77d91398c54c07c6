#!/usr/bin/python3
"""bench.py - pgcdc throughput and latency benchmark (issue 7); see docs/PERFORMANCE.md.

    tests/bench/run.sh [--full] [--profile] [options]    # the one command

Throughput: each workload (oltp, bulk, wide) is written once to a throwaway
PostgreSQL 15; before it, one logical slot per reader and repetition (plus
spares) is created, so every reader drains exactly the same WAL, up to the
same --endpos. Readers:

    pg_recvlogical   PostgreSQL's own client into /dev/null (the reference)
    pgcdc-json       pgcdc start --endpos into the test broker, format = json
    pgcdc-protobuf   the same with format = protobuf

Each pgcdc run gets a fresh test broker (librdkafka mock cluster) whose topics
are pre-created with 64 partitions. pgcdc runs with its documented defaults:
the configuration file holds only connection, slot, publication, format,
checkpoint path and bootstrap servers.

Per run: wall time from process start to exit, CPU (user+sys, wait4 rusage)
and peak RSS (ru_maxrss through GNU time) of the reader; the walsender's CPU
(the postmaster's cutime+cstime delta: the walsender is its child); the
broker's CPU; and the cores other programs used meanwhile (a run disturbed by
more than --noisy-cores is done again on a spare slot).

Latency: pgcdc runs without --endpos, a consumer process reads the topic, and
pgbench runs one-UPDATE transactions at a fixed rate (default 5,000 tx/s,
5 s warm-up + 60 s). Latency is consumer receive time minus the event's
source.ts_us (the commit timestamp of the commit record); one host, one clock.

--profile also runs pgcdc under perf record (dwarf call graphs) on oltp and
bulk, untimed, and attributes library time to pgcdc's callers (perf_attr.py).
"""

import argparse
import array
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

PG_BINDIR = os.environ.get("PGCDC_PG_BINDIR", "/usr/lib/postgresql/15/bin")
CLK_TCK = os.sysconf("SC_CLK_TCK")
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")  # for exact peak RSS; see run_measured
PUB = "bench_pub"
PARTITIONS = 64
READERS = ["pg_recvlogical", "pgcdc-json", "pgcdc-protobuf"]
OLTP_SCRIPT = os.path.join(HERE, "oltp.sql")
LATENCY_SCRIPTS = {"update": (os.path.join(HERE, "latency.sql"), 1),  # (script, messages per tx)
                   "oltp": (OLTP_SCRIPT, 4)}  # update, insert, delete + tombstone
OLTP_PRELOAD = 100000  # rows 1..100000; oltp.sql depends on it
LATENCY_WARMUP_S = 5   # seconds of the latency run before the measured interval
LATENCY_WINDOW_S = 15  # the latency report also gives figures per window of this length

MODES = {
    # reps: repetitions of every reader; oltp_tx: pgbench transactions (3 changes each)
    "quick": dict(reps=1, oltp_tx=10000, bulk_rows=100000, wide_rows=10000, wide_batch=1000,
                  latency_s=10, latency_rate=5000),
    "full": dict(reps=5, oltp_tx=100000, bulk_rows=1000000, wide_rows=100000, wide_batch=1000,
                 latency_s=60, latency_rate=5000),
}

SERVER_SETTINGS = {
    # on top of the harness's BASE_SETTINGS (fsync=off, full_page_writes=off, ...)
    "synchronous_commit": True,  # PostgreSQL's default; off would delay WAL flush (and so
                                 # decoding) by up to 3 x wal_writer_delay
    "autovacuum": False,         # no autovacuum of the freshly loaded tables during the drains
    "shared_buffers": "128MB",   # PostgreSQL's default
    "max_replication_slots": 64,
    "max_wal_size": "4GB",
    "log_min_messages": "warning",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- /proc

def proc_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_self(pid):
    f = proc_fields(pid)
    return (int(f[11]) + int(f[12])) / CLK_TCK


def cpu_children(pid):
    f = proc_fields(pid)
    return (int(f[13]) + int(f[14])) / CLK_TCK


def vm_hwm_kb(pid):
    """VmHWM (peak RSS of the current program image) of pid, 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def machine_busy():
    """(busy seconds over all cpus, total seconds) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK_TCK, sum(v[:8]) / CLK_TCK


def children(pid):
    """Pids of pid's children, zombies included."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(proc_fields(d)[1]) == pid:
                    out.add(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def wait_quiet(max_cores, limit_s):
    """Wait (up to limit_s) until the machine is idle: under max_cores busy over 0.5 s.
    Returns the busy cores last seen; other work on the machine skews every figure."""
    deadline = time.monotonic() + limit_s
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy()[0] - b0[0]) / (time.monotonic() - t0)
        if busy < max_cores or time.monotonic() >= deadline:
            return busy
        time.sleep(1.0)


def wait_children(postmaster, baseline, timeout=30.0):
    """Wait until the server has no child beyond baseline (its background processes): the
    walsender has exited and been reaped, so its CPU time is in the postmaster's cutime."""
    deadline = time.monotonic() + timeout
    while children(postmaster) - baseline:
        if time.monotonic() > deadline:
            raise RuntimeError("a server process (walsender?) is still running")
        time.sleep(0.02)


# ------------------------------------------------------------ measured runs

class Run:
    """One finished, measured process."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class _Group:
    """A process group killed at close() (registered with the harness's cleanup)."""

    def __init__(self, pgid):
        self.pgid = pgid

    def close(self):
        from pgcdc_test import util
        util.unregister_cleanup(self)
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except OSError:
            pass


def run_measured(argv, log_path, ready_rx=None, timeout=3600.0, env=None):
    """Run argv to exit; returns Run(wall, cpu, maxrss_kb, rc, ready_s).

    ready_s: seconds from start until ready_rx first matched the output
    (pgcdc's "streaming from slot" line, i.e. connected and Kafka scanned).
    """
    from pgcdc_test import util
    e = dict(os.environ)
    e.update(env or {})
    logf = open(log_path, "wb")
    rss_path = log_path + ".rss"
    if GNU_TIME:
        # A child forked from this (large) Python process starts with Python's RSS as its
        # ru_maxrss (Linux keeps the high-water mark across exec); GNU time is small, so
        # the maxrss it reports for its own child is the program's.
        argv = [GNU_TIME, "-f", "%M", "-o", rss_path, "--"] + argv
    b0 = machine_busy()
    wall0 = time.time()
    t0 = time.monotonic()
    # own process group: an interrupted bench kills the program under GNU time too
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         env=e, preexec_fn=util.die_with_parent, start_new_session=True)
    group = _Group(p.pid)
    util.register_cleanup(group)
    hwm = {"kb": 0}
    done = threading.Event()
    ready = {}

    def watch():
        rx = re.compile(ready_rx) if ready_rx else None
        while not done.is_set():
            if rx is not None and "t" not in ready:
                try:
                    with open(log_path, "rb") as f:
                        if rx.search(f.read().decode("utf-8", "replace")):
                            ready["t"] = time.monotonic() - t0
                except OSError:
                    pass
            if not GNU_TIME:
                hwm["kb"] = max(hwm["kb"], vm_hwm_kb(p.pid))
            time.sleep(0.005)

    def kill():
        log(f"timeout: killing {argv[0]} (pid {p.pid})")
        try:
            os.kill(p.pid, signal.SIGKILL)
        except OSError:
            pass

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    t1 = time.monotonic()
    b1 = machine_busy()
    group.close()  # nothing of it may outlive it
    p.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    w.join()
    logf.close()
    maxrss = hwm["kb"]
    if GNU_TIME:
        try:
            with open(rss_path) as f:
                maxrss = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            maxrss = 0
    return Run(wall=t1 - t0, start_time=wall0, cpu=ru.ru_utime + ru.ru_stime, user=ru.ru_utime, sys=ru.ru_stime,
               maxrss_kb=maxrss, rc=p.returncode, ready_s=ready.get("t"),
               machine_cores=(b1[0] - b0[0]) / (t1 - t0))


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


# ------------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = dict(MODES[args.mode])
        if args.reps:
            self.mode["reps"] = args.reps
        if args.latency_rate:
            self.mode["latency_rate"] = args.latency_rate
        if args.latency_seconds:
            self.mode["latency_s"] = args.latency_seconds
        self.pgcdc = args.pgcdc
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.rundir = os.path.join(self.out, "runs")
        os.makedirs(self.rundir, exist_ok=True)
        self.results = {"mode": args.mode, "params": self.mode, "runs": [], "latency": None,
                        "profile": {}, "workloads": {}}
        self.pg = None

    # ------------------------------------------------------------ server

    def start_server(self):
        from pgcdc_test import PgCluster
        self.pg = PgCluster(settings=SERVER_SETTINGS, name="bench")
        self.pg.__enter__()
        self.pm = self.pg.postmaster_pid()
        self.dsn = self.pg.dsn()
        pg = self.pg
        pg.sql("""
            CREATE TABLE bench_oltp (id bigint PRIMARY KEY, name text NOT NULL,
                amount numeric(12,2) NOT NULL, doc jsonb NOT NULL, updated_at timestamptz NOT NULL);
            CREATE SEQUENCE bench_oltp_seq START 100001;
            CREATE TABLE bench_bulk (LIKE bench_oltp INCLUDING ALL);
            CREATE TABLE bench_wide (LIKE bench_oltp INCLUDING ALL);
        """)
        pg.sql("""
            INSERT INTO bench_oltp
            SELECT g, 'customer ' || g, g / 100.0,
                   jsonb_build_object('k', 'v', 'n', g, 'tags', jsonb_build_array('a', 'b'),
                                      'nested', jsonb_build_object('x', 1.5, 'y', null)),
                   now()
            FROM generate_series(1, %s) g""", (OLTP_PRELOAD,))
        pg.sql("VACUUM ANALYZE bench_oltp")
        pg.sql(f"CREATE PUBLICATION {PUB} FOR TABLE bench_oltp, bench_bulk, bench_wide")
        pg.sql("CHECKPOINT")
        # the server's background processes; any other child is a backend or a walsender
        deadline = time.monotonic() + 10
        self.baseline = children(self.pm)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = children(self.pm)
            if now == self.baseline:
                break
            self.baseline = now

    def stop_server(self):
        if self.pg is not None:
            self.pg.close()
            self.pg = None

    def pgbench(self, extra, log_path, script=OLTP_SCRIPT):
        argv = [os.path.join(PG_BINDIR, "pgbench"), "-n", "-M", "prepared", "-f", script,
                "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres"] + extra + ["postgres"]
        with open(log_path, "w") as f:
            f.write(" ".join(argv) + "\n")
            f.flush()
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        self.pgbench_cpu = ru.ru_utime + ru.ru_stime
        with open(log_path) as f:
            text = f.read()
        if p.returncode != 0:
            raise RuntimeError(f"pgbench failed ({p.returncode}):\n{text[-3000:]}")
        return text

    def server_cpu(self):
        """CPU seconds used by the server so far: postmaster, live children, reaped children."""
        total = cpu_self(self.pm) + cpu_children(self.pm)
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    f = proc_fields(d)
                    if int(f[1]) == self.pm:
                        total += (int(f[11]) + int(f[12])) / CLK_TCK
                except (OSError, IndexError, ValueError):
                    pass
        return total

    # ------------------------------------------------------------ workloads

    def workload(self, name):
        """Write the workload; returns (row changes, deletes, seconds)."""
        m = self.mode
        t0 = time.monotonic()
        if name == "oltp":
            clients = 4
            per = m["oltp_tx"] // clients
            self.pgbench(["-c", str(clients), "-j", "2", "-t", str(per)],
                         os.path.join(self.rundir, "oltp.pgbench.log"))
            n = per * clients
            changes, deletes = 3 * n, n
        elif name == "bulk":
            self.pg.sql("""
                INSERT INTO bench_bulk
                SELECT g, 'customer ' || g, (g %% 100000) / 100.0,
                       jsonb_build_object('k', 'v', 'n', g, 'tags', jsonb_build_array('a', 'b'),
                                          'nested', jsonb_build_object('x', 1.5, 'y', null)),
                       now()
                FROM generate_series(1, %s) g""", (m["bulk_rows"],))
            changes, deletes = m["bulk_rows"], 0
        elif name == "wide":
            conn = self.pg.connect()
            try:
                with conn.cursor() as cur:
                    for lo in range(1, m["wide_rows"] + 1, m["wide_batch"]):
                        hi = min(m["wide_rows"], lo + m["wide_batch"] - 1)
                        # 62 md5 hex digests: a 1,984-character text per row
                        cur.execute("""
                            INSERT INTO bench_wide
                            SELECT g, (SELECT string_agg(md5(g::text || '.' || i), '')
                                       FROM generate_series(1, 62) i),
                                   g / 100.0, jsonb_build_object('n', g), now()
                            FROM generate_series(%s, %s) g""", (lo, hi))
            finally:
                conn.close()
            changes, deletes = m["wide_rows"], 0
        else:
            raise ValueError(name)
        return changes, deletes, time.monotonic() - t0

    # ------------------------------------------------------------ readers

    def run_recvlogical(self, slot, endpos, tag):
        argv = [os.path.join(PG_BINDIR, "pg_recvlogical"), "--start", "--no-loop",
                "--endpos", endpos, "-f", "/dev/null", "--slot", slot, "-d", self.dsn,
                "-o", "proto_version=1", "-o", f"publication_names={PUB}", "-o", "messages=true"]
        return run_measured(argv, os.path.join(self.rundir, tag + ".log"))

    def topics(self):
        t = {f"pgcdc.public.{x}": PARTITIONS for x in ("bench_oltp", "bench_bulk", "bench_wide")}
        t["pgcdc.message"] = 1
        return t

    def pgcdc_config(self, path, slot, fmt, bootstrap, ckpt):
        from pgcdc_test import write_config
        # only what a user must set; everything else is pgcdc's default
        return write_config(path, {
            "source.dsn": self.dsn,
            "slot.name": slot,
            "publication.name": PUB,
            "format": fmt,
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": bootstrap,
        })

    def run_pgcdc(self, slot, endpos, fmt, tag, wrap=None):
        from pgcdc_test import Broker, watermarks
        with Broker(topics=self.topics()) as kafka:
            cfg = self.pgcdc_config(os.path.join(self.rundir, tag + ".conf"), slot, fmt,
                                    kafka.bootstrap, os.path.join(self.rundir, tag + ".ckpt"))
            argv = (wrap or []) + [self.pgcdc, "start", "-c", cfg, "--endpos", endpos]
            r = run_measured(argv, os.path.join(self.rundir, tag + ".log"),
                             ready_rx=r"streaming from slot")
            r.broker_cpu = cpu_self(kafka.proc.pid) if kafka.proc else None  # None: real Kafka
            with open(os.path.join(self.rundir, tag + ".log"), errors="replace") as f:
                text = f.read()
            mm = re.search(r"after (\d+) events", text)
            r.events = int(mm.group(1)) if mm else None
            r.messages = 0
            if r.rc == 0 and wrap is None:
                for t in self.topics():
                    r.messages += sum(hi for _, hi in watermarks(kafka.bootstrap, t).values()
                                      if hi > 0)
        return r

    def drain(self, reader, slot, endpos, tag, wrap=None):
        wait_children(self.pm, self.baseline)
        idle_before = wait_quiet(self.args.quiet_cores, self.args.quiet_wait)
        c0 = cpu_children(self.pm)
        if reader == "pg_recvlogical":
            r = self.run_recvlogical(slot, endpos, tag)
            r.broker_cpu = None
            r.events = None
            r.messages = None
        else:
            r = self.run_pgcdc(slot, endpos, reader.split("-", 1)[1], tag, wrap)
        wait_children(self.pm, self.baseline)
        r.walsender_cpu = cpu_children(self.pm) - c0
        r.idle_before = idle_before
        # cores used by everything else (other programs; pgbench is not running)
        r.foreign_cores = r.machine_cores - (r.cpu + r.walsender_cpu + (r.broker_cpu or 0)) / r.wall
        if r.rc != 0:
            with open(os.path.join(self.rundir, tag + ".log"), errors="replace") as f:
                raise RuntimeError(f"{tag}: exit status {r.rc}\n{f.read()[-3000:]}")
        return r

    # ------------------------------------------------------------ phases

    def throughput(self, name):
        reps = self.mode["reps"]
        spares = self.args.spares
        pg = self.pg
        # one slot per reader and repetition, plus spares to repeat a run that other work on
        # the machine disturbed; all made before the workload, so all drain the same WAL
        free = {reader: [f"b_{name}_{i}_{reader.replace('-', '_')}" for i in range(reps + spares)]
                for reader in READERS}
        prof = {}
        if self.args.profile and name in ("oltp", "bulk"):
            prof = {r: f"b_{name}_prof_{r.replace('-', '_')}" for r in READERS[1:]}
        all_slots = [x for v in free.values() for x in v] + list(prof.values())
        for s in all_slots:
            pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (s,))
        start_lsn = pg.sql_one("SELECT max(confirmed_flush_lsn)::text FROM pg_replication_slots")
        log(f"{name}: writing the workload")
        changes, deletes, secs = self.workload(name)
        endpos = pg.sql_one("SELECT pg_current_wal_flush_lsn()::text")
        pg.sql("CHECKPOINT")
        wal = pg.sql_one("SELECT pg_wal_lsn_diff(%s, %s)::bigint", (endpos, start_lsn))
        log(f"{name}: {changes} changes in {secs:.1f} s, {wal / 1e6:.0f} MB of WAL, "
            f"endpos {endpos}")
        self.results["workloads"][name] = dict(changes=changes, deletes=deletes,
                                               write_s=secs, wal_bytes=wal, endpos=endpos)
        for rep in range(reps):
            order = READERS[rep % 3:] + READERS[:rep % 3]
            for reader in order:
                for attempt in range(spares + 1):
                    slot = free[reader].pop(0)
                    tag = f"{name}.{rep}.{reader}" + (f".retry{attempt}" if attempt else "")
                    row = self.drain_row(name, rep, reader, slot, endpos, tag, changes, deletes)
                    pg.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
                    if row["foreign_cores"] <= self.args.noisy_cores or len(free[reader]) <= reps - rep - 1:
                        break
                    row["discarded"] = True
                    log(f"  {tag}: other work used {row['foreign_cores']:.2f} cores: run again")
                    self.save()
        for reader in free:
            for slot in free[reader]:
                pg.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        for reader, slot in prof.items():
            self.profile(name, reader, slot, endpos)
            pg.sql("SELECT pg_drop_replication_slot(%s)", (slot,))

    def drain_row(self, name, rep, reader, slot, endpos, tag, changes, deletes):
        r = self.drain(reader, slot, endpos, tag)
        row = dict(workload=name, rep=rep, reader=reader, changes=changes,
                   wall_s=r.wall, cpu_s=r.cpu, user_s=r.user, sys_s=r.sys,
                   maxrss_kb=r.maxrss_kb, ready_s=r.ready_s,
                   walsender_cpu_s=r.walsender_cpu, broker_cpu_s=r.broker_cpu,
                   machine_cores=r.machine_cores, foreign_cores=r.foreign_cores,
                   busy_before=r.idle_before, events=r.events, messages=r.messages)
        row["rate"] = changes / r.wall
        if r.events is not None and r.events != changes:
            row["warning"] = f"pgcdc reported {r.events} events, expected {changes}"
        if r.messages is not None and r.messages != changes + deletes:
            row["warning"] = f"kafka holds {r.messages} messages, expected {changes + deletes}"
        self.results["runs"].append(row)
        log(f"  {tag}: {row['rate']:,.0f} changes/s, wall {r.wall:.2f} s, cpu "
            f"{r.cpu:.2f} s, rss {r.maxrss_kb / 1024:.1f} MB, walsender "
            f"{r.walsender_cpu:.2f} s, machine {r.machine_cores:.2f} cores, other "
            f"{r.foreign_cores:.2f}" + (f"  WARNING {row['warning']}" if "warning" in row else ""))
        self.save()
        return row

    def profile(self, name, reader, slot, endpos):
        tag = f"{name}.profile.{reader}"
        data = os.path.join(self.rundir, tag + ".perf.data")
        # cpu-clock: this VM has no hardware counters; dwarf call graphs: the release build
        # has no frame pointers
        wrap = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "--call-graph",
                "dwarf,8192", "-o", data, "--"]
        log(f"  {tag}: perf record")
        self.drain(reader, slot, endpos, tag, wrap=wrap)
        rep = {}
        for key, sort in (("dsos", "dso"), ("symbols", "dso,sym")):
            r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort,
                                "--stdio", "-g", "none", "--percent-limit", "0.7"],
                               capture_output=True, text=True)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
            rep[key] = lines[:40]
            with open(os.path.join(self.rundir, f"{tag}.{key}.txt"), "w") as f:
                f.write(r.stdout)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"],
                                capture_output=True, text=True, errors="replace")
        r = subprocess.run([sys.executable, os.path.join(HERE, "perf_attr.py"),
                            os.path.basename(self.pgcdc)], input=script.stdout,
                           capture_output=True, text=True)
        rep["attribution"] = r.stdout.splitlines()
        with open(os.path.join(self.rundir, f"{tag}.attribution.txt"), "w") as f:
            f.write(r.stdout)
        if not self.args.keep_perf_data:
            os.unlink(data)
        self.results["profile"][tag] = rep
        self.save()

    def latency_once(self, tag):
        from pgcdc_test import Broker
        m = self.mode
        rate, secs, warm = m["latency_rate"], m["latency_s"], LATENCY_WARMUP_S
        slot = "b_" + tag.replace(".", "_")
        self.pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        topic = "pgcdc.public.bench_oltp"
        res = {}
        with Broker(topics=self.topics()) as kafka:
            cfg = self.pgcdc_config(os.path.join(self.rundir, tag + ".conf"), slot, "json",
                                    kafka.bootstrap, os.path.join(self.rundir, tag + ".ckpt"))
            lat_out = os.path.join(self.rundir, tag + ".samples")
            status = os.path.join(self.rundir, tag + ".count")
            cons = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_consume",
                                     kafka.bootstrap, topic, str(PARTITIONS), lat_out, status,
                                     str(self.args.fetch_wait_ms)],
                                    stdin=subprocess.DEVNULL)
            pgcdc_log = open(os.path.join(self.rundir, tag + ".pgcdc.log"), "wb")
            from pgcdc_test import util
            p = subprocess.Popen([self.pgcdc, "start", "-c", cfg], stdin=subprocess.DEVNULL,
                                 stdout=pgcdc_log, stderr=subprocess.STDOUT,
                                 preexec_fn=util.die_with_parent)
            try:
                deadline = time.monotonic() + 60
                while True:
                    with open(os.path.join(self.rundir, tag + ".pgcdc.log"), "rb") as f:
                        if b"streaming from slot" in f.read():
                            break
                    if p.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("pgcdc did not start streaming (latency.pgcdc.log)")
                    time.sleep(0.05)
                while not os.path.exists(status):
                    time.sleep(0.05)
                time.sleep(1.0)
                res["busy_before"] = wait_quiet(self.args.quiet_cores, self.args.quiet_wait)
                cpu0 = cpu_self(p.pid)
                bcpu = (lambda: cpu_self(kafka.proc.pid)) if kafka.proc else (lambda: 0.0)
                others0 = (bcpu(), cpu_self(cons.pid), self.server_cpu())
                b0 = machine_busy()
                log(f"latency: pgbench --rate={rate} -T {warm}+{secs} with pgcdc and a consumer "
                    "running")
                wall0 = time.time()
                t0 = time.monotonic()
                script, per_tx = LATENCY_SCRIPTS[self.args.latency_script]
                text = self.pgbench(["-c", "8", "-j", "2", "-R", str(rate), "-T", str(warm + secs),
                                     "-P", "10"], os.path.join(self.rundir, tag + ".pgbench.log"),
                                    script=script)
                t1 = time.monotonic()
                cpu1 = cpu_self(p.pid)
                others1 = (bcpu(), cpu_self(cons.pid), self.server_cpu())
                b1 = machine_busy()
                dt = t1 - t0
                cores = {"pgcdc": (cpu1 - cpu0) / dt,
                         "broker": (others1[0] - others0[0]) / dt,
                         "consumer": (others1[1] - others0[1]) / dt,
                         "postgresql": (others1[2] - others0[2]) / dt,
                         "pgbench": self.pgbench_cpu / dt,
                         "machine": (b1[0] - b0[0]) / dt}
                cores["other"] = cores["machine"] - sum(v for k, v in cores.items()
                                                        if k != "machine")
                res["cores"] = cores
                mm = re.search(r"number of transactions actually processed: (\d+)", text)
                ntx = int(mm.group(1))
                expect = ntx * per_tx
                # wait until the consumer has everything (or nothing arrives for 10 s)
                last, since = -1, time.monotonic()
                while True:
                    try:
                        with open(status) as f:
                            n = int(f.read().strip() or 0)
                    except (OSError, ValueError):
                        n = 0
                    if n >= expect:
                        break
                    if n != last:
                        last, since = n, time.monotonic()
                    elif time.monotonic() - since > 10:
                        log(f"latency: consumer stuck at {n} of {expect} messages")
                        break
                    time.sleep(0.1)
                tps = float(re.search(r"tps = ([\d.]+)", text).group(1))
                lag = re.search(r"rate limit schedule lag: avg ([\d.]+) \(max ([\d.]+)\) ms", text)
                res.update(rate=rate, seconds=secs, transactions=ntx, tps=tps,
                           script=self.args.latency_script,
                           pgbench_latency_ms=float(re.search(r"latency average = ([\d.]+) ms",
                                                              text).group(1)),
                           schedule_lag_avg_ms=float(lag.group(1)) if lag else None,
                           schedule_lag_max_ms=float(lag.group(2)) if lag else None,
                           pgcdc_cores=(cpu1 - cpu0) / (t1 - t0),
                           machine_cores=(b1[0] - b0[0]) / (t1 - t0))
            finally:
                cons.send_signal(signal.SIGTERM)
                cons.wait(60)
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                _, st, ru = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(st)
                pgcdc_log.close()
                res["pgcdc_maxrss_kb"] = ru.ru_maxrss
                res["pgcdc_rc"] = p.returncode
        self.pg.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        a = array.array("q")
        with open(lat_out, "rb") as f:
            a.frombytes(f.read())
        commit, enc, create_ms, recv = a[0::4], a[1::4], a[2::4], a[3::4]
        # the first LATENCY_WARMUP_S seconds are left out of the figures (first produce to a
        # topic waits for its metadata, the consumer's first fetches); reported separately
        start_us = int((wall0 + warm) * 1e6)
        steady = [i for i in range(len(commit)) if commit[i] >= start_us]
        res["messages"] = len(steady)
        res["warmup_s"] = warm
        # per window: the test broker's cost per fetch grows with the message sets it holds
        # (it searches a list), so latency seen through it drifts up over a long run
        res["windows"] = []
        for w0 in range(0, secs, LATENCY_WINDOW_S):
            lo, hi = start_us + w0 * 1000000, start_us + (w0 + LATENCY_WINDOW_S) * 1000000
            idx = [i for i in steady if lo <= commit[i] < hi]
            recv_lat = sorted((recv[i] - commit[i]) / 1000.0 for i in idx)
            prod_lat = sorted((create_ms[i] * 1000 - commit[i]) / 1000.0 for i in idx)
            res["windows"].append({"from_s": w0, "to_s": min(secs, w0 + LATENCY_WINDOW_S),
                                   "consumer_p50": pct(recv_lat, 50),
                                   "consumer_p99": pct(recv_lat, 99),
                                   "consumer_max": recv_lat[-1] if recv_lat else float("nan"),
                                   "produce_p99": pct(prod_lat, 99)})
        for key, idx in (("", steady), ("all_", range(len(commit)))):
            recv_lat = sorted((recv[i] - commit[i]) / 1000.0 for i in idx)
            enc_lat = sorted((enc[i] - commit[i]) / 1000.0 for i in idx)
            prod_lat = sorted((create_ms[i] * 1000 - commit[i]) / 1000.0 for i in idx)
            for name, v in (("commit_to_consumer", recv_lat), ("commit_to_encode", enc_lat),
                            ("commit_to_produce", prod_lat)):
                res[key + name] = {"p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99),
                                   "p99.9": pct(v, 99.9), "max": v[-1] if v else float("nan")}
        log(f"{tag}: {len(steady)} messages, commit->consumer p50 {res['commit_to_consumer']['p50']:.1f} "
            f"p99 {res['commit_to_consumer']['p99']:.1f} max "
            f"{res['commit_to_consumer']['max']:.1f} ms; tps {res['tps']:.0f}; other work "
            f"{res['cores']['other']:.2f} cores")
        return res

    def latency(self):
        """The latency run; repeated (up to --spares times) when other work on the machine
        used more than --noisy-cores during it."""
        tries = []
        for attempt in range(self.args.spares + 1):
            res = self.latency_once("latency" + (f".retry{attempt}" if attempt else ""))
            tries.append(res)
            self.results["latency_attempts"] = tries
            self.results["latency"] = res
            self.save()
            if res["cores"]["other"] <= self.args.noisy_cores:
                break
            log(f"latency: other work used {res['cores']['other']:.2f} cores: run again")


    # ------------------------------------------------------------ output

    def save(self):
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)

    def machine(self):
        model = "?"
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    model = ln.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
        git = os.environ.get("PGCDC_BENCH_REV") or subprocess.run(
            ["git", "-C", REPO, "describe", "--always", "--dirty"],
            capture_output=True, text=True).stdout.strip() or "unknown revision"
        ver = subprocess.run([self.pgcdc, "version"], capture_output=True, text=True).stdout
        return dict(cpu=model, cores=os.cpu_count(), mem_mb=mem, kernel=platform.release(),
                    git=git, versions=" ".join(ver.split()), loadavg_start=open(
                        "/proc/loadavg").read().split()[:3])

    def report(self):
        R = self.results
        lines = []
        p = R["params"]
        lines.append(f"mode {R['mode']}: {p['reps']} repetitions; oltp {p['oltp_tx']} tx "
                     f"({3 * p['oltp_tx']} changes), bulk {p['bulk_rows']} rows in one "
                     f"transaction, wide {p['wide_rows']} rows of ~2 KB; machine "
                     f"{R['machine']['cpu']}, {R['machine']['cores']} cores; "
                     f"{R['machine']['git']}")
        lines.append("")
        lines.append("| workload | reader | changes/s median (min–max) | vs pg_recvlogical "
                     "median (min–max) | CPU s / M changes | peak RSS MB | streaming after s | "
                     "walsender CPU s / M | broker CPU s / M | other load, cores |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")

        def mmm(vals, fmt):
            if not vals or any(v is None for v in vals):
                return "–"
            if len(vals) == 1:
                return fmt.format(vals[0])
            return (f"{fmt.format(statistics.median(vals))} "
                    f"({fmt.format(min(vals))}–{fmt.format(max(vals))})")

        for wl in ("oltp", "bulk", "wide"):
            runs = [r for r in R["runs"] if r["workload"] == wl and not r.get("discarded")]
            if not runs:
                continue
            base = {r["rep"]: r for r in runs if r["reader"] == "pg_recvlogical"}
            for reader in READERS:
                rs = [r for r in runs if r["reader"] == reader]
                if not rs:
                    continue
                M = rs[0]["changes"] / 1e6
                ratios = [r["rate"] / base[r["rep"]]["rate"] for r in rs if r["rep"] in base]
                lines.append(
                    f"| {wl} | {reader} | {mmm([r['rate'] for r in rs], '{:,.0f}')} | "
                    f"{mmm(ratios, '{:.2f}') if reader != 'pg_recvlogical' else '1'} | "
                    f"{mmm([r['cpu_s'] / M for r in rs], '{:.2f}')} | "
                    f"{mmm([r['maxrss_kb'] / 1024 for r in rs], '{:.1f}')} | "
                    f"{mmm([r['ready_s'] for r in rs], '{:.2f}')} | "
                    f"{mmm([r['walsender_cpu_s'] / M for r in rs], '{:.2f}')} | "
                    f"{mmm([r['broker_cpu_s'] and r['broker_cpu_s'] / M for r in rs], '{:.2f}')} | "
                    f"{mmm([r['foreign_cores'] for r in rs], '{:.2f}')} |")
        warnings = [f"{r['workload']}.{r['rep']}.{r['reader']}: {r['warning']}"
                    for r in R["runs"] if "warning" in r]
        disc = [r for r in R["runs"] if r.get("discarded")]
        if disc:
            lines.append("")
            lines.append(f"{len(disc)} run(s) disturbed by other work on the machine (more than "
                         f"{self.args.noisy_cores} cores) were repeated: "
                         + ", ".join(f"{r['workload']}.{r['rep']}.{r['reader']} "
                                     f"({r['foreign_cores']:.2f})" for r in disc))
        L = R.get("latency")
        if L:
            lines.append("")
            lines.append(f"latency ({L['script']} transaction) at --rate={L['rate']} for "
                         f"{L['seconds']} s after {L['warmup_s']} s warm-up: achieved "
                         f"{L['tps']:.0f} tx/s ({L['transactions']} tx, {L['messages']} "
                         f"non-tombstone messages); pgcdc peak RSS "
                         f"{L['pgcdc_maxrss_kb'] / 1024:.1f} MB; cores busy: "
                         + ", ".join(f"{k} {v:.2f}" for k, v in L["cores"].items())
                         + f"; pgbench schedule lag avg {L['schedule_lag_avg_ms']} ms max "
                         f"{L['schedule_lag_max_ms']} ms")
            lines.append("")
            lines.append("| ms after commit | p50 | p90 | p99 | p99.9 | max |")
            lines.append("|---|---|---|---|---|---|")
            for key, label in (("commit_to_encode", "pgcdc encoded it (envelope ts_us)"),
                               ("commit_to_produce", "produced (Kafka CreateTime, ms)"),
                               ("commit_to_consumer", "consumer received it")):
                v = L[key]
                lines.append(f"| {label} | {v['p50']:.1f} | {v['p90']:.1f} | {v['p99']:.1f} | "
                             f"{v['p99.9']:.1f} | {v['max']:.1f} |")
            v = L["all_commit_to_consumer"]
            lines.append(f"| consumer received it, warm-up included | {v['p50']:.1f} | "
                         f"{v['p90']:.1f} | {v['p99']:.1f} | {v['p99.9']:.1f} | {v['max']:.1f} |")
            lines.append("")
            lines.append("| window (s after warm-up) | consumer p50 ms | consumer p99 ms | "
                         "consumer max ms | produced p99 ms |")
            lines.append("|---|---|---|---|---|")
            for w in L.get("windows", []):
                lines.append(f"| {w['from_s']}–{w['to_s']} | {w['consumer_p50']:.1f} | "
                             f"{w['consumer_p99']:.1f} | {w['consumer_max']:.1f} | "
                             f"{w['produce_p99']:.1f} |")
        if warnings:
            lines.append("")
            lines += ["WARNING " + w for w in warnings]
        for tag, rep in R["profile"].items():
            lines.append("")
            lines.append(f"profile {tag} (perf, cpu-clock, self %):")
            for key in ("dsos", "symbols", "attribution"):
                lines += ["    " + ln for ln in rep[key][:{"dsos": 8, "symbols": 25}.get(key, 60)]]
        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write(text)
        print(text)

    def main(self):
        self.results["machine"] = self.machine()
        self.results["command"] = " ".join(sys.argv)
        self.results["started"] = datetime.datetime.now().isoformat(timespec="seconds")
        self.start_server()
        try:
            for wl in self.args.workloads:
                self.throughput(wl)
            if not self.args.no_latency:
                self.latency()
        finally:
            self.stop_server()
        self.results["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        self.save()
        self.report()


# ------------------------------------------------------------ latency consumer

def consume_main(bootstrap, topic, partitions, out_path, status_path, fetch_wait_ms):
    """Read topic from the start until SIGTERM; write (commit us, encode us,
    CreateTime ms, receive us) per value message to out_path."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "pgcdc-bench-latency",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # the test broker answers an empty fetch only after fetch.wait.max.ms (500 ms by
        # default); a short wait keeps the consumer from adding that to the latency
        "fetch.wait.max.ms": fetch_wait_ms,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    a = array.array("q")
    n = 0
    last_status = 0.0

    def ts_after(v, key, start):
        j = v.find(key, start)
        if j < 0:
            return -1, 0
        j += len(key)
        k = j
        while k < len(v) and 48 <= v[k] <= 57:
            k += 1
        return k, int(v[j:k])

    with open(status_path, "w") as f:
        f.write("0")
    while not stop:
        msgs = c.consume(1000, 0)
        if not msgs:
            m = c.poll(0.05)
            msgs = [m] if m is not None else []
        now = time.time_ns() // 1000
        for m in msgs:
            if m.error() is not None:
                continue
            n += 1
            v = m.value()
            if v is None:
                continue  # tombstone
            s = v.find(b'"source":')
            pos, commit = ts_after(v, b'"ts_us":', s)
            _, enc = ts_after(v, b'"ts_us":', pos)
            a.extend((commit, enc, m.timestamp()[1], now))
        t = time.monotonic()
        if t - last_status > 0.2:
            with open(status_path + ".tmp", "w") as f:
                f.write(str(n))
            os.replace(status_path + ".tmp", status_path)
            last_status = t
    with open(status_path, "w") as f:
        f.write(str(n))
    c.close()
    with open(out_path, "wb") as f:
        a.tofile(f)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_consume":
        consume_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6],
                     int(sys.argv[7]))
        return
    ap = argparse.ArgumentParser(description="pgcdc benchmark (docs/PERFORMANCE.md)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="small smoke run (default)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="the figures in docs/PERFORMANCE.md")
    ap.set_defaults(mode="quick")
    ap.add_argument("--reps", type=int, help="repetitions of each reader (quick 1, full 5)")
    ap.add_argument("--workloads", default="oltp,bulk,wide",
                    help="comma-separated subset of oltp,bulk,wide (default all)")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency run")
    ap.add_argument("--latency-script", choices=sorted(LATENCY_SCRIPTS), default="update",
                    help="transaction of the latency run: one UPDATE (default) or the 3-statement "
                         "OLTP transaction")
    ap.add_argument("--latency-rate", type=int, help="transactions per second (default 5000)")
    ap.add_argument("--latency-seconds", type=int, help="duration (quick 10, full 60)")
    ap.add_argument("--fetch-wait-ms", type=int, default=5,
                    help="the latency consumer's fetch.wait.max.ms (default 5): the test broker "
                         "answers a fetch that finds nothing only after this long")
    ap.add_argument("--profile", action="store_true",
                    help="also run pgcdc under perf record on oltp and bulk (not timed)")
    ap.add_argument("--quiet-cores", type=float, default=0.25,
                    help="before each timed run wait until the machine uses fewer cores than "
                         "this (default 0.25)")
    ap.add_argument("--quiet-wait", type=float, default=120.0,
                    help="longest wait for a quiet machine, seconds (default 120)")
    ap.add_argument("--noisy-cores", type=float, default=0.3,
                    help="a run during which other programs used more cores than this is run "
                         "again with a spare slot (default 0.3)")
    ap.add_argument("--spares", type=int, default=2,
                    help="spare slots per reader and workload for such repeats (default 2)")
    ap.add_argument("--keep-perf-data", action="store_true",
                    help="keep the perf.data files of --profile (large)")
    ap.add_argument("--pgcdc", default=os.environ.get("PGCDC_BIN"), help="pgcdc binary")
    ap.add_argument("--out", required=True, help="directory for results and logs")
    args = ap.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    if not args.pgcdc:
        ap.error("--pgcdc or PGCDC_BIN is required")
    from pgcdc_test import util
    util.install_signal_handlers()
    util.become_subreaper()
    try:
        Bench(args).main()
    except KeyboardInterrupt:
        util.cleanup_all()
        sys.exit(130)


if __name__ == "__main__":
    main()
