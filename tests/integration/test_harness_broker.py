"""test_harness_broker.py - the Kafka test broker round-trips messages and injects faults."""

import os
import signal
import subprocess
import time
import unittest

from confluent_kafka import KafkaError, Producer

import pgcdc_test
from pgcdc_test import Broker, BrokerError, TestCase, consume_all, produce, topic_partitions


def _testbroker_argv(*args):
    return [os.environ["PGCDC_TESTBROKER_BIN"]] + list(args)


class TestBrokerProcessTest(TestCase):
    """The pgcdc-testbroker program itself: failure cases, then stdin and signal handling."""

    def setUp(self):
        super().setUp()
        if os.environ.get("PGCDC_TEST_BROKERS"):
            self.skipTest("PGCDC_TEST_BROKERS names a real Kafka")

    def _run(self, args, input_text, timeout=20):
        return subprocess.run(_testbroker_argv(*args), input=input_text, capture_output=True,
                              text=True, timeout=timeout)

    def test_bad_options_exit_2(self):
        for args in (["--brokers", "0"], ["--topic", "noparts"], ["--topic", "t:0"], ["--nope"]):
            with self.subTest(args=args):
                r = self._run(args, "")
                self.assertEqual(r.returncode, 2, r)
                self.assertEqual(r.stdout, "")
                self.assertIn("pgcdc-testbroker:", r.stderr)

    def test_protocol_answers(self):
        r = self._run(["--brokers", "2", "--exit-on-eof", "--topic", "a:2"],
                      "ping\n\ndown 3\ndown 0\nup all\nrtt 1 x\nrtt 2 10\nrtt 2 0\n"
                      "topic a 2\ntopic b 0\ntopic b 3\nleader b 0 2\nleader b 0 9\n"
                      "errors 0 7 7\nerrors x 1\nbogus\nquit\nping\n")
        self.assertEqual(r.returncode, 0, r)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^bootstrap=127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$")
        answers = [("error" if l.startswith("error: ") else l) for l in lines[1:]]
        self.assertEqual(answers, [
            "ok",                # ping (blank line: no answer)
            "error", "error",    # down 3, down 0
            "ok",                # up all
            "error", "ok", "ok",  # rtt
            "error",             # topic a exists
            "error", "ok",       # topic b 0, topic b 3
            "ok", "error",       # leader
            "ok", "error",       # errors
            "error",             # bogus
            "ok",                # quit; nothing read after it
        ])

    def test_stdin_eof_keeps_running_until_sigterm(self):
        p = subprocess.Popen(_testbroker_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        try:
            self.assertTrue(p.stdout.readline().startswith("bootstrap="))
            p.stdin.close()
            time.sleep(0.5)
            self.assertIsNone(p.poll(), "test broker exited on end of stdin")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_exit_on_eof_and_port_file(self):
        port_file = os.path.join(self.tmpdir(), "bootstrap")
        p = subprocess.Popen(_testbroker_argv("--exit-on-eof", "--port-file", port_file),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            with open(port_file) as f:
                self.assertEqual(f.read(), line)
            p.stdin.close()
            self.assertEqual(p.wait(10), 0)
            self.assertFalse(os.path.exists(port_file))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()


class RoundTripTest(TestCase):
    def test_message_round_trip(self):
        topic = self.unique("harness.rt")
        kafka = self.broker(topics={topic: 1})
        headers = [("pgcdc.lsn", b"0/16B3748"), ("pgcdc.ordinal", b"\x00\x01"), ("empty", b"")]
        d = produce(kafka.bootstrap, topic, b'{"after":{"id":1}}', key=b'{"id":1}',
                    headers=headers)
        self.assertEqual(d, {"partition": 0, "offset": 0})
        produce(kafka.bootstrap, topic, None, key=b'{"id":1}')  # a tombstone
        msgs = consume_all(kafka.bootstrap, [topic], timeout=20, expect_count=2)
        self.assertEqual(len(msgs), 2, msgs)
        self.assertEqual((msgs[0]["key"], msgs[0]["value"], msgs[0]["headers"]),
                         (b'{"id":1}', b'{"after":{"id":1}}', headers))
        self.assertEqual((msgs[1]["key"], msgs[1]["value"], msgs[1]["offset"]),
                         (b'{"id":1}', None, 1))

    def test_consume_all_without_count_stops_at_end(self):
        topic = self.unique("harness.end")
        kafka = self.broker(topics={topic: 3})
        for i in range(6):
            produce(kafka.bootstrap, topic, b"v%d" % i, partition=i % 3)
        t0 = time.monotonic()
        msgs = consume_all(kafka.bootstrap, topic, timeout=20)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(sorted(m["value"] for m in msgs), [b"v%d" % i for i in range(6)])
        self.assertEqual(consume_all(kafka.bootstrap, self.unique("harness.missing"), timeout=3),
                         [])


class FaultTest(TestCase):
    def test_down_broker_holds_produce_until_up(self):
        kafka = self.broker(topics={"harness.down": 1})
        p = Producer({"bootstrap.servers": kafka.bootstrap, "message.timeout.ms": 120000,
                      "linger.ms": 0, "enable.idempotence": True,
                      "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
        reports = []
        cb = lambda err, msg: reports.append((err, msg.offset() if err is None else None))
        p.produce("harness.down", b"before", on_delivery=cb)
        self.assertEqual(p.flush(15), 0)
        self.assertEqual(reports, [(None, 0)])

        kafka.down(1)
        p.produce("harness.down", b"during", key=b"k", on_delivery=cb)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            p.poll(0.1)
        self.assertEqual(len(reports), 1, f"delivery report while the broker is down: {reports}")

        kafka.up(1)
        self.assertEqual(p.flush(20), 0, "not delivered after the broker came back")
        self.assertEqual(reports, [(None, 0), (None, 1)])
        msgs = consume_all(kafka.bootstrap, "harness.down", timeout=20, expect_count=2)
        self.assertEqual([m["value"] for m in msgs], [b"before", b"during"])

    def test_injected_produce_error(self):
        kafka = self.broker(topics={"harness.err": 1})
        produce(kafka.bootstrap, "harness.err", b"warm")
        kafka.push_errors(pgcdc_test.broker.API_PRODUCE,
                          pgcdc_test.broker.ERR_MSG_SIZE_TOO_LARGE)
        with self.assertRaises(Exception) as cm:
            produce(kafka.bootstrap, "harness.err", b"x", conf={"retries": 0})
        self.assertEqual(cm.exception.args[0].code(), KafkaError.MSG_SIZE_TOO_LARGE)

    def test_three_brokers(self):
        kafka = self.broker(brokers=3, topics={"harness.three": 6})
        if kafka.real:
            self.skipTest("needs the test broker")
        self.assertEqual(len(kafka.bootstrap.split(",")), 3)
        self.assertEqual(topic_partitions(kafka.bootstrap, "harness.three"), list(range(6)))
        for part in range(6):
            produce(kafka.bootstrap, "harness.three", b"p%d" % part, partition=part)
        kafka.rtt(2, 20)
        kafka.create_topic("harness.later", 2)
        produce(kafka.bootstrap, "harness.later", b"later")
        msgs = consume_all(kafka.bootstrap, ["harness.three", "harness.later"], timeout=20,
                           expect_count=7)
        self.assertEqual(sorted((m["topic"], m["partition"], m["value"]) for m in msgs
                                if m["topic"] == "harness.three"),
                         [("harness.three", p, b"p%d" % p) for p in range(6)])
        self.assertEqual([m["value"] for m in msgs if m["topic"] == "harness.later"], [b"later"])
        # auto-created topics get librdkafka's fixed default of 4 partitions
        produce(kafka.bootstrap, "harness.auto", b"auto")
        self.assertEqual(topic_partitions(kafka.bootstrap, "harness.auto"), [0, 1, 2, 3])
        with self.assertRaisesRegex(BrokerError, "broker id"):
            kafka.down(4)

    def test_real_kafka_skips_fault_injection(self):
        b = Broker()
        b.real = True  # what PGCDC_TEST_BROKERS does
        with self.assertRaises(unittest.SkipTest):
            b.down(1)


if __name__ == "__main__":
    pgcdc_test.main()
