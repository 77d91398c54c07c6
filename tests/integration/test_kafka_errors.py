"""test_kafka_errors.py - pgcdc start into Kafka: each failure is clear and loses nothing.

Wrong password, missing slot, a checkpoint from another slot or another server,
a broker that cannot be reached, and a message larger than the producer may
send: each gives a message that names the problem, the documented exit status,
and leaves the checkpoint and the slot where no change is lost.
"""

import os
import random
import re
import signal
import string
import time

import pgcdc_test
from pgcdc_test import TestCase, free_port, produce, run_pgcdc

import kafka_check as kc

PASSWORD = "Wr0ng-Kafka-Secret"


class KafkaErrorsBase(TestCase):
    """Sources, configurations and the not-past checks shared with test_kafka_real_errors."""

    def make_source(self, pg=None, slots=("pgcdc",)):
        pg = pg or self.pg_cluster()
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE t")
        for s in slots:
            pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (s,))
        return pg

    def config(self, pg, bootstrap, **extra):
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        settings = {
            "source.dsn": pg.dsn(),
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": bootstrap,
            "status.interval": "1s",
        }
        settings.update({k.replace("_", "."): v for k, v in extra.items()})
        return self.write_config(settings), ckpt

    def insert_rows(self, pg, first, count):
        """Insert rows in one transaction; returns an LSN before its commit record."""
        conn = pg.connect(autocommit=False)
        try:
            cur = conn.cursor()
            cur.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(%s, %s) g",
                        (first, first + count - 1))
            cur.execute("SELECT pg_current_wal_insert_lsn()::text")
            before_commit = pgcdc_test.lsn_int(cur.fetchone()[0])
            conn.commit()
        finally:
            conn.close()
        pg.flush_wal()
        return before_commit

    def assert_not_past(self, pg, ckpt, before_commit):
        """Neither the checkpoint nor the slot passed the commit after before_commit."""
        saved = kc.checkpoint_lsn(ckpt)
        self.assertTrue(saved is None or saved <= before_commit,
                        f"checkpoint {kc.fmt_lsn(saved or 0)} passed the undelivered "
                        f"transaction (commit after {kc.fmt_lsn(before_commit)})")
        self.assertLessEqual(kc.slot_confirmed(pg, "pgcdc"), before_commit)

    def deliver_later(self, pg, cfg, bootstrap, ids):
        """Once a broker is there, the rows are delivered, exactly once."""
        r = run_pgcdc(["start", "-c", cfg, "-o", "kafka.bootstrap.servers=" + bootstrap,
                       "--endpos", kc.end_lsn(pg)], timeout=60)
        self.assertEqual(r.returncode, 0, r)
        msgs, _ = kc.read_topics(bootstrap, ["pgcdc.public.t"], "json")
        self.assertEqual(sorted(int(m["event"]["after"]["id"]) for m in msgs), ids)


