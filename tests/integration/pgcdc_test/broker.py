"""broker.py - the Kafka side of integration tests: test broker process and client helpers.

    with Broker(brokers=3, topics={"t": 2}) as kafka:
        produce(kafka.bootstrap, "t", b"v", key=b"k")
        kafka.down(1); ...; kafka.up(1)
        msgs = consume_all(kafka.bootstrap, ["t"], expect_count=1)

Which Kafka a Broker is:
- the test broker (PGCDC_TESTBROKER_BIN, librdkafka's mock cluster), the
  default: every fault can be injected;
- PGCDC_TEST_KAFKA=kraft: a real Apache Kafka, one KRaft node
  (pgcdc_test.kafka.KafkaCluster; PGCDC_TEST_KAFKA_NODES=3 for three, topics
  with replication factor 3 and min.insync.replicas=2, started for this Broker).
  The one node is started once per test process and reused: close() resets it
  for the next Broker (topics and consumer groups deleted, quota cleared) rather
  than killing it, and a node that cannot be reset is closed, the next Broker
  starting a fresh one (PGCDC_TEST_KAFKA_REUSE=0: a fresh node every time).
  down/up kill and restart it, slow() sets a produce quota; protocol-level faults
  (rtt, injected error codes, leader moves) raise unittest.SkipTest;
- PGCDC_TEST_BROKERS=host:port: a real Kafka someone runs, dedicated to the
  tests: every fault injection raises unittest.SkipTest, and the topics a test
  made are deleted when it ends (so run the tests one at a time there).
Test cases that cannot run without the test broker's fault injection are
marked @testbroker_only; on a real Kafka they are left out of the run, so a
file counts as passed only when every case it ran passed.
"""

import os
import select
import signal
import subprocess
import sys
import time
import unittest
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from . import util
from .kafka import KafkaCluster

# Kafka protocol API keys and error codes for Broker.push_errors()
API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_INIT_PRODUCER_ID = 22
ERR_NOT_LEADER_FOR_PARTITION = 6
ERR_REQUEST_TIMED_OUT = 7
ERR_MSG_SIZE_TOO_LARGE = 10
ERR_NOT_ENOUGH_REPLICAS = 19
ERR_TOPIC_AUTHORIZATION_FAILED = 29
ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_TRANSPORT = -195  # the broker drops the connection


class BrokerError(Exception):
    """The test broker answered `error: ...` or did not answer."""


def _testbroker_bin():
    b = os.environ.get("PGCDC_TESTBROKER_BIN")
    if not b:
        raise RuntimeError("PGCDC_TESTBROKER_BIN is not set (run the tests through meson)")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"test broker \"{b}\" is not executable (build it first)")
    return b


def kafka_mode():
    """"testbroker", "kraft" (PGCDC_TEST_KAFKA=kraft) or "external" (PGCDC_TEST_BROKERS)."""
    if os.environ.get("PGCDC_TEST_BROKERS"):
        return "external"
    mode = os.environ.get("PGCDC_TEST_KAFKA", "testbroker")
    if mode not in ("testbroker", "kraft"):
        raise RuntimeError(f"PGCDC_TEST_KAFKA={mode!r}: expected \"testbroker\" or \"kraft\"")
    return mode


def real_kafka():
    """True when the tests run against a real Kafka, not the test broker."""
    return kafka_mode() != "testbroker"


def testbroker_only(why):
    """Mark a test case that needs the test broker's fault injection (why says which).

    On a real Kafka the case is not run at all (pgcdc_test.main leaves it out), so
    it is neither counted as passed nor turns the whole file into a skip.
    """
    def mark(fn):
        fn.pgcdc_testbroker_only = why
        return fn
    return mark


def postgres_side_only(why):
    """Mark a test case about the PostgreSQL side only (a long server outage, say): it runs
    once, on the test broker, and the real-Kafka mirror leaves it out as it leaves out
    testbroker_only cases (why says why the mirror adds nothing)."""
    return testbroker_only(why)


