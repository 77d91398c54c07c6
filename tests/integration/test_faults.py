"""test_faults.py - one fault at a time under a small workload: pgcdc recovers or stops cleanly,
and Kafka ends up with every change exactly once.

Each test runs the versioned-row workload of exactly_once.py (a few random
rows bumped per transaction) while the fault happens, and ends with the same
count: for every row, each version from 0 to its final one in the database is
in Kafka exactly once, in order, in the row's partition.

  - PostgreSQL restarted (fast, immediate) and the walsender terminated:
    pgcdc logs each reconnection attempt, reconnects, never exits.
  - the broker down for 30 s, or answering after 2 s: no reconnect to
    PostgreSQL, and wal_sender_timeout (10 s) never fires.
  - the checkpoint cannot be written (read-only file system, full disk, both
    on a tmpfs mounted by the test): pgcdc stops naming the path; the old
    checkpoint stays as it was and the slot is not advanced past it.
  - the slot dropped and recreated, or advanced, while pgcdc is stopped:
    refused with exit status 4 and an explanation.
"""

import datetime
import json
import os
import re
import signal
import subprocess
import time
import unittest

import pgcdc_test
from pgcdc_test import TestCase, lsn_int, run_pgcdc, wait_until

import exactly_once as eo

PREFIX = "ft"
TABLE = "vrows"
ROWS = 50
TOPIC = f"{PREFIX}.public.{TABLE}"

_CKPT_RX = re.compile(r"checkpoint at ([0-9A-F]+/[0-9A-F]+)")
_START_RX = re.compile(r"streaming from slot .* at ([0-9A-F]+/[0-9A-F]+) \(")
_STATUS_RX = re.compile(r"status update: write [0-9A-F]+/[0-9A-F]+ flush ([0-9A-F]+/[0-9A-F]+)")


def check_flush_never_ahead(tc, log):
    """From a debug log: every status update's flush is at or below the durable position: the
    last checkpoint written before it, or the position the session started from. Returns the
    last checkpoint written (None if none)."""
    durable = None
    last_ckpt = None
    bad = []
    for line in log.splitlines():
        m = _CKPT_RX.search(line) or _START_RX.search(line)
        if m:
            durable = lsn_int(m.group(1))
            if "checkpoint at" in line:
                last_ckpt = durable
            continue
        m = _STATUS_RX.search(line)
        if m and (durable is None or lsn_int(m.group(1)) > durable):
            bad.append(line)
    tc.assertEqual(bad[:5], [], "status updates ahead of the durable checkpoint")
    return last_ckpt


def status_gaps(log):
    """[(seconds since the previous status update, timestamp)] from a debug log."""
    out = []
    prev = None
    for line in log.splitlines():
        if "status update: write" not in line:
            continue
        ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        if prev is not None:
            out.append(((ts - prev).total_seconds(), line.split()[0]))
        prev = ts
    return out