class KafkaErrorsTest(KafkaErrorsBase):
    # ------------------------------------------------------------ postgresql side

    def test_wrong_password(self):
        pg = self.make_source()
        kafka = self.broker()
        cfg, ckpt = self.config(pg, kafka.bootstrap)
        dsn = pg.dsn(user=pg.app_user, password=PASSWORD)
        r = run_pgcdc(["start", "-c", cfg, "-o", "source.dsn=" + dsn])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("password authentication failed", r.stderr)
        self.assertIn(pg.app_user, r.stderr)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(ckpt))

    def test_missing_slot(self):
        pg = self.make_source()
        kafka = self.broker()
        cfg, ckpt = self.config(pg, kafka.bootstrap, slot_name="nope")
        r = run_pgcdc(["start", "-c", cfg])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('replication slot "nope" does not exist', r.stderr)
        self.assertIn("pgcdc setup", r.stderr)
        self.assertFalse(os.path.exists(ckpt))

    def test_checkpoint_of_another_slot(self):
        pg = self.make_source(slots=("slot_a", "slot_b"))
        kafka = self.broker()
        cfg_a, ckpt = self.config(pg, kafka.bootstrap, slot_name="slot_a")
        pg.sql("INSERT INTO t VALUES (1, 'a')")
        run_pgcdc(["start", "-c", cfg_a, "--endpos", kc.end_lsn(pg)], check=0)
        with open(ckpt) as f:
            saved = f.read()
        before_b = pg.slot("slot_b")["confirmed_flush_lsn"]

        cfg_b = self.write_config({"source.dsn": pg.dsn(), "slot.name": "slot_b",
                                   "checkpoint.path": ckpt,
                                   "kafka.bootstrap.servers": kafka.bootstrap})
        r = run_pgcdc(["start", "-c", cfg_b, "--endpos", kc.end_lsn(pg)])
        self.assertEqual(r.returncode, 4, r)
        self.assertIn('"slot_a"', r.stderr)
        self.assertIn('"slot_b"', r.stderr)
        self.assertIn(ckpt, r.stderr)
        with open(ckpt) as f:
            self.assertEqual(f.read(), saved, "the refused run rewrote the checkpoint")
        self.assertEqual(pg.slot("slot_b")["confirmed_flush_lsn"], before_b)
        # nothing of slot_b was published under the refused run
        wm = pgcdc_test.watermarks(kafka.bootstrap, "pgcdc.public.t")
        self.assertEqual(sum(h for _, h in wm.values()), 1)

    def test_checkpoint_of_another_server(self):
        pg1 = self.make_source()
        pg2 = self.make_source(pg=self.pg_cluster(name="pg2"))
        kafka = self.broker()
        cfg1, ckpt = self.config(pg1, kafka.bootstrap)
        pg1.sql("INSERT INTO t VALUES (1, 'a')")
        run_pgcdc(["start", "-c", cfg1, "--endpos", kc.end_lsn(pg1)], check=0)
        with open(ckpt) as f:
            saved = f.read()
        id1 = str(pg1.sql_one("SELECT system_identifier FROM pg_control_system()"))
        id2 = str(pg2.sql_one("SELECT system_identifier FROM pg_control_system()"))
        self.assertNotEqual(id1, id2)

        before = pg2.slot("pgcdc")["confirmed_flush_lsn"]
        cfg2 = self.write_config({"source.dsn": pg2.dsn(), "checkpoint.path": ckpt,
                                  "kafka.bootstrap.servers": kafka.bootstrap})
        r = run_pgcdc(["start", "-c", cfg2])
        self.assertEqual(r.returncode, 4, r)
        self.assertIn("another server", r.stderr)
        self.assertIn(id1, r.stderr)
        self.assertIn(id2, r.stderr)
        self.assertIn(ckpt, r.stderr)
        with open(ckpt) as f:
            self.assertEqual(f.read(), saved)
        self.assertEqual(pg2.slot("pgcdc")["confirmed_flush_lsn"], before)

    # ------------------------------------------------------------------ kafka side

    def test_broker_unreachable_at_start(self):
        pg = self.make_source()
        port = free_port()  # nothing listens there
        cfg, ckpt = self.config(pg, f"127.0.0.1:{port}", shutdown_timeout="3s")
        before_commit = self.insert_rows(pg, 1, 100)
        confirmed = pg.slot("pgcdc")["confirmed_flush_lsn"]
        with self.start_pgcdc(["start", "-c", cfg]) as p:
            # pgcdc keeps running and retrying, and says so
            p.wait_for_output(r"(?i)warning.*kafka", timeout=20)
            time.sleep(3)
            self.assertTrue(p.alive(), p.stderr())
            # ... and neither the checkpoint nor the slot moves past the undelivered rows
            self.assert_not_past(pg, ckpt, before_commit)
            t0 = time.monotonic()
            p.signal(signal.SIGTERM)
            rc = p.wait(30)
            stop_secs = time.monotonic() - t0
            err = p.stderr()
        print(f"\nbroker unreachable at start: SIGTERM -> exit code {rc} after {stop_secs:.1f}s; "
              f"last lines:\n{chr(10).join(err.splitlines()[-3:])}", flush=True)
        # nothing was produced yet (the changes wait in the slot): a clean stop, exit 0
        self.assertEqual(rc, 0, err[-2000:])
        self.assertLess(stop_secs, 15)
        self.assert_not_past(pg, ckpt, before_commit)
        self.assertEqual(pg.slot("pgcdc")["confirmed_flush_lsn"], confirmed)
        with self.subTest("librdkafka's messages go through pgcdc's log (log.level, log.format)"):
            raw = [line for line in err.splitlines() if re.match(r"%\d\|", line)]
            self.assertEqual(raw[:3], [], f"{len(raw)} raw librdkafka log lines on stderr")
        self.deliver_later(pg, cfg, self.broker().bootstrap, list(range(1, 101)))

    def test_broker_lost_while_streaming(self):
        pg = self.make_source()
        kafka = self.broker()
        cfg, ckpt = self.config(pg, kafka.bootstrap, shutdown_timeout="3s")
        with self.start_pgcdc(["start", "-c", cfg]) as p:
            p.wait_for_output(r"streaming from slot", timeout=30)
            kafka.down("all")
            before_commit = self.insert_rows(pg, 1, 100)
            p.wait_for_output(r"(?i)warning.*kafka", timeout=20)
            time.sleep(3)
            self.assertTrue(p.alive(), p.stderr())
            self.assert_not_past(pg, ckpt, before_commit)
            t0 = time.monotonic()
            p.signal(signal.SIGTERM)
            rc = p.wait(30)
            stop_secs = time.monotonic() - t0
            err = p.stderr()
        print(f"\nbroker lost while streaming: SIGTERM -> exit code {rc} after {stop_secs:.1f}s; "
              f"last lines:\n{chr(10).join(err.splitlines()[-3:])}", flush=True)
        self.assertNotEqual(rc, 0, "exit code 0 although 100 messages were never delivered")
        self.assertIn("undelivered", err)
        self.assertLess(stop_secs, 15)
        self.assert_not_past(pg, ckpt, before_commit)
        kafka.up("all")
        self.deliver_later(pg, cfg, kafka.bootstrap, list(range(1, 101)))

    def test_forged_position_refused(self):
        """A message with this source's pgcdc.source header and a position beyond the server's
        WAL (pgcdc never wrote it) must not become the partition's mark: every later change
        of the partition would be skipped as "already in Kafka". pgcdc refuses to start,
        naming the topic, the partition and the offset, and nothing is lost."""
        pg = self.make_source()
        kafka = self.broker(topics={"pgcdc.public.t": 1})
        cfg, ckpt = self.config(pg, kafka.bootstrap)
        pg.sql("INSERT INTO t VALUES (1, 'one')")
        r = run_pgcdc(["start", "-c", cfg, "--endpos", kc.end_lsn(pg)], timeout=60)
        self.assertEqual(r.returncode, 0, r)
        forged = produce(kafka.bootstrap, "pgcdc.public.t", b'{"forged":true}', key=b'{"id":9}',
                         headers=[("pgcdc.lsn", b"FFFFFFFF/FFFFFFFF"), ("pgcdc.ordinal", b"0"),
                                  ("pgcdc.op", b"c"),
                                  ("pgcdc.source", kc.source_id(pg, "pgcdc").encode())])
        pg.sql("INSERT INTO t VALUES (2, 'two')")
        r = run_pgcdc(["start", "-c", cfg, "--endpos", kc.end_lsn(pg)], timeout=60)
        self.assertEqual(r.returncode, 4, r)
        self.assertIn(f'pgcdc.public.t [0] at offset {forged["offset"]}: FFFFFFFF/FFFFFFFF #0',
                      r.stderr)
        self.assertIn("beyond the server's WAL", r.stderr)
        # nothing was skipped: row 2 is not in Kafka yet, and the checkpoint is before it
        msgs = pgcdc_test.consume_all(kafka.bootstrap, "pgcdc.public.t", timeout=20)
        self.assertEqual([m["offset"] for m in msgs], [0, forged["offset"]])
        self.assertEqual(forged["offset"], 1)

    def test_message_larger_than_the_producer_accepts(self):
        pg = self.make_source()
        kafka = self.broker(topics={"pgcdc.public.t": 1})
        cfg, ckpt = self.config(pg, kafka.bootstrap)
        rng = random.Random(7)
        big = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(2 << 20))
        pg.sql("INSERT INTO t VALUES (1, 'before')")
        pg.flush_wal()
        after_first = pgcdc_test.lsn_int(pg.sql_one("SELECT pg_current_wal_insert_lsn()::text"))
        conn = pg.connect(autocommit=False)
        cur = conn.cursor()
        cur.execute("INSERT INTO t VALUES (2, %s)", (big,))
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        before_commit = pgcdc_test.lsn_int(cur.fetchone()[0])
        conn.commit()
        conn.close()
        pg.sql("INSERT INTO t VALUES (3, 'after')")
        end = kc.end_lsn(pg)

        for attempt in (1, 2):  # a restart meets the same message, and stops again
            r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=60)
            with self.subTest("non-zero exit, error names the topic and the cause",
                              attempt=attempt):
                self.assertEqual(r.returncode, 1, r)
                self.assertRegex(r.stderr, r"(?i)too large")
                self.assertIn('"pgcdc.public.t"', r.stderr)
                self.assertLess(len(r.stderr), 10000, "the error output is flooded")
            with self.subTest("the error says what to change", attempt=attempt):
                self.assertIn("message.max.bytes", r.stderr)
            with self.subTest("checkpoint and slot: past the transaction before, not past the "
                              "refused one", attempt=attempt):
                saved = kc.checkpoint_lsn(ckpt)
                confirmed = kc.slot_confirmed(pg, "pgcdc")
                self.assertLessEqual(confirmed, before_commit)
                self.assertTrue(saved is None or saved <= before_commit)
                self.assertIsNotNone(saved, "no checkpoint: the transaction before the refused "
                                     "one was not kept")
                self.assertGreaterEqual(saved, after_first - 1024)
                self.assertEqual(saved, confirmed)
        with self.subTest("the row before the refused message is in Kafka, once"):
            msgs, _ = kc.read_topics(kafka.bootstrap, ["pgcdc.public.t"], "json")
            self.assertEqual([m["event"]["after"]["id"] for m in msgs], ["1"])

if __name__ == "__main__":
    pgcdc_test.main()
