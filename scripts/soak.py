#!/usr/bin/env python3
"""soak.py - kill -9 pgcdc over and over under a mixed workload, then count exactly.

    PGCDC_BIN=build/src/pgcdc PYTHONPATH=tests/integration \
        python3 scripts/soak.py [--kills 15] [--tables 20] [--seed N] [--kafka kraft|testbroker]
        [--nodes 1|3]

A throwaway PostgreSQL and (by default) a one-node Apache Kafka (KRaft, from the
cache tests/deps/fetch.sh fills; the test broker keeps only ~5 MB a partition,
too little for the big transactions). Two slots are created at the same point:
pgcdc streams the first into Kafka and is killed with SIGKILL at random moments
(0.3-4 s after each start), --kills times, while a writer commits a mix on
--tables tables: inserts, updates, deletes, primary-key changes, TRUNCATE, ALTER
TABLE ADD COLUMN, 100,000-row transactions, and transactional and
non-transactional logical messages. Then the writer stops, pgcdc drains to an
end position, and the second slot, read once with `--sink stdout` and never
killed, gives the truth: every event pgcdc should have published.

The count, per event (its position: commit LSN and ordinal, a non-transactional
message at its LSN minus one): lost = in the truth, not in Kafka; duplicated =
messages beyond the one (or, for deletes and key changes, the two or three) an
event makes; unexpected = in Kafka, not in the truth; out of order = a
partition whose positions do not increase. Exit 0 when all four are 0.
"""

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import threading
import time

import psycopg2

import pgcdc_test
from pgcdc_test import Broker, KafkaCluster, PgCluster, lsn_int, run_pgcdc, start_pgcdc

PREFIX = "soak"


