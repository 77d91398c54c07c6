"""test_kafka_cluster.py - exactly once on a real 3-node Apache Kafka cluster while its nodes fail.

Each case runs the versioned-row workload (exactly_once.py) through pgcdc into
a real Apache Kafka cluster of three combined broker+controller nodes (KRaft),
the topic with replication factor 3 and min.insync.replicas=2, and breaks the
cluster underneath:

- the leader of the busiest partition killed (SIGKILL) 5 times under load,
  each time until leadership moved, then started again;
- a rolling restart of all three nodes (controlled shutdown, one at a time);
- all three nodes killed, down for 60 s, then started again;
- pgcdc killed (SIGKILL) and started again while one node is down and its
  partitions are moving to new leaders: the restart scan must wait for them,
  never give up deduplication for a partition it could not read;
- pgcdc killed (SIGKILL) while a follower of every partition is frozen, and
  started again at once: the leaders hold messages of the dead run that no
  consumer can see yet (above the high watermark), and the restart must not
  write them a second time.

Each ends with the exactly-once count of every row's history: lost 0,
duplicated 0, out of order 0.
"""

import collections
import json
import os
import random
import re
import time

import pgcdc_test
from pgcdc_test import run_pgcdc, wait_until

import exactly_once as eo
import test_faults as tf

PARTITIONS = 8
LEADER_KILLS = 5
OUTAGE_SECS = 60


