"""pgcdc_test - harness for pgcdc integration tests: throwaway PostgreSQL, Kafka test broker, pgcdc runs.

A test script is a unittest module:

    import pgcdc_test
    from pgcdc_test import TestCase

    class SnapshotTest(TestCase):
        def test_rows_arrive(self):
            pg = self.pg_cluster()
            kafka = self.broker(topics={"cdc.public.t": 1})
            cfg = self.write_config({...})
            with self.start_pgcdc(["start", "-c", cfg]) as p: ...

    if __name__ == "__main__":
        pgcdc_test.main()

Resources made through TestCase helpers are closed after each test; their
logs (server log, pgcdc stderr) are printed when the test fails.
"""

import os
import sys
import time
import unittest
import uuid

from . import util
from .broker import (Broker, BrokerError, consume_all, kafka_mode, make_producer, produce,
                     real_kafka, testbroker_only, topic_partitions, watermarks)
from .kafka import KafkaCluster
from .pg import PgCluster, PgError, conninfo, lsn_int
from .proc import PgcdcProcess, PgcdcResult, run_pgcdc, start_pgcdc, write_config
from .util import TempDir, free_port, wait_until

__all__ = [
    "Broker", "BrokerError", "KafkaCluster", "PgCluster", "PgError", "PgcdcProcess", "PgcdcResult", "TempDir",
    "TestCase", "consume_all", "conninfo", "free_port", "kafka_mode", "lsn_int", "main",
    "make_producer", "produce", "real_kafka", "run_pgcdc", "testbroker_only", "start_pgcdc", "topic_partitions", "wait_until", "watermarks",
    "write_config",
]


class TestCase(unittest.TestCase):
    """unittest.TestCase with per-test resources and failure diagnostics."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        self._diagnostics = []  # resources whose logs are shown if the test fails

    def pg_cluster(self, settings=None, name="pg", start=True, version=None):
        """A started PgCluster, stopped and removed after the test."""
        pg = PgCluster(settings=settings, name=name, start=start, version=version)
        self.addCleanup(pg.close)
        pg.__enter__()
        self._diagnostics.append(pg)
        return pg

    def broker(self, brokers=1, topics=None, **kw):
        """A running Broker (test broker, KRaft node or PGCDC_TEST_BROKERS), stopped after the test."""
        b = Broker(brokers=brokers, topics=topics, **kw)
        self.addCleanup(b.close)
        b.__enter__()
        self._diagnostics.append(b)
        return b

    def kafka_cluster(self, nodes=1, **kw):
        """A started real Apache Kafka KafkaCluster (KRaft), killed and removed after the test."""
        k = KafkaCluster(nodes=nodes, **kw)
        self.addCleanup(k.close)
        k.__enter__()
        self._diagnostics.append(k)
        return k

    @staticmethod
    def unique(name):
        """name plus a random suffix: topics, slots and groups that no earlier run
        left behind (matters with a real Kafka in PGCDC_TEST_BROKERS)."""
        return f"{name}_{uuid.uuid4().hex[:8]}"

    def tmpdir(self):
        """A fresh temp dir path, removed after the test."""
        d = TempDir()
        self.addCleanup(d.close)
        return d.path

    def write_config(self, settings, name="pgcdc.conf"):
        """Write a pgcdc config file into a fresh temp dir; returns its path."""
        return write_config(os.path.join(self.tmpdir(), name), settings)

    def start_pgcdc(self, args, env=None, cwd=None, name="pgcdc"):
        """start_pgcdc() whose process is killed after the test if still running."""
        p = start_pgcdc(args, env=env, cwd=cwd, name=name)
        self.addCleanup(p.close)
        self._diagnostics.append(p)
        return p

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                self._print_diagnostics()

    def _print_diagnostics(self):
        for r in getattr(self, "_diagnostics", []):
            if isinstance(r, PgCluster):
                util.print_block(f"{r.name} server log tail", r.log_tail())
            elif isinstance(r, PgcdcProcess):
                r.report()
            elif isinstance(r, KafkaCluster):
                r.report()
            elif isinstance(r, Broker) and (r.cluster or r.last_cluster):
                (r.cluster or r.last_cluster).report()


class _Loader(unittest.TestLoader):
    """Leaves out the cases marked @testbroker_only when the Kafka is real."""

    left_out = []

    def getTestCaseNames(self, testCaseClass):
        names = super().getTestCaseNames(testCaseClass)
        if not real_kafka():
            return names
        keep = []
        for n in names:
            why = getattr(getattr(testCaseClass, n), "pgcdc_testbroker_only", None)
            if why:
                _Loader.left_out.append(f"{testCaseClass.__name__}.{n} ({why})")
            else:
                keep.append(n)
        return keep


class _TimedResult(unittest.TextTestResult):
    """A text result that also keeps each case's wall time, printed slowest first at the end
    (so that the suite's time can be seen case by case in meson's log)."""

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        _TimedResult.times.append((time.monotonic() - self._t0, test.id().split(".")[-1]))


_TimedResult.times = []


def main(**kw):
    """unittest.main() with signal handlers installed.

    Exit status: 1 on any failure or error; otherwise 77 (meson's "skipped")
    when any test was skipped or none ran, so a file whose cases did not all
    run is never counted as passed; 0 when every case ran and passed. On a
    real Kafka the cases marked @testbroker_only are left out (and listed).
    """
    util.install_signal_handlers()
    kw.setdefault("verbosity", 2)
    kw["exit"] = False
    kw["testLoader"] = _Loader()
    kw.setdefault("testRunner", unittest.TextTestRunner(resultclass=_TimedResult,
                                                        verbosity=kw["verbosity"]))
    try:
        prog = unittest.main(**kw)
        result = prog.result
        if _TimedResult.times:
            print("case times: " + ", ".join(f"{n} {s:.1f} s" for s, n in
                                             sorted(_TimedResult.times, reverse=True)),
                  file=sys.stderr)
        for c in _Loader.left_out:
            print(f"not run on a real Kafka: {c}", file=sys.stderr)
        if not result.wasSuccessful():
            sys.exit(1)
        if result.testsRun == 0:
            print("no test case ran: reporting the file as skipped", file=sys.stderr)
            sys.exit(77)
        if result.skipped:
            print(f"{len(result.skipped)} of {result.testsRun} cases skipped: "
                  "reporting the file as skipped", file=sys.stderr)
            sys.exit(77)
        sys.exit(0)
    except KeyboardInterrupt as e:
        util.cleanup_all()
        print(f"interrupted: {e}", file=sys.stderr)
        sig = util.caught_signal()
        sys.exit(128 + sig if sig else 130)