class FaultTestBase(TestCase):
    def source(self, settings=None, cfg=None, ckpt_dir=None, topics=None):
        """A cluster with the versioned table, publication and slot; a broker; a config.
        Returns (pg, kafka, config path, checkpoint path)."""
        pg = self.pg_cluster(settings=settings)
        eo.make_versioned_table(pg, TABLE, ROWS)
        kafka = self.broker(topics=topics or {TOPIC: 8})
        ckpt = os.path.join(ckpt_dir or self.tmpdir(), "pgcdc.checkpoint")
        c = {
            "source.dsn": pg.dsn(),
            "topic.prefix": PREFIX,
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": kafka.bootstrap,
            "reconnect.backoff.min": "200ms",
            "reconnect.backoff.max": "2s",
        }
        c.update(cfg or {})
        return pg, kafka, self.write_config(c), ckpt

    def start(self, cfg, name="pgcdc", env=None):
        p = self.start_pgcdc(["start", "-c", cfg], name=name, env=env)
        p.wait_for_output(r"streaming from slot", timeout=60)
        return p

    def workload(self, pg, pause=0.02):
        w = eo.Workload(pg.dsn(), TABLE, ROWS, seed=hash(self.id()) & 0xFFFF, pause=pause)
        w.start()
        self.addCleanup(w.stop_event.set)
        return w

    def walsender_pid(self, pg):
        s = pg.slot("pgcdc")
        return s["active_pid"] if s and s["active"] else None

    def wait_delivered(self, pg, kafka, p, timeout=60):
        """Wait until the running pgcdc p has put every committed version into Kafka."""
        want = sum(v + 1 for v in eo.final_versions(pg, TABLE).values())
        try:
            wait_until(lambda: not p.alive() or eo.topic_total(kafka.bootstrap, TOPIC) >= want,
                       timeout=timeout, interval=0.3,
                       message=f"{want} messages in {TOPIC}")
        except AssertionError as e:
            raise AssertionError(f"{e}: {eo.topic_total(kafka.bootstrap, TOPIC)} there\n"
                                 f"{p.stderr()[-4000:]}") from None
        self.assertTrue(p.alive(), f"pgcdc exited ({p.poll()}):\n{p.stderr()[-4000:]}")

    def stop(self, p):
        rc = p.terminate(timeout=60)
        self.assertEqual(rc, 0, p.stderr()[-4000:])

    def drain_and_count(self, pg, kafka, cfg, finals=None):
        """pgcdc start --endpos (delivers whatever is left), then the exactly-once count."""
        r = run_pgcdc(["start", "-c", cfg, "--endpos", eo.end_lsn(pg)], timeout=120)
        self.assertEqual(r.returncode, 0, r)
        msgs = eo.read_all(kafka.bootstrap, [TOPIC])
        counts = eo.count_versions(msgs, finals or eo.final_versions(pg, TABLE))
        print(f"\n{self._testMethodName}: {counts.line()}", flush=True)
        counts.assert_exact(self)
        return counts


class PostgresFaultTest(FaultTestBase):
    def restart_under_load(self, mode, down=3):
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        self.assertIsNotNone(self.walsender_pid(pg))
        # down for a few seconds, so that more than one reconnection attempt fails
        pg.stop(mode)
        time.sleep(down)
        self.assertTrue(p.alive(), f"pgcdc gave up while the server was down:\n"
                                   f"{p.stderr()[-3000:]}")
        pg.start()
        p.wait_for_output(r"streaming from slot .*\(reconnected\)", timeout=60)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p)
        err = p.stderr()
        attempts = re.findall(r"reconnecting to postgresql in \d+ ms \(attempt (\d+)\)", err)
        self.assertGreaterEqual(len(attempts), 2, err[-4000:])
        self.assertEqual([int(a) for a in attempts], list(range(1, len(attempts) + 1)), err)
        self.assertGreater(w.conn_errors, 0, "the workload did not notice the restart")
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)
        print(f"{len(attempts)} reconnection attempts", flush=True)

    @pgcdc_test.broker.postgres_side_only("a PostgreSQL outage; the Kafka side stays up")
    def test_down_60s(self):
        """Stopped for a minute while streaming: pgcdc keeps retrying (backoff capped at
        reconnect.backoff.max) and resumes exactly once."""
        self.restart_under_load("fast", down=60)

    def test_restart_fast(self):
        self.restart_under_load("fast")

    def test_restart_immediate(self):
        self.restart_under_load("immediate")

    def test_walsender_terminated(self):
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg)
        pids = []
        for k in range(2):
            time.sleep(1.5)
            pid = wait_until(lambda: self.walsender_pid(pg), timeout=30,
                             message="an active walsender")
            self.assertNotIn(pid, pids)
            pids.append(pid)
            self.assertTrue(pg.sql_one("SELECT pg_terminate_backend(%s)", (pid,)))
            wait_until(lambda: len(re.findall(r"\(reconnected\)", p.stderr())) > k, timeout=60,
                       message="the reconnection")
        time.sleep(1.5)
        w.finish()
        self.wait_delivered(pg, kafka, p)
        self.assertNotIn(self.walsender_pid(pg), pids)
        self.assertIn("reconnecting to postgresql in", p.stderr())
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)


