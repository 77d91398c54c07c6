"""test_positions.py - message positions strictly increase in every partition, whatever the WAL holds.

A transaction emits a transactional logical message and then, as its last
record before COMMIT, a non-transactional one with the same prefix: both go to
the one partition of <prefix>.message. PostgreSQL gives the non-transactional
message the end of its WAL record as its LSN, which is where the commit record
starts, so the transaction's first event has the same commit LSN. pgcdc sends
the non-transactional message at once; it is killed after that message is in
Kafka and before the transaction commits. The restart must still deliver the
transactional message: once each, in WAL order.
"""

import base64
import json

import pgcdc_test
from pgcdc_test import TestCase, consume_all, lsn_int, run_pgcdc, wait_until

import exactly_once as eo

PREFIX = "pm"
TOPIC = f"{PREFIX}.message"
# the message record's length decides whether it ends on an 8-byte boundary, where the next
# record starts; one more byte of content per round tries every alignment
ROUNDS = 8


def contents(kafka, msgs=None):
    """The text content of every message in TOPIC, in partition order."""
    if msgs is None:
        msgs = consume_all(kafka.bootstrap, TOPIC, timeout=10, idle=0.3)
    return [base64.b64decode(json.loads(m["value"])["message"]["content"]).decode()
            for m in msgs]


class PositionTest(TestCase):
    def test_message_right_before_its_transactions_commit(self):
        pg = self.pg_cluster()
        pg.sql("CREATE TABLE t (id int PRIMARY KEY)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE t")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        kafka = self.broker(topics={TOPIC: 1})
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "topic.prefix": PREFIX,
            "checkpoint.path": self.tmpdir() + "/pgcdc.checkpoint",
            "kafka.bootstrap.servers": kafka.bootstrap,
        })
        if pg.version < 17:
            # before 17 the message is not flushed at once, and by the time it is, another
            # record (RUNNING_XACTS) lies between it and the commit
            self.skipTest("needs pg_logical_emit_message(..., flush => true): PostgreSQL 17+")
        for i in range(ROUNDS):
            p = self.start_pgcdc(["start", "-c", cfg], name=f"pgcdc#{i + 1}")
            p.wait_for_output(r"streaming from slot", timeout=60)
            conn = pg.connect(autocommit=False)
            cur = conn.cursor()
            cur.execute("SELECT pg_logical_emit_message(true, 'p', %s)", (f"inside {i}",))
            cur.execute("SELECT pg_logical_emit_message(false, 'p', %s, true)",
                        (f"outside {i} " + "x" * i,))
            # the non-transactional message is in Kafka; its transaction is still open
            wait_until(lambda: f"outside {i} " + "x" * i in contents(kafka), timeout=30,
                       message=f"\"outside {i}\" in {TOPIC}")
            self.assertEqual(p.kill(), -9)
            conn.commit()
            conn.close()
        r = run_pgcdc(["start", "-c", cfg, "--endpos", eo.end_lsn(pg)], timeout=120)
        self.assertEqual(r.returncode, 0, r)
        msgs = consume_all(kafka.bootstrap, TOPIC, timeout=30)
        texts = contents(kafka, msgs)
        want = []
        for i in range(ROUNDS):
            want += [f"outside {i} " + "x" * i, f"inside {i}"]
        # the rounds where the message's LSN (the end of its record) is its transaction's
        # commit LSN: the first of source.sequence, [commit LSN, event LSN]
        seq = {t: json.loads(json.loads(m["value"])["source"]["sequence"])[0]
               for t, m in zip(texts, msgs)}
        collided = 0
        for i in range(ROUNDS):
            inside = seq.get(f"inside {i}")
            collided += inside is not None and seq.get(f"outside {i} " + "x" * i) == inside
        print(f"\n{collided} of {ROUNDS} rounds with the message ending where the commit "
              f"starts; {TOPIC}: {texts}", flush=True)
        self.assertEqual(texts, want)
        self.assertGreater(collided, 0, "no round had the message end where the commit "
                                        "starts: the case was not reproduced")
        positions = [(lsn_int(dict(m["headers"])["pgcdc.lsn"].decode()),
                      int(dict(m["headers"])["pgcdc.ordinal"])) for m in msgs]
        print("positions: " + ", ".join(f"{eo.fmt_lsn(a)}#{b}" for a, b in positions), flush=True)
        self.assertEqual(positions, sorted(set(positions)),
                         f"positions not strictly increasing: {positions}")


if __name__ == "__main__":
    pgcdc_test.main()