class Writer(threading.Thread):
    def __init__(self, dsn, tables, seed):
        super().__init__(daemon=True)
        self.dsn, self.tables, self.rng = dsn, tables, random.Random(seed)
        self.stop = threading.Event()
        self.stats = collections.Counter()
        self.error = None
        self.next_id = 1_000_000

    def run(self):
        try:
            conn = psycopg2.connect(self.dsn)
            conn.autocommit = False
            cur = conn.cursor()
            last_big = time.monotonic()
            while not self.stop.is_set():
                self.one(cur, last_big)
                if time.monotonic() - last_big > 10:
                    last_big = time.monotonic()
                conn.commit()
                time.sleep(self.rng.uniform(0, 0.01))
        except Exception as e:  # reported by main
            self.error = e

    def one(self, cur, last_big):
        r = self.rng.random()
        t = self.rng.choice(self.tables)
        if time.monotonic() - last_big > 10:
            cur.execute(f"INSERT INTO {t} (id, v) SELECT g, 'big' FROM generate_series(%s, %s) g",
                        (self.next_id, self.next_id + 99_999))
            self.next_id += 100_000
            self.stats["100k-row transactions"] += 1
        elif r < 0.45:
            for _ in range(self.rng.randint(1, 5)):
                cur.execute(f"INSERT INTO {t} (id, v) VALUES (%s, 'i') ON CONFLICT DO NOTHING",
                            (self.rng.randint(1, 2000),))
            self.stats["insert transactions"] += 1
        elif r < 0.70:
            cur.execute(f"UPDATE {t} SET v = v || 'u' WHERE id IN "
                        f"(SELECT id FROM {t} ORDER BY random() LIMIT 3)")
            self.stats["update transactions"] += 1
        elif r < 0.82:
            cur.execute(f"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} ORDER BY random() "
                        "LIMIT 2)")
            self.stats["delete transactions"] += 1
        elif r < 0.90:
            # primary-key change: a delete under the old key and a create under the new
            cur.execute(f"UPDATE {t} SET id = id + 5000000 WHERE id = "
                        f"(SELECT id FROM {t} WHERE id < 5000000 ORDER BY random() LIMIT 1)")
            self.stats["primary-key changes"] += 1
        elif r < 0.95:
            cur.execute("SELECT pg_logical_emit_message(true, 'soak', 'in a transaction')")
            cur.execute(f"INSERT INTO {t} (id, v) VALUES (%s, 'm') ON CONFLICT DO NOTHING",
                        (self.rng.randint(1, 2000),))
            cur.execute("SELECT pg_logical_emit_message(false, 'soak', 'outside')")
            self.stats["logical message transactions"] += 1
        elif r < 0.98:
            cur.execute(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS c{self.rng.randint(1, 5)} int")
            self.stats["DDL"] += 1
        else:
            cur.execute(f"TRUNCATE {t}")
            self.stats["TRUNCATE"] += 1


def events_of_truth(pg, cfg, end):
    """(position, op, message count) of every event the never-killed slot gives."""
    r = run_pgcdc(["start", "-c", cfg, "-o", "slot.name=truth", "-o",
                   "checkpoint.path=" + cfg + ".truth", "--sink", "stdout", "--endpos", end],
                  timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"the truth run failed:\n{r.stderr[-3000:]}")
    out = []
    for line in r.stdout.splitlines():
        ev = json.loads(line)
        lsn = lsn_int(ev["commit_lsn"])
        if ev["op"] == "m" and not ev["message"]["transactional"]:
            lsn -= 1  # pgcdc's position for it (docs/DESIGN.md, Positions)
        out.append(((lsn, ev["ordinal"]), ev["op"], ev))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=15)
    ap.add_argument("--tables", type=int, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--kafka", choices=("kraft", "testbroker"), default="kraft")
    ap.add_argument("--nodes", type=int, default=1, help="KRaft nodes (3: replication factor 3, "
                    "min.insync.replicas=2)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print(f"soak: seed {a.seed}, {a.kills} kills, {a.tables} tables, kafka {a.kafka} "
          f"({a.nodes} node{'s' if a.nodes > 1 else ''})", flush=True)
    t0 = time.monotonic()
    with PgCluster() as pg, (KafkaCluster(nodes=a.nodes, config={"min.insync.replicas": 2} if a.nodes >= 3 else None)
                         if a.kafka == "kraft" else Broker()) as kafka:
        tables = [f"t{i:02}" for i in range(a.tables)]
        for t in tables:
            pg.sql(f"CREATE TABLE {t} (id int PRIMARY KEY, v text)")
        pg.sql("CREATE PUBLICATION pgcdc FOR ALL TABLES")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        pg.sql("SELECT pg_create_logical_replication_slot('truth', 'pgoutput')")
        d = pgcdc_test.TempDir("pgcdc-soak-")
        cfg = pgcdc_test.write_config(os.path.join(d.path, "soak.conf"), {
            "source.dsn": pg.dsn(), "topic.prefix": PREFIX,
            "checkpoint.path": os.path.join(d.path, "soak.checkpoint"),
            "kafka.bootstrap.servers": kafka.bootstrap, "checkpoint.interval": "300ms"})
        w = Writer(pg.dsn(), tables, rng.random())
        w.start()
        for i in range(a.kills):
            p = start_pgcdc(["start", "-c", cfg], name=f"pgcdc#{i + 1}")
            time.sleep(rng.uniform(0.3, 4.0))
            if not p.alive():
                raise SystemExit(f"run {i + 1} exited by itself:\n{p.stderr()[-3000:]}")
            p.kill()
            p.close()
            if w.error:
                raise SystemExit(f"the writer failed: {w.error!r}")
        w.stop.set()
        w.join(120)
        end = pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")
        r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=1800)
        if r.returncode != 0:
            raise SystemExit(f"the drain failed:\n{r.stderr[-3000:]}")
        truth = events_of_truth(pg, cfg, end)
        topics = sorted({f"{PREFIX}.public.{t}" for t in tables} | {f"{PREFIX}.message"})
        raw = pgcdc_test.consume_all(kafka.bootstrap, topics, timeout=120, idle=3.0,
                                     conf={"fetch.message.max.bytes": 8 << 20})
    # per event position: how many messages it made
    got = collections.Counter()
    out_of_order = 0
    last = {}
    for m in raw:
        h = {k: v.decode() for k, v in m["headers"]}
        lsn, ordinal = lsn_int(h["pgcdc.lsn"]), int(h["pgcdc.ordinal"])
        pos = (lsn, ordinal // 4)
        got[pos] += 1
        key = (m["topic"], m["partition"])
        if key in last and (lsn, ordinal) <= last[key]:
            out_of_order += 1
        last[key] = (lsn, ordinal)
    want = {}
    for pos, op, ev in truth:
        n = 1
        if op == "d":
            n = 2  # and its tombstone
        elif op == "u" and ev.get("before") and ev["before"].get("id") != ev["after"].get("id"):
            n = 3  # a key change: delete, tombstone, create
        want[pos] = want.get(pos, 0) + n
    lost = sum(1 for pos in want if got.get(pos, 0) == 0)
    partial = sum(1 for pos, n in want.items() if 0 < got.get(pos, 0) < n)
    duplicated = sum(max(0, got.get(pos, 0) - n) for pos, n in want.items())
    unexpected = sum(c for pos, c in got.items() if pos not in want)
    print(f"soak: {len(raw)} messages in Kafka for {len(want)} events "
          f"({sum(want.values())} messages expected); writer: "
          + ", ".join(f"{v} {k}" for k, v in sorted(w.stats.items())), flush=True)
    print(f"soak: lost {lost}, partial {partial}, duplicated {duplicated}, unexpected "
          f"{unexpected}, out of order {out_of_order}; {a.kills} kills in "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return 0 if lost == partial == duplicated == unexpected == out_of_order == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
