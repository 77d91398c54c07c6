"""test_stream_stdout.py - pgcdc start --sink stdout: exact events, endpos, checkpoint resume, idle keepalive."""

import json
import os
import signal
import stat
import subprocess
import time

import pgcdc_test
from pgcdc_test import TestCase


def events_of(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def project(ev):
    """What a user checks of an event: the change itself, not positions."""
    if ev["op"] == "m":
        m = ev["message"]
        return ("m", m["transactional"], m["prefix"], m.get("content"))
    if ev["op"] == "t":
        t = ev["truncate"]
        return ("t", ev["table"], t["cascade"], t["restart_identity"])
    return (ev["op"], ev["table"], ev["before"], ev["after"])


class StreamTestBase(TestCase):
    def make_source(self, settings=None):
        pg = self.pg_cluster(settings=settings)
        pg.sql("CREATE TABLE a (id int PRIMARY KEY, v text)")
        pg.sql("CREATE TABLE b (k1 int, k2 text, v int, PRIMARY KEY (k1, k2))")
        pg.sql("CREATE TABLE c (x int, y text)")
        pg.sql("ALTER TABLE c REPLICA IDENTITY FULL")
        pg.sql("CREATE TABLE unpublished (id int PRIMARY KEY)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE a, b, c")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        d = self.tmpdir()
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "checkpoint.path": os.path.join(d, "pgcdc.checkpoint"),
            "status.interval": "1s",
        })
        return pg, cfg, os.path.join(d, "pgcdc.checkpoint")

    def end_lsn(self, pg):
        pg.flush_wal()
        return pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")

    def run_to(self, cfg, endpos, *extra):
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "--endpos", endpos,
                                  *extra], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return events_of(r.stdout)