class BrokerFaultTest(FaultTestBase):
    """wal_sender_timeout = 10s: pgcdc must keep the walsender satisfied while Kafka is away."""

    SETTINGS = {"wal_sender_timeout": "10s"}

    def assert_no_replication_timeout(self, pg, p, pid):
        self.assertEqual(self.walsender_pid(pg), pid, "the walsender changed")
        self.assertNotIn("reconnecting to postgresql", p.stderr())
        with open(pg.logfile) as f:
            log = f.read()
        self.assertNotIn("replication timeout", log)

    def test_broker_down_30s(self):
        pg, kafka, cfg, ckpt = self.source(settings=self.SETTINGS, cfg={
            "kafka.reconnect.backoff.ms": "100",
            "kafka.reconnect.backoff.max.ms": "1000",
            # the outage fills the window: pgcdc stops reading WAL for most of it
            "inflight.max.messages": 500,
            "log.level": "debug",
        })
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        pid = self.walsender_pid(pg)
        self.assertIsNotNone(pid)
        kafka.down(1)
        t_down = time.monotonic()
        time.sleep(30)
        kafka.up(1)
        t_up = time.monotonic()
        self.assertTrue(p.alive(), p.stderr()[-4000:])
        time.sleep(3)
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=90)
        print(f"\nbroker down {t_up - t_down:.1f} s; workload {w.commits} transactions",
              flush=True)
        self.assert_no_replication_timeout(pg, p, pid)
        # The walsender asks for a reply once wal_sender_timeout / 2 passed without one, and
        # pgcdc must answer at once, also while backpressure keeps it from reading WAL:
        # status updates are never further apart than that (plus scheduling slack).
        gaps = status_gaps(p.stderr())
        worst = max(gaps)
        print(f"longest gap between status updates: {worst[0]:.1f} s (at {worst[1]})",
              flush=True)
        # 5 s is wal_sender_timeout / 2; 3 s of slack for a loaded 2-core machine stays
        # under the 10 s timeout, which the server-log check above guards as well
        self.assertLessEqual(worst[0], 5 + 3,
                             "no status update for longer than wal_sender_timeout / 2 while the "
                             "broker was down: the server's reply requests went unanswered; "
                             f"gaps {sorted(g for g, _ in gaps)[-6:]}")
        self.stop(p)
        check_flush_never_ahead(self, p.stderr())
        self.drain_and_count(pg, kafka, cfg)

    @pgcdc_test.testbroker_only("a 2 s round trip is injected")
    def test_broker_slow_rtt_2000ms(self):
        pg, kafka, cfg, _ = self.source(settings=self.SETTINGS)
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        pid = self.walsender_pid(pg)
        self.assertIsNotNone(pid)
        kafka.rtt(1, 2000)
        time.sleep(15)
        self.assert_no_replication_timeout(pg, p, pid)
        # a crash while the broker is slow: the restart reads the partition positions slowly,
        # and must still skip exactly what Kafka holds
        p.kill()
        p2 = self.start(cfg, name="pgcdc#2")
        pid2 = wait_until(lambda: self.walsender_pid(pg), timeout=30, message="a walsender")
        time.sleep(12)
        kafka.rtt(1, 0)
        w.finish()
        self.wait_delivered(pg, kafka, p2, timeout=90)
        self.assert_no_replication_timeout(pg, p2, pid2)
        self.stop(p2)
        self.drain_and_count(pg, kafka, cfg)


    @pgcdc_test.testbroker_only("fetch errors are injected")
    def test_scan_retries_an_unreadable_partition_past_a_minute(self):
        """The restart scan cannot read the last message of a partition for over a
        minute (every fetch fails): pgcdc must keep trying, saying so, and never stream
        without the mark or give up; once the partition reads, it resumes exactly once."""
        pg, kafka, cfg, _ = self.source(topics={TOPIC: 1})
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p)
        self.assertEqual(p.kill(), -9)
        w = self.workload(pg)
        time.sleep(1)
        w.finish()
        # INVALID_REQUEST for every fetch, kept topped up for 65 s (the consumer retries
        # between 4 and 25 times a second), then cleared
        kafka.push_errors(pgcdc_test.broker.API_FETCH, *([42] * 200))
        p = self.start_pgcdc(["start", "-c", cfg], name="pgcdc#2")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 65:
            time.sleep(2)
            kafka.push_errors(pgcdc_test.broker.API_FETCH, *([42] * 100))
            self.assertTrue(p.alive(), f"pgcdc gave up the scan:\n{p.stderr()[-3000:]}")
            self.assertNotIn("streaming from slot", p.stderr())
        kafka.clear_errors(pgcdc_test.broker.API_FETCH)
        self.assertRegex(p.stderr(), r"cannot read the last message of .* yet: .*retrying "
                                     r"\(for [1-9]\d* s now")
        p.wait_for_output(r"streaming from slot", timeout=240)
        self.wait_delivered(pg, kafka, p, timeout=120)
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)

    @pgcdc_test.testbroker_only("a produce error is injected")
    def test_producer_sequence_desynchronised(self):
        """The broker answers a produce request with OUT_OF_ORDER_SEQUENCE_NUMBER for the
        first batch in flight: librdkafka can no longer reason about what Kafka holds and
        fails the producer for good. pgcdc must replace it and carry on, exactly once."""
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        kafka.push_errors(pgcdc_test.broker.API_PRODUCE,
                          pgcdc_test.broker.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER)
        p.wait_for_output(r"started a new kafka producer", timeout=60)
        p.wait_for_output(r"streaming from slot .*\(reconnected\)", timeout=60)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p, timeout=90)
        self.assertRegex(p.stderr(), r"the kafka producer failed: \S+")
        self.stop(p)
        self.drain_and_count(pg, kafka, cfg)


