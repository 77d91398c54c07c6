"""test_kafka_memory.py - peak RSS of pgcdc over one huge transaction (Kafka sink, JSON).

DESIGN invariant 7: memory is bounded by configuration (in-flight bytes), never
by transaction size. pgcdc --endpos drains a 100,000-row and then a
1,000,000-row transaction of narrow rows; the peak RSS (VmHWM) of the pgcdc
process is sampled from /proc until it exits, and printed. The test broker
keeps only the newest ~5 MB of each partition, so it drops old messages of the
big runs: only memory and time are checked here, the content of big
transactions is checked by test_kafka_rebuild. For the first seconds of each
run the broker answers slowly (200 ms on the test broker; a 100 kB/s produce
quota on a real Kafka), so that pgcdc fills its in-flight window
(inflight.max.messages, inflight.max.bytes at their defaults): the figure is
the worst case of the configuration, not the luck of a fast broker.
"""

import os
import time

import pgcdc_test
from pgcdc_test import TestCase

import kafka_check as kc

RSS_LIMIT_KB = 64 * 1024
TOPIC = "pgcdc.public.narrow"
RTT_MS = 200  # on the test broker
QUOTA_BYTES_PER_S = 100_000  # on a real Kafka
SLOW_SECS = 4


def vm_hwm_kb(pid):
    """VmHWM of pid in kB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class KafkaMemoryTest(TestCase):
    def run_measured(self, kafka, cfg, endpos, timeout):
        """pgcdc start --endpos under observation: (exit code, peak RSS kB, seconds, process).

        For the first SLOW_SECS the broker answers slowly, so that pgcdc fills its
        in-flight window to the configured limit (the worst case of the configuration, not
        the luck of a fast broker); then it runs at full speed.
        """
        kafka.slow(RTT_MS, QUOTA_BYTES_PER_S)
        slow = True
        t0 = time.monotonic()
        p = self.start_pgcdc(["start", "-c", cfg, "--endpos", endpos])
        peak = 0
        while p.poll() is None:
            if slow and time.monotonic() - t0 > SLOW_SECS:
                kafka.full_speed()
                slow = False
            v = vm_hwm_kb(p.pid)
            if v is not None:
                peak = max(peak, v)
            if time.monotonic() - t0 > timeout:
                p.kill()
                self.fail(f"pgcdc did not finish within {timeout}s\n{p.stderr()[-2000:]}")
            time.sleep(0.01)
        if slow:
            kafka.full_speed()
        return p.returncode, peak, time.monotonic() - t0, p

    def test_peak_rss_does_not_grow_with_transaction_size(self):
        pg = self.pg_cluster(settings={"max_wal_size": "1GB"})
        pg.sql("CREATE TABLE narrow (id int PRIMARY KEY, v int)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE narrow")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        kafka = self.broker(topics={TOPIC: 64})
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "checkpoint.path": os.path.join(self.tmpdir(), "pgcdc.checkpoint"),
            "kafka.bootstrap.servers": kafka.bootstrap,
        })
        results = {}
        for rows, timeout in ((100_000, 60), (1_000_000, 150)):
            first = sum(results) + 1 if results else 1
            t = kc.Timer()
            pg.sql("INSERT INTO narrow SELECT g, g FROM generate_series(%s, %s) g",
                   (first, first + rows - 1))
            endpos = kc.end_lsn(pg)
            t_insert = t()
            rc, peak, secs, p = self.run_measured(kafka, cfg, endpos, timeout)
            self.assertEqual(rc, 0, p.stderr()[-3000:])
            self.assertIn(f"after {rows} events", p.stderr())
            results[rows] = (peak, secs)
            print(f"\n{rows}-row transaction: peak RSS {peak / 1024:.1f} MB, pgcdc --endpos "
                  f"{secs:.1f}s ({rows / secs:.0f} rows/s; insert + CHECKPOINT {t_insert:.1f}s)",
                  flush=True)
        # every message arrived at the broker (the oldest may have been dropped since)
        wm = pgcdc_test.watermarks(kafka.bootstrap, TOPIC)
        self.assertEqual(sum(h for _, h in wm.values()), 1_100_000)
        with self.subTest("100,000 rows: peak RSS < 64 MB"):
            self.assertLess(results[100_000][0], RSS_LIMIT_KB)
        with self.subTest("1,000,000 rows: peak RSS < 64 MB (bounded by configuration)"):
            self.assertLess(results[1_000_000][0], RSS_LIMIT_KB)
        if os.environ.get("PGCDC_TEST_PERF"):
            # a speed bound is only meaningful on an otherwise idle machine
            with self.subTest("1,000,000 rows in under 90 s"):
                self.assertLess(results[1_000_000][1], 90)


if __name__ == "__main__":
    pgcdc_test.main()