class StreamFailureTest(StreamTestBase):
    """Failure cases first: each names the problem and what to do."""

    def test_missing_slot(self):
        pg, cfg, _ = self.make_source()
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "-o", "slot.name=nope"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('replication slot "nope" does not exist', r.stderr)
        self.assertIn("pgcdc setup", r.stderr)

    def test_missing_publication(self):
        pg, cfg, _ = self.make_source()
        pg.sql("INSERT INTO a VALUES (1, 'x')")
        end = self.end_lsn(pg)
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "--endpos", end,
                                  "-o", "publication.name=nopub"], timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('publication "nopub" does not exist', r.stderr)

    def test_wrong_password_is_clear_and_not_printed(self):
        pg, cfg, _ = self.make_source()
        dsn = pg.dsn(user=pg.app_user, password="Wr0ngSecret")
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "-o",
                                  "source.dsn=" + dsn])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("password authentication failed", r.stderr)
        self.assertIn("check the user and password", r.stderr)
        self.assertNotIn("Wr0ngSecret", r.stderr + r.stdout)

    def test_resume_without_checkpoint_refuses(self):
        pg, cfg, ckpt = self.make_source()
        r = pgcdc_test.run_pgcdc(["resume", "-c", cfg, "--sink", "stdout"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no checkpoint at", r.stderr)
        self.assertFalse(os.path.exists(ckpt))

    def test_server_not_running(self):
        pg, cfg, _ = self.make_source()
        pg.stop()
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot connect to postgresql", r.stderr)
        self.assertIn("is the server running", r.stderr)


class StreamWorkloadTest(StreamTestBase):
    def test_scripted_workload_exact_events(self):
        pg, cfg, ckpt = self.make_source()
        conn = pg.connect(autocommit=False)
        cur = conn.cursor()
        cur.execute("INSERT INTO a VALUES (1, 'one'), (2, NULL), (3, '')")
        cur.execute("INSERT INTO b VALUES (1, 'x', 10), (1, 'y', 20)")
        conn.commit()
        cur.execute("INSERT INTO a VALUES (99, 'rolled back')")
        conn.rollback()
        cur.execute("UPDATE a SET v = 'uno' WHERE id = 1")
        cur.execute("UPDATE a SET id = 20 WHERE id = 2")  # primary key change
        cur.execute("UPDATE b SET v = 11 WHERE k1 = 1 AND k2 = 'x'")
        cur.execute("INSERT INTO unpublished VALUES (1)")
        conn.commit()
        cur.execute("INSERT INTO c VALUES (1, 'p'), (1, 'p')")
        cur.execute("UPDATE c SET y = 'q' WHERE y = 'p'")
        cur.execute("SELECT pg_logical_emit_message(true, 'audit', 'in txn')")
        conn.commit()
        cur.execute("DELETE FROM a WHERE id = 3")
        cur.execute("DELETE FROM b WHERE k2 = 'y'")
        cur.execute("DELETE FROM c")
        conn.commit()
        cur.execute("SELECT pg_logical_emit_message(false, 'ping', 'outside')")
        conn.commit()
        cur.execute("TRUNCATE b")
        conn.commit()
        conn.close()
        end = self.end_lsn(pg)

        events = self.run_to(cfg, end)
        got = [project(e) for e in events]
        want = [
            ("c", "a", None, {"id": "1", "v": "one"}),
            ("c", "a", None, {"id": "2", "v": None}),
            ("c", "a", None, {"id": "3", "v": ""}),
            ("c", "b", None, {"k1": "1", "k2": "x", "v": "10"}),
            ("c", "b", None, {"k1": "1", "k2": "y", "v": "20"}),
            ("u", "a", None, {"id": "1", "v": "uno"}),
            ("u", "a", {"id": "2"}, {"id": "20", "v": None}),
            ("u", "b", None, {"k1": "1", "k2": "x", "v": "11"}),
            ("c", "c", None, {"x": "1", "y": "p"}),
            ("c", "c", None, {"x": "1", "y": "p"}),
            ("u", "c", {"x": "1", "y": "p"}, {"x": "1", "y": "q"}),
            ("u", "c", {"x": "1", "y": "p"}, {"x": "1", "y": "q"}),
            ("m", True, "audit", "in txn"),
            ("d", "a", {"id": "3"}, None),
            ("d", "b", {"k1": "1", "k2": "y"}, None),
            ("d", "c", {"x": "1", "y": "q"}, None),
            ("d", "c", {"x": "1", "y": "q"}, None),
            ("m", False, "ping", "outside"),
            ("t", "b", False, False),
        ]
        if pg.version < 14:
            # pgoutput sends logical decoding messages from PostgreSQL 14 on
            want = [w for w in want if w[0] != "m"]
        self.assertEqual(got, want)

        # positions: ordinals count 0.. within each transaction, commit LSNs ascend
        by_txn = {}
        for e in events:
            by_txn.setdefault(e["commit_lsn"], []).append(e["ordinal"])
        for lsn, ords in by_txn.items():
            self.assertEqual(ords, list(range(len(ords))), lsn)
        commits = [pgcdc_test.lsn_int(e["commit_lsn"]) for e in events]
        self.assertEqual(commits, sorted(commits))

        # the checkpoint and the slot agree, and a second run has nothing to repeat
        with open(ckpt) as f:
            text = f.read()
        saved = pgcdc_test.lsn_int(text.split("lsn = ")[1].split()[0])
        confirmed = pgcdc_test.lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"])
        self.assertEqual(saved, confirmed)
        self.assertGreaterEqual(saved, pgcdc_test.lsn_int(end) - 256)
        self.assertEqual(self.run_to(cfg, end), [])

        # new changes after a restart: exactly those, via resume
        pg.sql("INSERT INTO a VALUES (4, 'four')")
        end2 = self.end_lsn(pg)
        r = pgcdc_test.run_pgcdc(["resume", "-c", cfg, "--sink", "stdout", "--endpos", end2],
                                 timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([project(e) for e in events_of(r.stdout)],
                         [("c", "a", None, {"id": "4", "v": "four"})])

    def test_sigterm_stops_cleanly_and_checkpoints(self):
        self.stop_cleanly_and_checkpoint(signal.SIGTERM)

    def test_password_given_with_o_is_masked_in_the_command_line(self):
        """ps and /proc/PID/cmdline show every local user pgcdc's argv: a password given
        with -o is masked there once read."""
        pg, cfg, _ = self.make_source()
        pg.sql("ALTER ROLE postgres PASSWORD 'Cmdline-Secret-77'")
        dsn = pg.dsn() + " password=Cmdline-Secret-77"
        with self.start_pgcdc(["start", "-c", cfg, "--sink", "stdout", "-o", f"source.dsn={dsn}",
                               "-o", "kafka.sasl.password=Kafka-Secret-88"]) as p:
            p.wait_for_output(r"streaming from slot")
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode()
            self.assertNotIn("Cmdline-Secret-77", cmdline)
            self.assertNotIn("Kafka-Secret-88", cmdline)
            self.assertIn("password=********", cmdline)
            self.assertIn("kafka.sasl.password=*", cmdline)
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(20), 0, p.stderr())

    def test_sigpipe_on_stdout_stops_clearly_and_loses_nothing(self):
        """`pgcdc start --sink stdout | head -2`: the reader goes away mid-transaction.
        pgcdc must exit non-zero saying why, and its checkpoint must not pass the
        transaction it could not write: the next run sends it whole. (Already so: tried
        for issue 11, kept as a test.)"""
        pg, cfg, ckpt = self.make_source()
        pg.sql("INSERT INTO a SELECT g, 'v' FROM generate_series(1, 5000) g")
        r = subprocess.run(["bash", "-o", "pipefail", "-c",
                            f'"{pgcdc_test.proc.pgcdc_bin()}" start -c "{cfg}" --sink stdout '
                            f"| head -2 > /dev/null"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("cannot write to standard output: Broken pipe", r.stderr)
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "--endpos",
                       pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")], timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout.count('"op":"c"'), 5000)

    def test_sslmode_verify_full(self):
        """A server with a certificate from a private CA: sslmode=verify-full with that CA
        streams, with another CA pgcdc refuses at once with libpq's reason and a hint,
        and changes nothing."""
        import pwd
        import test_kafka_real_errors as tls
        pg, cfg, ckpt = self.make_source()
        d = os.path.join(pg.dir, "tls")
        os.makedirs(d)
        tls.make_ca(d, "right")
        tls.make_ca(d, "wrong")
        tls.make_server_cert(d, "right")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for f in os.listdir(d):
                os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(d, "server.key"), 0o600)
        pg.set_config("ssl_cert_file", os.path.join(d, "server.pem"))
        pg.set_config("ssl_key_file", os.path.join(d, "server.key"))
        pg.set_config("ssl", True)
        pg.sql("INSERT INTO a VALUES (1, 'over tls')")
        end = pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")
        base = pg.dsn() + " sslmode=verify-full sslrootcert="
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "--endpos", end,
                                  "-o", f"source.dsn={base}{d}/wrong.pem"], timeout=60)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("certificate verify failed", r.stderr)
        self.assertIn("hint: the server's certificate does not verify: point sslrootcert",
                      r.stderr)
        self.assertFalse(os.path.exists(ckpt))
        self.assertNotIn('"op":"c"', r.stdout)
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--sink", "stdout", "--endpos", end,
                                  "-o", f"source.dsn={base}{d}/right.pem"], timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn('"v":"over tls"', r.stdout)

    def test_sighup_stops_as_sigterm(self):
        """SIGHUP (a closed terminal, a service manager's reload) stops pgcdc as SIGTERM
        does: drained, checkpointed, exit 0, and said in the log."""
        p = self.stop_cleanly_and_checkpoint(signal.SIGHUP)
        self.assertIn("stopping (SIGHUP, handled as SIGTERM)", p.stderr())

    def test_checkpoint_file_is_owner_only_and_keeps_its_mode(self):
        """The checkpoint names the source; it is created 0600, and a rewrite keeps a mode
        the operator chose."""
        _, _, ckpt = self.stop_cleanly_and_checkpoint(signal.SIGTERM, name="run1", ret_all=True)
        self.assertEqual(stat.S_IMODE(os.stat(ckpt).st_mode), 0o600)
        os.chmod(ckpt, 0o640)
        self.stop_cleanly_and_checkpoint(signal.SIGTERM, name="run2", fresh=False)
        self.assertEqual(stat.S_IMODE(os.stat(ckpt).st_mode), 0o640)

    def stop_cleanly_and_checkpoint(self, sig, name="pgcdc", ret_all=False, fresh=True):
        if fresh or not hasattr(self, "_src"):
            self._src = self.make_source()
            self._row = 0
        pg, cfg, ckpt = self._src
        self._row += 1
        with self.start_pgcdc(["start", "-c", cfg, "--sink", "stdout"], name=name) as p:
            p.wait_for_output(r"streaming from slot")
            pg.sql("INSERT INTO a VALUES (%s, 'x')", (self._row,))
            pg.flush_wal()
            pgcdc_test.wait_until(lambda: '"op":"c"' in p.stdout(), timeout=20)
            p.signal(sig)
            self.assertEqual(p.wait(20), 0, p.stderr())
        self.assertTrue(os.path.exists(ckpt))
        # the slot is released and confirmed at the checkpoint
        slot = pg.slot("pgcdc")
        self.assertFalse(slot["active"])
        with open(ckpt) as f:
            saved = f.read().split("lsn = ")[1].split()[0]
        self.assertEqual(saved, slot["confirmed_flush_lsn"])
        return (pg, cfg, ckpt) if ret_all else p