class _KraftPool:
    """The plain one-node KRaft cluster of this process, shared by the Brokers of
    PGCDC_TEST_KAFKA=kraft one after the other: starting a JVM node takes seconds of
    two cores, resetting one a fraction of a second.

    take() hands out the idle cluster once reset() confirmed it clean (else closes it)
    or starts a new one; give_back() resets it and keeps it idle, or closes it when the
    reset fails: no half-reset cluster is kept. The idle cluster stays registered with
    util's clean-up (KafkaCluster registers itself until closed), so it is closed at exit.
    """

    def __init__(self):
        self.idle = None  # the reset cluster no Broker holds now

    @staticmethod
    def enabled(nodes):
        return nodes == 1 and os.environ.get("PGCDC_TEST_KAFKA_REUSE", "1") != "0"

    def take(self):
        c, self.idle = self.idle, None
        if c is not None:
            try:
                c.reset(timeout=30)  # cheap when clean: is the node still there, and empty?
            except Exception as e:
                print(f"kafka: the idle Apache Kafka at {c.bootstrap} cannot be reused ({e}); "
                      "starting a new one", file=sys.stderr, flush=True)
                c.close()
                c = None
        if c is None:
            c = KafkaCluster(nodes=1)
            c.__enter__()
            c.pool_cases = 1
            return c
        c.pool_cases += 1
        c.begin_log_window()  # a failing case's log tail: its own lines only
        print(f"kafka: reusing Apache Kafka {c.version} (KRaft, 1 node) at {c.bootstrap} "
              f"(case {c.pool_cases} on this node; reset in {c.reset_in:.1f} s)",
              file=sys.stderr, flush=True)
        return c

    def give_back(self, c):
        c.hold_log_tails()  # what the case left in the log, for its diagnostics
        if len(c.running_nodes()) < c.nodes:  # down() without up(): no state worth keeping
            print(f"kafka: the case left Apache Kafka at {c.bootstrap} stopped: closing it",
                  file=sys.stderr, flush=True)
            c.close()
            return
        t0 = time.monotonic()
        try:
            c.reset(timeout=60)
        except BaseException as e:
            print(f"kafka: resetting Apache Kafka at {c.bootstrap} for the next test case "
                  f"failed ({type(e).__name__}: {e}); closing it", file=sys.stderr, flush=True)
            for n in sorted(c.ports):
                util.print_block(f"{c.name} node {n} log tail (the reset)",
                                 c.log_tail(n, 20, held=False))
            c.close()
            if not isinstance(e, Exception):
                raise
            return
        c.reset_in = time.monotonic() - t0
        if self.idle is not None:  # two Brokers at once: keep one
            c.close()
            return
        self.idle = c
        util.register_cleanup(c)  # (still registered: closed at exit)


_kraft_pool = _KraftPool()