class CheckpointFaultTest(FaultTestBase):
    """The checkpoint's file system on a tmpfs that the test mounts, then breaks."""

    def mount_tmpfs(self, size):
        if os.geteuid() != 0:
            raise unittest.SkipTest("mounting a tmpfs needs root")
        d = os.path.join(self.tmpdir(), "ckpt")
        os.mkdir(d)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise unittest.SkipTest(f"cannot mount a tmpfs here: {r.stderr.strip()}")

        def umount():
            if subprocess.run(["umount", d], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", d], capture_output=True)
        self.addCleanup(umount)
        return d

    def remount(self, d, opt):
        """mount -o remount,opt; retried while pgcdc holds a file open for writing (EBUSY)."""
        deadline = time.monotonic() + 10
        while True:
            r = subprocess.run(["mount", "-o", f"remount,{opt}", d], capture_output=True,
                               text=True)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"mount -o remount,{opt} {d}: {r.stderr}")
            time.sleep(0.01)

    def run_until_checkpoint_fails(self, size, break_fs, repair_fs):
        d = self.mount_tmpfs(size)
        pg, kafka, cfg, ckpt = self.source(ckpt_dir=d, cfg={
            "checkpoint.interval": "200ms", "status.interval": "500ms", "log.level": "debug"})
        p = self.start(cfg)
        w = self.workload(pg)
        wait_until(lambda: os.path.exists(ckpt), timeout=30, message="a first checkpoint")
        time.sleep(1.5)
        first = eo.parse_checkpoint(ckpt)
        break_fs(d, p)
        rc = p.wait(60)
        with open(ckpt, "rb") as f:
            kept = f.read()
        err = p.stderr()
        time.sleep(0.5)
        confirmed = lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"])
        w.finish()
        self.assertEqual(rc, 1, err[-4000:])
        # a clear error naming the file, and no claim that anything was lost
        last = [ln for ln in err.splitlines() if "error" in ln][-3:]
        print(f"\n{self._testMethodName}: exit {rc}: " + " | ".join(last), flush=True)
        self.assertRegex(err, r"(cannot create|cannot write|cannot fsync|cannot rename).*"
                         + re.escape(ckpt))
        self.assertIn("previous checkpoint is intact", err)
        # the file is whole and is the last checkpoint pgcdc reported writing
        lsn = eo.parse_checkpoint(ckpt)
        self.assertGreaterEqual(lsn, first)
        self.assertEqual(check_flush_never_ahead(self, err), lsn)
        self.assertLessEqual(confirmed, lsn, f"slot confirmed {eo.fmt_lsn(confirmed)} is past "
                             f"the checkpoint {eo.fmt_lsn(lsn)}")
        repair_fs(d)
        with open(ckpt, "rb") as f:
            self.assertEqual(f.read(), kept, "the checkpoint changed after pgcdc stopped")
        self.assertFalse(os.path.exists(ckpt + ".tmp"))
        # repaired: a restart resumes from the kept checkpoint, exactly once
        self.drain_and_count(pg, kafka, cfg)
        self.assertGreater(eo.parse_checkpoint(ckpt), lsn)

    def test_checkpoint_dir_read_only(self):
        def break_fs(d, p):
            self.remount(d, "ro")

        def repair_fs(d):
            self.remount(d, "rw")
        self.run_until_checkpoint_fails("1m", break_fs, repair_fs)

    def test_checkpoint_disk_full(self):
        def break_fs(d, p):
            # fill the file system, and keep it full (a rename frees the old file's page)
            with open(os.path.join(d, "filler"), "wb", buffering=0) as f:
                deadline = time.monotonic() + 60
                while p.alive() and time.monotonic() < deadline:
                    try:
                        while True:
                            f.write(b"\0" * 4096)
                    except OSError:
                        pass
                    time.sleep(0.02)

        def repair_fs(d):
            os.unlink(os.path.join(d, "filler"))
        self.run_until_checkpoint_fails("256k", break_fs, repair_fs)


