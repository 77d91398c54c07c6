"""test_kafka_idle.py - an idle publication on a busy server does not pin WAL (Kafka sink).

pgcdc runs with the Kafka sink while the published tables stay unchanged and
an unpublished table takes about 50 MB of inserts. The slot's
confirmed_flush_lsn must keep advancing (keepalives move the checkpoint when
nothing is in flight) and the WAL the slot retains,
pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), must stay bounded.
"""

import os
import signal

import pgcdc_test
from pgcdc_test import TestCase, lsn_int, wait_until

import kafka_check as kc

RETAINED_BOUND = 16 << 20  # bytes of WAL the slot may hold back after a CHECKPOINT
ROUNDS = 5
ROUND_BYTES = 10 << 20


class KafkaIdleTest(TestCase):
    def test_idle_publication_busy_server_does_not_pin_wal(self):
        pg = self.pg_cluster()
        pg.sql("CREATE TABLE published (id int PRIMARY KEY, v text)")
        pg.sql("CREATE TABLE unpublished (id bigint, pad text)")
        pg.sql("ALTER TABLE unpublished SET (autovacuum_enabled = off)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE published")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        kafka = self.broker()
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": kafka.bootstrap,
            "status.interval": "1s",
        })

        def retained():
            return int(pg.sql_one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) "
                                  "FROM pg_replication_slots WHERE slot_name = 'pgcdc'"))

        with self.start_pgcdc(["start", "-c", cfg]) as p:
            p.wait_for_output(r"streaming from slot")
            start_confirmed = kc.slot_confirmed(pg, "pgcdc")
            wal_start = lsn_int(pg.current_lsn())
            figures = []
            before_ckpt = []  # for information: what the slot holds before the CHECKPOINT
            confirmed = [start_confirmed]
            rows = ROUND_BYTES // 1000
            for i in range(ROUNDS):
                # several transactions per round, ~1 kB a row
                for j in range(5):
                    first = (i * 5 + j) * rows // 5
                    pg.sql("INSERT INTO unpublished SELECT g, repeat(md5(g::text), 32) "
                           "FROM generate_series(%s, %s) g", (first, first + rows // 5 - 1))
                before_ckpt.append(retained())
                pg.flush_wal()  # a CHECKPOINT: also logs the running transactions
                target = lsn_int(pg.current_lsn())
                wait_until(lambda: kc.slot_confirmed(pg, "pgcdc") >= target - 64 * 1024,
                           timeout=30, interval=0.2,
                           message=f"confirmed_flush_lsn near {kc.fmt_lsn(target)}")
                confirmed.append(kc.slot_confirmed(pg, "pgcdc"))
                # restart_lsn follows once the server has a newer restart point
                try:
                    wait_until(lambda: retained() < RETAINED_BOUND, timeout=20, interval=0.2)
                except AssertionError:
                    pass
                figures.append(retained())
                self.assertTrue(p.alive(), p.stderr())
            wal_written = lsn_int(pg.current_lsn()) - wal_start
            print(f"\nidle publication, {wal_written / 2**20:.1f} MB of WAL written to an "
                  f"unpublished table: retained WAL after each CHECKPOINT (bytes) = {figures}, "
                  f"max {max(figures) / 2**20:.2f} MB; before each CHECKPOINT {before_ckpt}",
                  flush=True)
            self.assertGreaterEqual(wal_written, 50 << 20)
            for a, b in zip(confirmed, confirmed[1:]):
                self.assertGreater(b, a, f"confirmed_flush_lsn stopped advancing: {confirmed}")
            self.assertLess(max(figures), RETAINED_BOUND,
                            f"the slot retains {max(figures)} bytes of WAL: {figures}")
            # the checkpoint file moved with the slot, and nothing was published
            saved = kc.checkpoint_lsn(ckpt)
            self.assertIsNotNone(saved)
            self.assertGreater(saved, start_confirmed)
            self.assertLessEqual(kc.slot_confirmed(pg, "pgcdc"), saved)
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(30), 0, p.stderr())
        wm = pgcdc_test.watermarks(kafka.bootstrap, "pgcdc.public.published")
        self.assertEqual(sum(h for _, h in wm.values()), 0)
        self.assertEqual(kc.fmt_lsn(kc.checkpoint_lsn(ckpt)),
                         pg.slot("pgcdc")["confirmed_flush_lsn"])


if __name__ == "__main__":
    pgcdc_test.main()
