"""test_harness_kafka.py - the real Apache Kafka harness (pgcdc_test.kafka) does what the tests rely on.

A KRaft node starts on free loopback ports and answers metadata; topics get
their partitions, replication and config; on three nodes a killed leader's
partitions move and the node comes back with its data; and an interrupted
test run leaves no broker and no directory behind. Start-up time is printed:
it is part of every real-Kafka test's budget.
"""

import os
import signal
import subprocess
import sys
import time

import pgcdc_test
from pgcdc_test import TestCase, consume_all, produce, wait_until

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import pgcdc_test
from pgcdc_test import KafkaCluster
pgcdc_test.util.install_signal_handlers()
k = KafkaCluster()
try:
    k.__enter__()
    print(k.dir, *[p.pid for p in k.procs.values()], flush=True)
    time.sleep(300)
finally:
    k.close()
"""


class KafkaHarnessTest(TestCase):
    def test_one_node_answers_and_keeps_topic_settings(self):
        t0 = time.monotonic()
        kafka = self.kafka_cluster()
        print(f"\none node ready in {time.monotonic() - t0:.1f} s "
              f"(Apache Kafka {kafka.version})", flush=True)
        self.assertEqual(kafka.registered_brokers(), {1})
        kafka.create_topic("harness.k", 3, config={"max.message.bytes": 50000})
        self.assertEqual(pgcdc_test.topic_partitions(kafka.bootstrap, "harness.k"), [0, 1, 2])
        produce(kafka.bootstrap, "harness.k", b"v", key=b"k")
        with self.assertRaises(Exception):  # over the topic's max.message.bytes
            produce(kafka.bootstrap, "harness.k", b"x" * 100000, key=b"k", timeout=15)
        msgs = consume_all(kafka.bootstrap, ["harness.k"], expect_count=1, timeout=20)
        self.assertEqual([m["value"] for m in msgs], [b"v"])

    def test_three_nodes_leader_moves_and_returns(self):
        t0 = time.monotonic()
        kafka = self.kafka_cluster(nodes=3, config={"min.insync.replicas": 2})
        print(f"\nthree nodes ready in {time.monotonic() - t0:.1f} s", flush=True)
        kafka.create_topic("harness.three", 3, 3)
        leader = kafka.leader("harness.three", 0)
        self.assertIn(leader, (1, 2, 3))
        t0 = time.monotonic()
        kafka.kill(leader)
        wait_until(lambda: kafka.leader("harness.three", 0) not in (leader, -1), timeout=60,
                   message="a new leader for partition 0")
        moved = time.monotonic() - t0
        produce(kafka.bootstrap, "harness.three", b"while one is down", key=b"k")
        t0 = time.monotonic()
        kafka.start_node(leader)
        back = time.monotonic() - t0
        self.assertEqual(kafka.registered_brokers(), {1, 2, 3})
        print(f"leader {leader} killed: partition 0 moved in {moved:.1f} s; the node was back "
              f"in {back:.1f} s", flush=True)
        msgs = consume_all(kafka.bootstrap, ["harness.three"], expect_count=1, timeout=30)
        self.assertEqual(len(msgs), 1)

    def test_interrupted_run_leaves_nothing_behind(self):
        here = os.path.dirname(os.path.abspath(__file__))
        child = subprocess.Popen([sys.executable, "-c", CHILD, here], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(child.kill)
        line = child.stdout.readline().split()
        self.assertGreaterEqual(len(line), 2, "the child did not start a cluster")
        d, pids = line[0], [int(p) for p in line[1:]]
        self.assertTrue(os.path.isdir(d))
        child.send_signal(signal.SIGTERM)
        self.assertIsNotNone(child.wait(60))
        for pid in pids:
            self.assertTrue(pgcdc_test.util.reap(pid, 30), f"broker {pid} outlived the run")
        self.assertFalse(os.path.exists(d), f"{d} left behind")


if __name__ == "__main__":
    pgcdc_test.main()
