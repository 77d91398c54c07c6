"""test_startup_cost.py - what the exactly-once position scan costs at start with 500 topics.

500 published tables, their topics pre-created on the test broker with 4
partitions each (2,000 partitions), holding messages written by an earlier
pgcdc run. pgcdc reads the last message of every partition before it starts
streaming; the test measures, for a few starts, the time from process start
to the "streaming from slot" log line and the scan time pgcdc itself logs
("read the last message of N partitions (K not empty) in M topics in X ms"), prints them,
and asserts a generous bound.
"""

import datetime
import re
import statistics
import time

import pgcdc_test
from pgcdc_test import TestCase, lsn_int, run_pgcdc

import exactly_once as eo
import kafka_check as kc

PREFIX = "sc"
TABLES = 500
PARTITIONS = 4
ROWS_PER_TABLE = 8
STARTS = 5
BOUND_S = 30.0

_NONEMPTY_RX = re.compile(r"read the last message of \d+ partitions \((\d+) not empty\)")
_SCAN_RX = re.compile(r"read the last message of (\d+) partitions \(\d+ not empty\) in (\d+) topics in (\d+) ms; "
                      r"newest position from this source: (\S+) #(\d+)")


def log_time(line):
    """The timestamp at the start of a pgcdc text log line, as epoch seconds."""
    ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.replace(tzinfo=datetime.timezone.utc).timestamp()


class StartupCostTest(TestCase):
    def test_scan_of_500_topics(self):
        t_test = time.monotonic()
        pg = self.pg_cluster()
        names = [f"t{i:03d}" for i in range(TABLES)]
        pg.sql("DO $$ BEGIN FOR i IN 0.." + str(TABLES - 1) + " LOOP "
               "EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v int)', "
               "lpad(i::text, 3, '0')); END LOOP; END $$")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE " + ", ".join(names))
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        topics = {f"{PREFIX}.public.{n}": PARTITIONS for n in names}
        kafka = self.broker()
        for t, n in topics.items():  # (too many for --topic options)
            kafka.create_topic(t, n)
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "topic.prefix": PREFIX,
            "checkpoint.path": self.tmpdir() + "/pgcdc.checkpoint",
            "kafka.bootstrap.servers": kafka.bootstrap,
        })

        # an earlier run puts a few messages into (nearly) every partition
        pg.sql("DO $$ BEGIN FOR i IN 0.." + str(TABLES - 1) + " LOOP "
               "EXECUTE format('INSERT INTO t%s SELECT g, 0 FROM generate_series(1, "
               + str(ROWS_PER_TABLE) + ") g', lpad(i::text, 3, '0')); END LOOP; END $$")
        t0 = time.monotonic()
        r = run_pgcdc(["start", "-c", cfg, "--endpos", eo.end_lsn(pg)], timeout=180)
        self.assertEqual(r.returncode, 0, r)
        first_run = time.monotonic() - t0
        first_scan = _SCAN_RX.search(r.stderr)
        self.assertIsNotNone(first_scan, r.stderr)
        total = sum(eo.topic_total(kafka.bootstrap, t) for t in list(topics)[:20])
        self.assertEqual(total, 20 * ROWS_PER_TABLE)
        before = self.what_a_scan_finds(kafka, topics)
        pg.sql("UPDATE t000 SET v = 1")  # something to stream after the scan

        to_stream = []
        scans = []
        for k in range(STARTS):
            started = time.time()
            p = self.start_pgcdc(["start", "-c", cfg], name=f"pgcdc#{k + 1}")
            m = p.wait_for_output(r"[^\n]* info: streaming from slot [^\n]*", timeout=BOUND_S + 30)
            to_stream.append(log_time(m.group(0)) - started)
            s = _SCAN_RX.search(p.stderr())
            self.assertIsNotNone(s, p.stderr())
            scans.append(s)
            self.assertEqual(p.terminate(), 0, p.stderr())
            p.close()

        # what the scan found is what the partitions hold: the non-empty ones and the newest
        # position (the end offsets are asked for 256 partitions at a time: every batch
        # counts); the first start comes before the update it streams, the others after
        after = self.what_a_scan_finds(kafka, topics)
        for k, s in enumerate(scans):
            found = (int(_NONEMPTY_RX.search(s.group(0)).group(1)),
                     (lsn_int(s.group(4)), int(s.group(5))))
            self.assertEqual(found, before if k == 0 else after, s.group(0))
        for s in scans:
            self.assertEqual(int(s.group(1)), TABLES * PARTITIONS)
            self.assertEqual(int(s.group(2)), TABLES + 1)  # the tables' topics + the message topic
            self.assertNotEqual(s.group(4), "0/0", "no position from this source was found")
        scan_ms = [int(s.group(3)) for s in scans]
        print(f"\n{TABLES} topics x {PARTITIONS} partitions = {TABLES * PARTITIONS} partitions, "
              f"{TABLES * ROWS_PER_TABLE} messages from an earlier run", flush=True)
        print(f"first run (empty topics, then {TABLES * ROWS_PER_TABLE} messages, --endpos): "
              f"scan {first_scan.group(3)} ms, whole run {first_run:.2f} s", flush=True)
        print("process start -> \"streaming from slot\": "
              + ", ".join(f"{t:.2f} s" for t in to_stream)
              + f" (min {min(to_stream):.2f}, median {statistics.median(to_stream):.2f}, "
              f"max {max(to_stream):.2f} s)", flush=True)
        print(f"scan as logged: min {min(scan_ms)} ms, median {statistics.median(scan_ms):.0f} ms, "
              f"max {max(scan_ms)} ms", flush=True)
        print("pgcdc's own figure: " + "; ".join(s.group(0).split(";")[0] for s in scans),
              flush=True)
        print(f"test took {time.monotonic() - t_test:.0f} s", flush=True)
        self.assertLess(max(to_stream), BOUND_S)
        self.assertLess(max(scan_ms), BOUND_S * 1000)

    def what_a_scan_finds(self, kafka, topics):
        """(non-empty partitions, newest (lsn, ordinal) position) of the topics, as read."""
        msgs, _ = kc.read_topics(kafka.bootstrap, list(topics), fmt="json")
        return (len({(m["topic"], m["partition"]) for m in msgs}),
                max((m["lsn"], m["ordinal"]) for m in msgs))


if __name__ == "__main__":
    pgcdc_test.main()