class IdleStreamTest(StreamTestBase):
    def test_idle_stream_survives_wal_sender_timeout(self):
        pg, cfg, _ = self.make_source(settings={"wal_sender_timeout": "5s"})
        # status.interval longer than the timeout: only answering the server's
        # reply requests keeps the connection alive
        with self.start_pgcdc(["start", "-c", cfg, "--sink", "stdout",
                               "-o", "status.interval=30s"]) as p:
            p.wait_for_output(r"streaming from slot")
            time.sleep(12)  # more than twice wal_sender_timeout
            self.assertTrue(p.alive(), p.stderr())
            pg.sql("INSERT INTO a VALUES (5, 'after idle')")
            pg.flush_wal()
            pgcdc_test.wait_until(lambda: "after idle" in p.stdout(), timeout=20)
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(20), 0, p.stderr())
        self.assertNotIn("replication timeout", pg.log_tail(500))

    def test_idle_publication_does_not_pin_wal(self):
        pg, cfg, _ = self.make_source()
        with self.start_pgcdc(["start", "-c", cfg, "--sink", "stdout"]) as p:
            p.wait_for_output(r"streaming from slot")
            start = pgcdc_test.lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"])
            for i in range(20):
                pg.sql("INSERT INTO unpublished SELECT g FROM generate_series(%s, %s) g",
                       (i * 1000 + 10, i * 1000 + 999))
            pg.flush_wal()
            target = pgcdc_test.lsn_int(pg.current_lsn())

            def advanced():
                return pgcdc_test.lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"]) >= target - 8192
            pgcdc_test.wait_until(advanced, timeout=30)
            self.assertGreater(pgcdc_test.lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"]), start)
            self.assertEqual(p.stdout(), "")
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(20), 0, p.stderr())


if __name__ == "__main__":
    pgcdc_test.main()
