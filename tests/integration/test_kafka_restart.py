"""test_kafka_restart.py - SIGTERM and restart under load: nothing lost, nothing published twice.

A writer thread commits a steady stream of inserts, updates and deletes; every
row carries a version counter that each update increments, so each change has
a name: (table, key, version), or (table, key, "d") for its delete. pgcdc
(Kafka sink, no endpos) is stopped with SIGTERM at random moments, one of them
while a 20,000-row transaction is being published, and started again each
time; finally the writer stops and pgcdc drains to an endpos. Every change the
writer committed must be in Kafka exactly once: counted per (pgcdc.lsn,
pgcdc.ordinal) and per (table, key, version).
"""

import collections
import os
import random
import threading
import time

import psycopg2

import pgcdc_test
from pgcdc_test import TestCase, run_pgcdc, wait_until

import kafka_check as kc

BIG_ROWS = 20_000
PREFIX = "rs"
TOPICS = {f"{PREFIX}.public.ra": 16, f"{PREFIX}.public.rb": 16, f"{PREFIX}.public.rbig": 32}


class Writer(threading.Thread):
    """Commits small transactions on ra (id) and rb (a, b) until stopped; history holds the
    committed changes as (table, key tuple of text, version or "d")."""

    def __init__(self, dsn, seed):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.history = []
        self.transactions = 0
        self.error = None
        self.next_id = 0

    def run(self):
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.error = e

    def _run(self):
        rng = self.rng
        conn = psycopg2.connect(self.dsn)
        live = {"ra": {}, "rb": {}}    # table -> {key tuple: version}
        keys = {"ra": [], "rb": []}    # the same keys, for random choice
        try:
            cur = conn.cursor()
            while not self.stop_event.is_set():
                pending = []
                undo = []
                for _ in range(rng.randint(1, 6)):
                    table = rng.choice(("ra", "rb"))
                    lv, ks = live[table], keys[table]
                    r = rng.random()
                    if r < 0.45 or len(ks) < 20:
                        self.next_id += 1
                        n = self.next_id
                        k = (str(n),) if table == "ra" else (str(n // 10), str(n % 10))
                        if table == "ra":
                            cur.execute("INSERT INTO ra VALUES (%s, 0, %s)",
                                        (n, rng.choice(["x", "it's", None, "\U0001F600"])))
                        else:
                            cur.execute("INSERT INTO rb VALUES (%s, %s, 0)", (n // 10, n % 10))
                        lv[k] = 0
                        ks.append(k)
                        undo.append(("ins", table, k))
                        pending.append((table, k, 0))
                    elif r < 0.85:
                        k = rng.choice(ks)
                        where = "id = %s" if table == "ra" else "a = %s AND b = %s"
                        cur.execute(f"UPDATE {table} SET ver = ver + 1 WHERE {where} "
                                    "RETURNING ver", k)
                        v = cur.fetchone()[0]
                        if v != lv[k] + 1:
                            raise AssertionError(f"{table} {k}: version {v} after {lv[k]}")
                        undo.append(("upd", table, k, lv[k]))
                        lv[k] = v
                        pending.append((table, k, v))
                    else:
                        i = rng.randrange(len(ks))
                        k = ks[i]
                        ks[i] = ks[-1]
                        ks.pop()
                        where = "id = %s" if table == "ra" else "a = %s AND b = %s"
                        cur.execute(f"DELETE FROM {table} WHERE {where}", k)
                        undo.append(("del", table, k, lv.pop(k)))
                        pending.append((table, k, "d"))
                if rng.random() < 0.05:
                    conn.rollback()
                    for u in reversed(undo):
                        lv, ks = live[u[1]], keys[u[1]]
                        if u[0] == "ins":
                            del lv[u[2]]
                            ks.remove(u[2])
                        elif u[0] == "upd":
                            lv[u[2]] = u[3]
                        else:
                            lv[u[2]] = u[3]
                            ks.append(u[2])
                else:
                    conn.commit()
                    self.history.extend(pending)
                    self.transactions += 1
                time.sleep(0.003)
        finally:
            conn.close()


class KafkaRestartTest(TestCase):
    def test_sigterm_restarts_lose_nothing_and_repeat_nothing(self):
        rng = random.Random(int(os.environ.get("PGCDC_TEST_SEED", "777")))
        pg = self.pg_cluster()
        pg.sql("CREATE TABLE ra (id int PRIMARY KEY, ver int NOT NULL, note text)")
        pg.sql("CREATE TABLE rb (a int, b int, ver int NOT NULL, PRIMARY KEY (a, b))")
        pg.sql("CREATE TABLE rbig (id int PRIMARY KEY, batch int NOT NULL)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE ra, rb, rbig")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        kafka = self.broker(topics=TOPICS)
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "topic.prefix": PREFIX,
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": kafka.bootstrap,
            "status.interval": "1s",
            # a modest window: a 20,000-row transaction takes many round trips to publish
            "inflight.max.messages": 2000,
        })

        writer = Writer(pg.dsn(), rng.random())
        writer.start()
        self.addCleanup(writer.stop_event.set)
        big_batches = 0
        stops = []  # (kind, exit code)
        mid_txn_stops = 0
        t0 = time.monotonic()

        def big_total():
            return sum(h for _, h in pgcdc_test.watermarks(kafka.bootstrap,
                                                           f"{PREFIX}.public.rbig").values())

        def run_once(kind):
            nonlocal big_batches, mid_txn_stops
            p = self.start_pgcdc(["start", "-c", cfg], name=f"pgcdc#{len(stops) + 1}")
            p.wait_for_output(r"streaming from slot", timeout=30)
            if kind == "random":
                time.sleep(rng.uniform(0.3, 4.0))
            else:
                # slow the broker, commit a big transaction, stop as soon as its first
                # messages have arrived (long before its last)
                before = big_total()
                kafka.slow(40, 1_000_000)
                big_batches += 1
                first = big_batches * 1_000_000
                pg.sql("INSERT INTO rbig SELECT g, %s FROM generate_series(%s, %s) g",
                       (big_batches, first, first + BIG_ROWS - 1))
                pg.flush_wal()
                wait_until(lambda: big_total() > before, timeout=30, interval=0.02,
                           message="the big transaction's first messages")
            rc = p.terminate(timeout=60)
            if kind == "big":
                kafka.full_speed()
                published = big_total() - before
                if published < BIG_ROWS:
                    mid_txn_stops += 1
                print(f"\nstop during the {BIG_ROWS}-row transaction: {published} of its "
                      f"messages were in Kafka", flush=True)
            stops.append((kind, rc))
            self.assertEqual(rc, 0, f"stop #{len(stops)} ({kind}): exit code {rc}\n"
                             f"{p.stderr()[-3000:]}")
            # the clean stop checkpointed, and told the server exactly that
            saved = kc.checkpoint_lsn(ckpt)
            self.assertIsNotNone(saved)
            self.assertEqual(kc.fmt_lsn(saved), pg.slot("pgcdc")["confirmed_flush_lsn"])
            self.assertIsNone(writer.error)

        run_once("random")
        run_once("random")
        run_once("big")
        run_once("random")
        if mid_txn_stops == 0:
            run_once("big")  # the first one came too late: once more
        run_once("random")
        self.assertGreaterEqual(len(stops), 5)
        self.assertGreaterEqual(mid_txn_stops, 1, "no stop landed inside the big transaction")

        writer.stop_event.set()
        writer.join(30)
        self.assertFalse(writer.is_alive(), "the workload thread did not stop")
        self.assertIsNone(writer.error)
        end = kc.end_lsn(pg)
        r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=120)
        self.assertEqual(r.returncode, 0, r)
        print(f"\n{len(stops)} stops, {writer.transactions} writer transactions, "
              f"{len(writer.history)} changes, {big_batches} big transactions, "
              f"{time.monotonic() - t0:.1f}s", flush=True)

        msgs, counts = kc.read_topics(kafka.bootstrap, list(TOPICS), "json")
        with self.subTest("each (lsn, ordinal) once"):
            kc.check_unique_positions(self, msgs)
        with self.subTest("headers and ordinals"):
            kc.check_headers(self, msgs, kc.source_id(pg, "pgcdc"))
            kc.check_ordinals(self, msgs)
        with self.subTest("each (table, key, version) once, none missing"):
            want = collections.Counter(writer.history)
            got = collections.Counter()
            for m in msgs:
                ev = m["event"]
                if ev is None or ev["table"] == "rbig":
                    continue
                if ev["op"] == "d":
                    got[(ev["table"], m["key"] and tuple(v for _, v in m["key"]), "d")] += 1
                else:
                    k = tuple(v for _, v in m["key"])
                    got[(ev["table"], k, int(ev["after"]["ver"]))] += 1
            twice = [(c, n) for c, n in got.items() if n > 1]
            lost = list(want - got)
            extra = [c for c in got if c not in want]
            self.assertEqual((len(twice), len(lost), len(extra)), (0, 0, 0),
                             f"published twice e.g. {twice[:5]}; lost e.g. {lost[:5]}; "
                             f"never committed e.g. {extra[:5]}")
        with self.subTest("each row of the big transactions once"):
            ids = collections.Counter(m["key"] for m in msgs
                                      if m["topic"].endswith(".rbig") and m["event"] is not None)
            self.assertEqual(len(ids), big_batches * BIG_ROWS)
            twice = sum(1 for n in ids.values() if n > 1)
            self.assertEqual(twice, 0, f"{twice} rows of the big transactions published twice "
                             f"({sum(ids.values())} messages for {len(ids)} rows)")
        with self.subTest("tombstones"):
            kc.check_tombstones(self, msgs)
        with self.subTest("(lsn, ordinal) strictly increases within each partition"):
            kc.check_partition_order(self, msgs)
        with self.subTest("rebuilt tables equal the source"):
            by_topic = collections.defaultdict(list)
            for m in msgs:
                by_topic[m["topic"]].append(m)
            for table, cols, pk in (("ra", ["id", "ver", "note"], ["id"]),
                                    ("rb", ["a", "b", "ver"], ["a", "b"]),
                                    ("rbig", ["id", "batch"], ["id"])):
                got, problems = kc.rebuild(by_topic[f"{PREFIX}.public.{table}"], cols, pk)
                want = kc.source_rows(pg, table, cols)
                self.assertTrue(got == want, f"{table}: {kc.diff_summary(want, got)}; "
                                f"{len(problems)} problems e.g. {problems[:3]}")


if __name__ == "__main__":
    pgcdc_test.main()