class Broker:
    """A Kafka cluster for one test; a context manager.

    brokers: number of mock brokers (ids 1..brokers); a real KRaft cluster has 1 node.
    topics: {name: partitions} created at start (auto-created topics get 4).
    """

    def __init__(self, brokers=1, topics=None, exit_on_eof=True, args=()):
        self.brokers = brokers
        self.topics = dict(topics or {})
        self.exit_on_eof = exit_on_eof
        self.extra_args = list(args)
        self.mode = kafka_mode()
        self.real = self.mode != "testbroker"
        self.bootstrap = os.environ.get("PGCDC_TEST_BROKERS") if self.mode == "external" else None
        self.cluster = None  # the KafkaCluster in kraft mode
        self.last_cluster = None  # the KafkaCluster after close() (reset and reused, if pooled)
        self._pooled = False  # self.cluster came from _kraft_pool and goes back there
        self.proc = None
        self._buf = b""

    def __enter__(self):
        util.install_signal_handlers()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        if self.mode == "kraft":
            # PGCDC_TEST_KAFKA_NODES=3: three nodes, replication factor 3, min.insync.replicas 2
            nodes = int(os.environ.get("PGCDC_TEST_KAFKA_NODES") or 1)
            if _kraft_pool.enabled(nodes):
                self.cluster = _kraft_pool.take()
                self._pooled = True
            else:
                self.cluster = KafkaCluster(
                    nodes=nodes, config={"min.insync.replicas": 2} if nodes >= 3 else None)
                self.cluster.__enter__()
            self.bootstrap = self.cluster.bootstrap
        if self.real:
            if self.mode == "external":
                print(f"kafka: the real Kafka of PGCDC_TEST_BROKERS={self.bootstrap}",
                      file=sys.stderr, flush=True)
                # the topics this test makes (or pgcdc auto-creates) are deleted at close,
                # so that the next test starts from the same cluster
                self._topics_before = self._topic_names()
            for name, parts in self.topics.items():
                self.create_topic(name, parts)
            return
        argv = [_testbroker_bin(), "--brokers", str(self.brokers)] + self.extra_args
        for name, parts in self.topics.items():
            argv += ["--topic", f"{name}:{parts}"]
        if self.exit_on_eof:
            argv.append("--exit-on-eof")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=0, preexec_fn=util.die_with_parent)
        util.register_cleanup(self)
        line = self._readline(10.0)
        if not line.startswith("bootstrap="):
            raise BrokerError(f"test broker did not print its bootstrap line, got {line!r}")
        self.bootstrap = line[len("bootstrap="):]
        print(f"kafka: the test broker (librdkafka mock cluster, {self.brokers} broker"
              f"{'s' if self.brokers > 1 else ''}) at {self.bootstrap}", file=sys.stderr,
              flush=True)

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError(f"test broker did not answer within {timeout:.0f}s")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise BrokerError(f"test broker exited (status {self.proc.poll()})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def command(self, cmd, timeout=10.0):
        """Send one command line; return the text after `ok` or raise BrokerError."""
        if self.real:
            raise unittest.SkipTest(f"\"{cmd.split()[0]}\" needs the test broker, "
                                    "not the real Kafka in PGCDC_TEST_BROKERS")
        if self.proc is None or self.proc.poll() is not None:
            raise BrokerError("test broker is not running")
        self.proc.stdin.write((cmd + "\n").encode())
        line = self._readline(timeout)
        if line == "ok" or line.startswith("ok "):
            return line[3:]
        raise BrokerError(f"test broker: {cmd!r}: {line}")

    # fault injection (test broker; down, up and slow also on a KRaft cluster)
    def down(self, broker_id):
        """Broker broker_id (1..N, or "all") drops connections and refuses new ones.

        On a KRaft cluster the node is killed (SIGKILL); up() starts it again with its data.
        """
        if self.mode == "kraft":
            for n in self._nodes(broker_id):
                self.cluster.kill(n)
            return
        self.command(f"down {broker_id}")

    def up(self, broker_id):
        if self.mode == "kraft":
            for n in self._nodes(broker_id):
                self.cluster.start_node(n)
            return
        self.command(f"up {broker_id}")

    def _nodes(self, broker_id):
        return list(range(1, self.cluster.nodes + 1)) if broker_id == "all" else [int(broker_id)]

    def slow(self, rtt_ms, produce_bytes_per_s):
        """Make producing slow: every response delayed by rtt_ms on the test broker, a
        produce quota of produce_bytes_per_s (the broker throttles) on a KRaft cluster."""
        if self.mode == "kraft":
            self.cluster.set_produce_quota(produce_bytes_per_s)
            return
        self.rtt("all", rtt_ms)

    def full_speed(self):
        """Undo slow()."""
        if self.mode == "kraft":
            self.cluster.set_produce_quota(None)
            return
        self.rtt("all", 0)

    def rtt(self, broker_id, ms):
        """Delay every response of broker_id by ms milliseconds (0 clears)."""
        self.command(f"rtt {broker_id} {int(ms)}")

    def set_leader(self, topic, partition, broker_id):
        self.command(f"leader {topic} {partition} {broker_id}")

    def push_errors(self, api_key, *errors):
        """Fail the next len(errors) requests of api_key with these error codes, in order."""
        self.command(f"errors {api_key} " + " ".join(str(int(e)) for e in errors))

    def clear_errors(self, api_key):
        """Drop the error codes still queued for api_key by push_errors()."""
        self.command(f"clear-errors {api_key}")

    def topic_error(self, topic, err):
        self.command(f"topic-error {topic} {int(err)}")

    def create_topic(self, name, partitions):
        """Create a topic (works on real Kafka too)."""
        if not self.real:
            self.command(f"topic {name} {partitions}")
            return
        if self.cluster is not None:
            self.cluster.create_topic(name, partitions)
            return
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        fut = admin.create_topics([NewTopic(name, partitions, 1)])[name]
        try:
            fut.result(30)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def _topic_names(self):
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=30)
        return set(md.topics)

    def _delete_new_topics(self):
        """PGCDC_TEST_BROKERS: delete the topics that appeared since start()."""
        from confluent_kafka.admin import AdminClient
        before, self._topics_before = self._topics_before, None
        new = sorted(t for t in self._topic_names() - before if not t.startswith("__"))
        if not new:
            return
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for t, fut in admin.delete_topics(new, operation_timeout=30).items():
            try:
                fut.result(60)
            except KafkaException as e:
                print(f"pgcdc_test: could not delete topic {t!r}: {e}", file=sys.stderr)
        util.wait_until(lambda: not (set(new) & self._topic_names()), timeout=60,
                        message=f"topics {new} deleted")

    def close(self):
        """SIGTERM the test broker, SIGKILL after 5 s; safe to call twice. On the Kafka of
        PGCDC_TEST_BROKERS: delete the topics the test made. The pooled KRaft node: reset
        it for the next Broker (closed if that fails)."""
        util.unregister_cleanup(self)
        if self.mode == "external" and getattr(self, "_topics_before", None) is not None:
            self._delete_new_topics()
        c, self.cluster = self.cluster, None
        if c is not None:
            self.last_cluster = c  # its log tails stay readable for diagnostics
            pooled, self._pooled = self._pooled, False
            if pooled:
                _kraft_pool.give_back(c)
            else:
                c.close()
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass

    def __repr__(self):
        return f"Broker(bootstrap={self.bootstrap!r})"


