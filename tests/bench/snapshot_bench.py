"""snapshot_bench.py - the snapshot's figures (docs/PERFORMANCE.md, Snapshots), one run.

    PGCDC_BIN=... PGCDC_TESTBROKER_BIN=... PYTHONPATH=tests/integration \\
        /usr/bin/python3 tests/bench/snapshot_bench.py [--rows 1000000] [--kafka] [--big 5000000]

On one throwaway PostgreSQL 15, for a table of --rows rows of about 130 bytes:

- COPY (FORMAT binary) TO STDOUT of the table, with 1 and 2 connections (key ranges): the
  floor of what reading costs the server;
- pgcdc snapshot.mode = initial_only of the table into the test broker, JSON (rows/s from
  pgcdc's own "reading" to "every table read" log lines, and the process's peak RSS), with
  the default snapshot.max.inflight.chunks = 2 and again with 1, and with
  snapshot.max.threads = 2 (two connections, a key range each, per window);
- pgcdc streaming the same rows (inserted after the slot in one transaction) with --endpos,
  rows/s from "streaming from slot" to "stopped at";
- a 2 KB-row table (--wide rows) snapshot;
- with --big N, the peak RSS of snapshotting an N-row table, and how kind it is to the
  source meanwhile: a writer commits about 200 transactions/s into another table while a
  sampler records, every 50 ms, the longest-running transaction of pgcdc's sessions and
  the age (in xids) of their oldest backend_xmin, and the WAL the slot retains;
- with --kafka, the snapshot into a real one-node Apache Kafka (KRaft).

Ratios are taken within this one run. Prints a table and writes --out (JSON) if given.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime

import psycopg2

import pgcdc_test
from pgcdc_test import Broker, KafkaCluster, PgCluster, TempDir, write_config

PGCDC = os.environ["PGCDC_BIN"]
PARTITIONS = 64

NARROW = ("CREATE TABLE {t} (id bigint PRIMARY KEY, a int, b text, c timestamptz, d numeric(12,2), "
          "e boolean)")
NARROW_FILL = ("INSERT INTO {t} SELECT g, g % 1000, 'row ' || g || ' ' || repeat('x', 60), "
               "'2026-01-01'::timestamptz + g * interval '1 second', g / 100.0, g % 2 = 0 "
               "FROM generate_series({lo}, {hi}) g")
WIDE = "CREATE TABLE {t} (id bigint PRIMARY KEY, payload text)"
WIDE_FILL = ("INSERT INTO {t} SELECT g, repeat(md5(g::text), 64) FROM generate_series({lo}, {hi}) g")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fill(pg, create, fill_sql, table, rows, step=500_000):
    pg.sql(create.format(t=table))
    for lo in range(1, rows + 1, step):
        pg.sql(fill_sql.format(t=table, lo=lo, hi=min(rows, lo + step - 1)))
    pg.sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    pg.sql(f"VACUUM ANALYZE {table}")
    size = pg.sql_one(f"SELECT pg_table_size('{table}')")
    return size


def copy_rate(pg, table, rows, conns):
    """rows/s of COPY (SELECT ... key range) TO STDOUT (FORMAT binary) over conns sessions."""
    bounds = [1 + rows * i // conns for i in range(conns + 1)]
    bounds[-1] = rows + 1
    done = []

    def one(lo, hi):
        c = psycopg2.connect(pg.dsn())
        with open(os.devnull, "wb") as sink, c.cursor() as cur:
            cur.copy_expert(f"COPY (SELECT * FROM {table} WHERE id >= {lo} AND id < {hi}) TO "
                            "STDOUT (FORMAT binary)", sink)
        c.close()
        done.append(hi - lo)

    t0 = time.monotonic()
    th = [threading.Thread(target=one, args=(bounds[i], bounds[i + 1])) for i in range(conns)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def stamp(line):
    m = re.match(r"(\S+Z) ", line)
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def run_pgcdc(args, log_path):
    """Run pgcdc to its end; returns (stderr text, peak RSS in MB)."""
    with open(log_path, "w") as err:
        p = subprocess.Popen([PGCDC, *args], stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    text = open(log_path).read()
    if p.returncode != 0:
        raise SystemExit(f"pgcdc {' '.join(args)} failed ({p.returncode}):\n{text[-3000:]}")
    return text, ru.ru_maxrss / 1024.0


def between(text, start_rx, end_rx):
    a = next(stamp(l) for l in text.splitlines() if re.search(start_rx, l))
    b = next(stamp(l) for l in text.splitlines() if re.search(end_rx, l))
    return b - a


class Sampler(threading.Thread):
    """During a snapshot: a writer (about 200 commits/s into its own table, so that xids
    advance) and, every 50 ms, pgcdc's longest transaction, its oldest backend_xmin's age
    and the WAL the slot retains."""

    def __init__(self, pg, slot):
        super().__init__(daemon=True)
        self.pg = pg
        self.slot = slot
        self.stop = threading.Event()
        self.longest_ms = 0.0
        self.max_age = 0
        self.max_retained = 0
        self.commits = 0
        self.t0 = time.monotonic()
        pg.sql("CREATE TABLE IF NOT EXISTS bench_writer (n int)")
        self.writer = threading.Thread(target=self.write, daemon=True)

    def write(self):
        c = psycopg2.connect(self.pg.dsn())
        c.autocommit = True
        with c.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("INSERT INTO bench_writer VALUES (1)")
                self.commits += 1
                time.sleep(0.005)
        c.close()

    def run(self):
        self.writer.start()
        c = psycopg2.connect(self.pg.dsn())
        c.autocommit = True
        with c.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)) "
                    "* 1000, 0), coalesce(max(age(backend_xmin)), 0) FROM pg_stat_activity "
                    "WHERE application_name = 'pgcdc' AND backend_type = 'client backend'")
                ms, age = cur.fetchone()
                cur.execute("SELECT coalesce(pg_current_wal_lsn() - restart_lsn, 0) FROM "
                            "pg_replication_slots WHERE slot_name = %s", (self.slot,))
                row = cur.fetchone()
                self.longest_ms = max(self.longest_ms, float(ms))
                self.max_age = max(self.max_age, int(age))
                self.max_retained = max(self.max_retained, int(row[0]) if row else 0)
                time.sleep(0.05)
        c.close()

    def finish(self):
        self.elapsed = time.monotonic() - self.t0
        self.stop.set()
        self.join(10)
        self.writer.join(10)

    def figures(self):
        return {"longest_xact_ms": self.longest_ms, "max_xmin_age": self.max_age,
                "writer_tps": self.commits / self.elapsed,
                "max_retained_mb": self.max_retained / 1048576}


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.results = {}

    def config(self, pg, pub, slot, bootstrap, name, **extra):
        return write_config(os.path.join(self.tmp, name + ".conf"), {
            "source.dsn": pg.dsn(), "slot.name": slot, "publication.name": pub,
            "topic.prefix": name, "checkpoint.path": os.path.join(self.tmp, name + ".ckpt"),
            "kafka.bootstrap.servers": bootstrap, "log.level": "info", **extra})

    def snapshot(self, pg, table, bootstrap, name, rows, watch=False, **extra):
        pub, slot = f"p_{name}", f"s_{name}"
        if not pg.sql_one("SELECT count(*) FROM pg_publication WHERE pubname = %s", (pub,)):
            pg.sql(f"CREATE PUBLICATION {pub} FOR TABLE {table}")
        pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        ckpt = os.path.join(self.tmp, name + ".ckpt")
        if os.path.exists(ckpt):
            os.remove(ckpt)
        cfg = self.config(pg, pub, slot, bootstrap, name,
                          **{"snapshot.mode": "initial_only", **extra})
        sampler = Sampler(pg, slot) if watch else None
        if sampler:
            sampler.start()
        try:
            text, rss = run_pgcdc(["start", "-c", cfg], os.path.join(self.tmp, name + ".log"))
        finally:
            if sampler:
                sampler.finish()
        if sampler:
            self.results.update(sampler.figures())
        secs = between(text, r"snapshot: reading", r"snapshot: every table read")
        got = int(re.search(r"every table read \((\d+) rows", text).group(1))
        if got != rows:
            raise SystemExit(f"{name}: read {got} rows of {rows}")
        pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
        return rows / secs, rss

    def stream(self, pg, create, fill_sql, table, bootstrap, rows):
        pub, slot = "p_stream", "s_stream"
        pg.sql(create.format(t=table))
        pg.sql(f"CREATE PUBLICATION {pub} FOR TABLE {table}")
        pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        pg.sql(fill_sql.format(t=table, lo=1, hi=rows))
        pg.flush_wal()
        end = pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")
        cfg = self.config(pg, pub, slot, bootstrap, "stream", **{"snapshot.mode": "no_data"})
        text, rss = run_pgcdc(["start", "-c", cfg, "--endpos", end],
                              os.path.join(self.tmp, "stream.log"))
        secs = between(text, r"streaming from slot", r"stopped at")
        pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
        return rows / secs, rss

    def main(self):
        a = self.args
        r = self.results
        with PgCluster(name="snapbench", settings={"shared_buffers": "1GB",
                                                   "max_wal_size": "8GB"}) as pg:
            log(f"filling {a.rows} rows of about 130 bytes")
            size = fill(pg, NARROW, NARROW_FILL, "narrow", a.rows)
            r["narrow_rows"] = a.rows
            r["narrow_bytes_per_row"] = round(size / a.rows)
            topics = {f"{n}.public.{t}": PARTITIONS for n, t in
                      (("snap", "narrow"), ("wide", "wide"), ("big", "big"), ("stream", "streamed"))}
            with Broker(topics=topics) as broker:
                copy_rate(pg, "narrow", a.rows, 1)  # warm the cache
                r["copy_binary_1"] = copy_rate(pg, "narrow", a.rows, 1)
                r["copy_binary_2"] = copy_rate(pg, "narrow", a.rows, 2)
                log(f"COPY binary: {r['copy_binary_1']:.0f} rows/s, 2 connections "
                    f"{r['copy_binary_2']:.0f}")
                r["snapshot_json"], r["snapshot_json_rss_mb"] = self.snapshot(
                    pg, "narrow", broker.bootstrap, "snap", a.rows)
                log(f"snapshot: {r['snapshot_json']:.0f} rows/s, peak RSS "
                    f"{r['snapshot_json_rss_mb']:.1f} MB")
                # each chunk waiting for the delivery of the one before it (the rows of a
                # chunk read ahead all the same)
                r["snapshot_json_inflight1"], _ = self.snapshot(
                    pg, "narrow", broker.bootstrap, "snap", a.rows,
                    **{"snapshot.max.inflight.chunks": 1})
                log(f"snapshot, snapshot.max.inflight.chunks = 1: "
                    f"{r['snapshot_json_inflight1']:.0f} rows/s")
                r["snapshot_json_threads2"], r["snapshot_json_threads2_rss_mb"] = self.snapshot(
                    pg, "narrow", broker.bootstrap, "snap", a.rows,
                    **{"snapshot.max.threads": 2})
                log(f"snapshot, snapshot.max.threads = 2: "
                    f"{r['snapshot_json_threads2']:.0f} rows/s, peak RSS "
                    f"{r['snapshot_json_threads2_rss_mb']:.1f} MB")
                r["stream_json"], r["stream_json_rss_mb"] = self.stream(
                    pg, NARROW, NARROW_FILL, "streamed", broker.bootstrap, a.rows)
                log(f"streaming the same rows: {r['stream_json']:.0f} rows/s")
                fill(pg, WIDE, WIDE_FILL, "wide", a.wide)
                r["wide_rows"] = a.wide
                r["snapshot_wide"], r["snapshot_wide_rss_mb"] = self.snapshot(
                    pg, "wide", broker.bootstrap, "wide", a.wide)
                log(f"2 KB rows: {r['snapshot_wide']:.0f} rows/s, peak RSS "
                    f"{r['snapshot_wide_rss_mb']:.1f} MB")
                r["snapshot_wide_threads2"], r["snapshot_wide_threads2_rss_mb"] = self.snapshot(
                    pg, "wide", broker.bootstrap, "wide", a.wide, **{"snapshot.max.threads": 2})
                log(f"2 KB rows, snapshot.max.threads = 2: {r['snapshot_wide_threads2']:.0f} "
                    f"rows/s, peak RSS {r['snapshot_wide_threads2_rss_mb']:.1f} MB")
                if a.big:
                    fill(pg, NARROW, NARROW_FILL, "big", a.big)
                    r["big_rows"] = a.big
                    r["snapshot_big"], r["snapshot_big_rss_mb"] = self.snapshot(
                        pg, "big", broker.bootstrap, "big", a.big, watch=True)
                    log(f"{a.big} rows: {r['snapshot_big']:.0f} rows/s, peak RSS "
                        f"{r['snapshot_big_rss_mb']:.1f} MB; longest pgcdc transaction "
                        f"{r['longest_xact_ms']:.0f} ms, oldest backend_xmin age "
                        f"{r['max_xmin_age']} xids ({r['writer_tps']:.0f} tx/s writer), slot "
                        f"retained at most {r['max_retained_mb']:.1f} MB")
            if a.kafka:
                with KafkaCluster(nodes=1) as k:
                    k.create_topic("kraft.public.narrow", PARTITIONS)
                    r["snapshot_kafka"], r["snapshot_kafka_rss_mb"] = self.snapshot(
                        pg, "narrow", k.bootstrap, "kraft", a.rows)
                    log(f"real Kafka: {r['snapshot_kafka']:.0f} rows/s")
        r["ratio_to_stream"] = r["snapshot_json"] / r["stream_json"]
        r["ratio_inflight2_to_1"] = r["snapshot_json"] / r["snapshot_json_inflight1"]
        r["ratio_threads2_to_1"] = r["snapshot_json_threads2"] / r["snapshot_json"]
        r["ratio_to_copy_binary"] = r["snapshot_json"] / r["copy_binary_1"]
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()},
                         indent=2))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(r, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--wide", type=int, default=100_000, help="rows of the 2 KB-row table")
    ap.add_argument("--big", type=int, default=0, help="rows of the peak-RSS table (0: none)")
    ap.add_argument("--kafka", action="store_true", help="also into a real Apache Kafka")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    with TempDir() as tmp:
        Bench(a, tmp.path).main()


if __name__ == "__main__":
    main()