class KafkaClusterFaultTest(tf.FaultTestBase):
    def source(self, settings=None, cfg=None, ckpt_dir=None, topics=None, assignment=None):
        """As FaultTestBase.source, on a 3-node KRaft cluster (RF 3, min.insync.replicas=2).
        Returns (pg, cluster, config path, checkpoint path)."""
        self.cluster = self.kafka_cluster(nodes=3, config={"min.insync.replicas": 2})
        self.cluster.create_topic(tf.TOPIC, PARTITIONS, 3, replica_assignment=assignment)
        pg = self.pg_cluster(settings=settings)
        eo.make_versioned_table(pg, tf.TABLE, tf.ROWS)
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        c = {
            "source.dsn": pg.dsn(),
            "topic.prefix": tf.PREFIX,
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": self.cluster.bootstrap,
            "reconnect.backoff.min": "200ms",
            "reconnect.backoff.max": "2s",
            "status.interval": "1s",
        }
        c.update(cfg or {})
        return pg, self.cluster, self.write_config(c), ckpt

    def busiest_leader(self):
        """The node leading the most partitions of the topic."""
        leaders = collections.Counter(self.cluster.leader(tf.TOPIC, p) for p in range(PARTITIONS))
        leaders.pop(-1, None)
        return leaders.most_common(1)[0][0]

    def test_leader_killed_five_times_under_load(self):
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg, pause=0.005)
        moves = []
        for i in range(LEADER_KILLS):
            time.sleep(2)
            victim = self.busiest_leader()
            led = [q for q in range(PARTITIONS) if kafka.leader(tf.TOPIC, q) == victim]
            t0 = time.monotonic()
            kafka.kill(victim)
            wait_until(lambda: all(kafka.leader(tf.TOPIC, q) not in (victim, -1) for q in led),
                       timeout=60, interval=0.2,
                       message=f"new leaders for partitions {led} of killed node {victim}")
            moves.append((victim, len(led), time.monotonic() - t0))
            time.sleep(1)
            self.assertTrue(p.alive(), p.stderr()[-4000:])
            kafka.start_node(victim)
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=120)
        print("\nleader kills: " + "; ".join(f"node {v} ({n} partitions) replaced in {s:.1f} s"
                                             for v, n, s in moves), flush=True)
        self.assertEqual(len(moves), LEADER_KILLS)
        self.stop(p)
        counts = self.drain_and_count(pg, kafka, cfg)
        print(f"{w.commits} transactions during {LEADER_KILLS} leader kills", flush=True)
        self.assertGreater(counts.messages, tf.ROWS)

    def test_rolling_restart(self):
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg, pause=0.005)
        took = []
        for n in (1, 2, 3):
            time.sleep(2)
            t0 = time.monotonic()
            kafka.stop(n)
            time.sleep(2)
            kafka.start_node(n)
            took.append(time.monotonic() - t0)
            self.assertTrue(p.alive(), p.stderr()[-4000:])
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=120)
        print("\nrolling restart: " + ", ".join(f"node {n} back after {s:.1f} s"
                                                for n, s in zip((1, 2, 3), took)), flush=True)
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)

    def test_all_nodes_down_60s(self):
        pg, kafka, cfg, ckpt = self.source()
        p = self.start(cfg)
        w = self.workload(pg, pause=0.01)
        time.sleep(3)
        for n in (1, 2, 3):
            kafka.kill(n)
        t_down = time.monotonic()
        before = eo.parse_checkpoint(ckpt)
        time.sleep(OUTAGE_SECS)
        # pgcdc must ride out the outage: it waits for the brokers, it does not give up
        self.assertTrue(p.alive(), f"pgcdc gave up during the outage:\n{p.stderr()[-4000:]}")
        for n in (1, 2, 3):
            kafka.start_node(n, wait=False)
        kafka.wait_ready(timeout=120)
        outage = time.monotonic() - t_down
        time.sleep(3)
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=180)
        self.assertGreaterEqual(eo.parse_checkpoint(ckpt), before)
        print(f"\nall nodes down for {outage:.0f} s; {w.commits} transactions", flush=True)
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)

    def test_restart_while_a_node_is_down(self):
        pg, kafka, cfg, _ = self.source(cfg={"log.level": "debug"})
        rng = random.Random(11)
        w = self.workload(pg, pause=0.005)
        runs = []
        for i in range(2):  # each restart meets partitions without a leader
            p = self.start(cfg, name=f"pgcdc#{i + 1}")
            time.sleep(rng.uniform(1.5, 3.0))
            self.assertEqual(p.kill(), -9)
            victim = self.busiest_leader()
            kafka.kill(victim)
            # the scan runs while the victim's partitions still have no new leader
            p = self.start_pgcdc(["start", "-c", cfg], name=f"pgcdc#{i + 1}b")
            p.wait_for_output(r"streaming from slot", timeout=120)
            time.sleep(2)
            self.assertTrue(p.alive(), p.stderr()[-4000:])
            self.assertEqual(p.kill(), -9)
            runs.append((victim, p.stderr()))
            kafka.start_node(victim)
        w.finish()
        waited = 0
        for victim, err in runs:
            self.assertNotIn("not deduplicated", err,
                             f"a restart with node {victim} down gave up deduplication:\n"
                             + err[-3000:])
            retries = len(re.findall(r"cannot read kafka (end offsets|metadata)|cannot read the "
                                     r"last message .* yet", err))
            waited += retries > 0
            print(f"\nrestart with node {victim} down: the scan retried {retries} times",
                  flush=True)
        # the restarts met partitions without a leader (else this tested nothing)
        self.assertGreater(waited, 0, "no restart's scan had to wait for a leader")
        self.drain_and_count(pg, kafka, cfg)

    def test_crash_while_a_follower_lags(self):
        # node 3 follows every partition and leads none: frozen, it holds back every
        # partition's high watermark while the leaders keep appending
        assignment = [[1, 2, 3] if q % 2 == 0 else [2, 1, 3] for q in range(PARTITIONS)]
        pg, kafka, cfg, ckpt = self.source(assignment=assignment)
        p = self.start(cfg)
        w = self.workload(pg, pause=0.005)
        time.sleep(3)
        kafka.pause(3)
        time.sleep(1.5)  # the leaders append what pgcdc sends; no consumer sees it yet
        self.assertEqual(p.kill(), -9)
        p = self.start_pgcdc(["start", "-c", cfg], name="pgcdc#2")
        time.sleep(3)  # long enough for a restart's scan and replay, short of the ISR timeout
        kafka.resume(3)
        p.wait_for_output(r"streaming from slot", timeout=120)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=120)
        err = p.stderr()
        self.stop(p)
        counts = self.drain_and_count(pg, kafka, cfg)
        self.assertGreater(counts.messages, tf.ROWS)
        # a clean stop says so in the checkpoint: the next start does not wait
        r = run_pgcdc(["status", "-c", cfg, "--json"], timeout=30)
        self.assertTrue(json.loads(r.stdout)["checkpoint"].get("stopped_cleanly"), r.stdout)
        self.assertRegex(err, r"the last run did not stop cleanly: waiting \d+\.\d s \(1\.5 x "
                              r"replica\.lag\.time\.max\.ms 4000 ms \+ 2 s\)")


if __name__ == "__main__":
    pgcdc_test.main()