# ---------------------------------------------------------------- clients

def make_producer(bootstrap, conf=None):
    """A confluent_kafka Producer for bootstrap with extra librdkafka conf."""
    c = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    c.update(conf or {})
    return Producer(c)


def produce(bootstrap, topic, value=None, key=None, headers=None, partition=None,
            timeout=30.0, conf=None):
    """Produce one message and wait for its delivery report.

    Returns {"partition", "offset"}; raises KafkaException on a failed delivery
    and AssertionError if no report arrives in timeout seconds.
    """
    c = {"bootstrap.servers": bootstrap}
    c.update(conf or {})
    p = Producer(c)
    result = {}

    def on_delivery(err, msg):
        result["err"] = err
        result["msg"] = msg

    kw = {"value": value, "key": key, "on_delivery": on_delivery}
    if headers is not None:
        kw["headers"] = headers
    if partition is not None:
        kw["partition"] = partition
    p.produce(topic, **kw)
    left = p.flush(timeout)
    if left or "err" not in result:
        raise AssertionError(f"no delivery report for a message to \"{topic}\" within "
                             f"{timeout:.0f}s")
    if result["err"] is not None:
        raise KafkaException(result["err"])
    return {"partition": result["msg"].partition(), "offset": result["msg"].offset()}


def _consumer(bootstrap, conf=None):
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": "pgcdc-test-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }
    c.update(conf or {})
    return Consumer(c)


def topic_partitions(bootstrap, topic, timeout=10.0, consumer=None):
    """Partition ids of topic, or [] when it does not exist."""
    c = consumer or _consumer(bootstrap)
    try:
        md = c.list_topics(topic, timeout=timeout)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return []
        return sorted(t.partitions)
    finally:
        if consumer is None:
            c.close()


def watermarks(bootstrap, topic, timeout=10.0):
    """{partition: (low, high)} for topic."""
    c = _consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in topic_partitions(bootstrap, topic, consumer=c)}
    finally:
        c.close()


def _msg_dict(m):
    return {
        "topic": m.topic(),
        "partition": m.partition(),
        "offset": m.offset(),
        "key": m.key(),
        "value": m.value(),
        "headers": list(m.headers() or []),
        "timestamp": m.timestamp()[1],
    }


def consume_all(bootstrap, topics, timeout=30.0, expect_count=None, idle=1.0, conf=None):
    """Read topics from the beginning; returns a list of message dicts
    {topic, partition, offset, key, value, headers [(name, bytes)], timestamp}
    in arrival order (ordered per partition).

    With expect_count: stops as soon as that many messages arrived, or at
    timeout with fewer (the caller asserts the count); waits for topics that
    do not exist yet. Without: stops when every partition is at its end and
    nothing arrived for idle seconds. Partitions are assigned directly (no
    group rebalance delay).
    """
    if isinstance(topics, str):
        topics = [topics]
    deadline = time.monotonic() + timeout
    c = _consumer(bootstrap, conf)
    out = []
    try:
        assignment = []
        pending = list(topics)
        while pending:
            for t in list(pending):
                parts = topic_partitions(bootstrap, t, consumer=c,
                                         timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                if parts:
                    assignment += [TopicPartition(t, p, -2) for p in parts]  # -2: beginning
                    pending.remove(t)
            if not pending or expect_count is None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if not assignment:
            return out
        c.assign(assignment)
        at_end = set()
        all_parts = {(tp.topic, tp.partition) for tp in assignment}
        last_activity = time.monotonic()
        while time.monotonic() < deadline:
            if expect_count is not None and len(out) >= expect_count:
                break
            m = c.poll(0.1)
            if m is None:
                if (expect_count is None and at_end >= all_parts
                        and time.monotonic() - last_activity >= idle):
                    break
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add((m.topic(), m.partition()))
                    continue
                raise KafkaException(m.error())
            at_end.discard((m.topic(), m.partition()))
            last_activity = time.monotonic()
            out.append(_msg_dict(m))
    finally:
        c.close()
    return out