class SlotFaultTest(FaultTestBase):
    def run_then_stop(self):
        pg, kafka, cfg, ckpt = self.source()
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p)
        self.stop(p)
        wait_until(lambda: not pg.slot("pgcdc")["active"], timeout=30,
                   message="the walsender to exit")
        finals = eo.final_versions(pg, TABLE)
        with open(ckpt, "rb") as f:
            saved = f.read()
        return pg, kafka, cfg, ckpt, finals, saved

    def more_changes(self, pg):
        w = self.workload(pg)
        time.sleep(1)
        w.finish()
        pg.flush_wal()

    def assert_refused(self, pg, kafka, cfg, ckpt, finals, saved):
        msgs_before = eo.topic_total(kafka.bootstrap, TOPIC)
        for cmd in ("start", "resume"):
            r = run_pgcdc([cmd, "-c", cfg], timeout=60)
            self.assertEqual(r.returncode, 4, r)
            self.assertIn("is behind slot", r.stderr)
            self.assertIn("cannot be replayed", r.stderr)
            self.assertIn("remove the checkpoint", r.stderr)
        print(f"\n{self._testMethodName}: " + " | ".join(r.stderr.strip().splitlines()),
              flush=True)
        with open(ckpt, "rb") as f:
            self.assertEqual(f.read(), saved)
        self.assertEqual(eo.topic_total(kafka.bootstrap, TOPIC), msgs_before)
        st = run_pgcdc(["status", "-c", cfg, "--json"], timeout=30)
        self.assertIn("is behind the slot", " ".join(json.loads(st.stdout)["warnings"]))
        # what was delivered before is there exactly once
        counts = eo.count_versions(eo.read_all(kafka.bootstrap, [TOPIC]), finals)
        print(counts.line(), flush=True)
        counts.assert_exact(self)

    @pgcdc_test.broker.postgres_side_only("the slot's fate is PostgreSQL's; the Kafka side stays up")
    def test_slot_dropped_and_recreated(self):
        pg, kafka, cfg, ckpt, finals, saved = self.run_then_stop()
        pg.sql("SELECT pg_drop_replication_slot('pgcdc')")
        self.more_changes(pg)  # lost for the new slot: it starts after them
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        self.more_changes(pg)
        self.assert_refused(pg, kafka, cfg, ckpt, finals, saved)

    @pgcdc_test.broker.postgres_side_only("the slot's fate is PostgreSQL's; the Kafka side stays up")
    def test_slot_dropped_while_running_exits_4(self):
        pg, kafka, cfg, _ = self.source()
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        # an active slot cannot be dropped: end its walsender, then drop it before pgcdc
        # reconnects
        wait_until(lambda: pg.sql_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(active_pid) FROM "
            "pg_replication_slots WHERE slot_name = 'pgcdc' AND active) s") >= 0 and
            pg.sql_one("SELECT count(pg_drop_replication_slot(slot_name)) FROM "
                       "pg_replication_slots WHERE slot_name = 'pgcdc' AND NOT active") > 0,
            timeout=30, interval=0.01, message="the slot dropped")
        w.finish()
        rc = p.wait(60)
        self.assertEqual(rc, 4, p.stderr()[-3000:])
        self.assertIn('replication slot "pgcdc" was dropped while pgcdc was running',
                      p.stderr())

    @pgcdc_test.broker.postgres_side_only("the slot's fate is PostgreSQL's; the Kafka side stays up")
    def test_slot_invalidated_by_max_slot_wal_keep_size(self):
        """pgcdc frozen while WAL piles up beyond max_slot_wal_keep_size: the server
        invalidates the slot and ends its walsender. pgcdc must stop with an error that
        names the setting, not reconnect for ever."""
        pg, kafka, cfg, _ = self.source(settings={"max_slot_wal_keep_size": "1MB"})
        p = self.start(cfg)
        w = self.workload(pg)
        time.sleep(2)
        w.finish()
        self.wait_delivered(pg, kafka, p)
        p.signal(signal.SIGSTOP)
        try:
            for _ in range(4):
                pg.sql(f"INSERT INTO {TABLE} SELECT -g, 0 FROM generate_series(1, 1000) g "
                       "ON CONFLICT DO NOTHING")
                pg.sql("SELECT pg_switch_wal()")
            pg.sql("CHECKPOINT")
            wait_until(lambda: pg.slot("pgcdc")["wal_status"] == "lost", timeout=60,
                       message="the slot invalidated")
        finally:
            p.signal(signal.SIGCONT)
        rc = p.wait(60)
        err = p.stderr()
        self.assertEqual(rc, 1, err[-3000:])
        self.assertIn('replication slot "pgcdc" was invalidated', err)
        self.assertIn("max_slot_wal_keep_size = 1MB", err)
        self.assertLessEqual(err.count("reconnecting to postgresql"), 2, err[-3000:])

    @pgcdc_test.broker.postgres_side_only("the slot's fate is PostgreSQL's; the Kafka side stays up")
    def test_slot_advanced_past_checkpoint(self):
        pg, kafka, cfg, ckpt, finals, saved = self.run_then_stop()
        self.more_changes(pg)
        pg.sql("SELECT pg_replication_slot_advance('pgcdc', pg_current_wal_lsn())")
        confirmed = pg.slot("pgcdc")["confirmed_flush_lsn"]
        self.assertGreater(lsn_int(confirmed), eo.parse_checkpoint(ckpt))
        self.assert_refused(pg, kafka, cfg, ckpt, finals, saved)
        self.assertEqual(pg.slot("pgcdc")["confirmed_flush_lsn"], confirmed)


if __name__ == "__main__":
    pgcdc_test.main()
