"""test_harness_pg.py - the throwaway PostgreSQL cluster of the harness works and cleans up."""

import os
import signal
import subprocess
import sys
import textwrap

import psycopg2

import pgcdc_test
from pgcdc_test import PgCluster, TestCase


def pid_alive(pid):
    return pgcdc_test.util.pid_running(pid)


class WrongSettingsTest(TestCase):
    """Failure cases first: a server without wal_level=logical refuses logical slots."""

    def test_replica_wal_level_refuses_logical_slot(self):
        pg = self.pg_cluster(settings={"wal_level": "replica", "wal_sender_timeout": "3s"})
        self.assertEqual(pg.sql_one("SHOW wal_level"), "replica")
        self.assertEqual(pg.sql_one("SHOW wal_sender_timeout"), "3s")
        with self.assertRaisesRegex(psycopg2.Error, "wal_level"):
            pg.sql("SELECT pg_create_logical_replication_slot('s', 'test_decoding')")

    def test_wrong_password_is_rejected(self):
        pg = self.pg_cluster()
        with self.assertRaisesRegex(psycopg2.OperationalError, "password authentication failed"):
            psycopg2.connect(pg.dsn(user=pg.app_user, password="wrong")).close()
        with self.assertRaisesRegex(psycopg2.OperationalError, "no password supplied"):
            psycopg2.connect(pg.dsn(user=pg.app_user)).close()


class LogicalSlotTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())

    def test_committed_change_read_back_with_test_decoding(self):
        pg = self.pg
        pg.sql("CREATE TABLE td (id int PRIMARY KEY, v text)")
        pg.sql("SELECT pg_create_logical_replication_slot('td_slot', 'test_decoding')")
        pg.sql("INSERT INTO td VALUES (1, 'hello')")
        pg.flush_wal()  # synchronous_commit=off: decoding sees flushed WAL only
        changes = [r[0] for r in pg.sql(
            "SELECT data FROM pg_logical_slot_get_changes('td_slot', NULL, NULL, "
            "'skip-empty-xacts', '1')")]
        self.assertEqual(len(changes), 3, changes)
        self.assertRegex(changes[0], r"^BEGIN \d+$")
        self.assertEqual(changes[1], "table public.td: INSERT: id[integer]:1 v[text]:'hello'")
        self.assertRegex(changes[2], r"^COMMIT \d+$")

    def test_committed_change_read_back_with_pgoutput(self):
        pg = self.pg
        pg.sql("CREATE TABLE po (id int PRIMARY KEY, v text)")
        pg.sql("CREATE PUBLICATION po_pub FOR TABLE po")
        pg.sql("SELECT pg_create_logical_replication_slot('po_slot', 'pgoutput')")
        pg.sql("INSERT INTO po VALUES (7, 'seven')")
        pg.flush_wal()
        msgs = [bytes(r[0]) for r in pg.sql(
            "SELECT data FROM pg_logical_slot_get_binary_changes('po_slot', NULL, NULL, "
            "'proto_version', '1', 'publication_names', 'po_pub')")]
        self.assertEqual([m[:1] for m in msgs], [b"B", b"R", b"I", b"C"])
        self.assertIn(b"po\x00", msgs[1])
        self.assertIn(b"seven", msgs[2])
        slot = pg.slot("po_slot")
        self.assertEqual(slot["plugin"], "pgoutput")

    def test_password_role_connects_over_tcp(self):
        pg = self.pg
        conn = psycopg2.connect(pg.app_dsn())
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user")
                self.assertEqual(cur.fetchone()[0], pg.app_user)
        finally:
            conn.close()

    def test_set_config_and_restart_keep_data(self):
        pg = self.pg
        pg.set_config("wal_sender_timeout", "5s")
        self.assertEqual(pg.sql_one("SHOW wal_sender_timeout"), "5s")
        pg.sql("CREATE TABLE keep (id int)")
        pg.sql("INSERT INTO keep VALUES (1)")
        pg.flush_wal()  # else the immediate stop may lose the async commits
        pg.restart("immediate")
        self.assertEqual(pg.sql_one("SELECT count(*) FROM keep"), 1)
        pg.stop("fast")
        with self.assertRaises(psycopg2.OperationalError):
            pg.sql("SELECT 1")
        pg.start()
        self.assertEqual(pg.sql_one("SELECT count(*) FROM keep"), 1)
        pg.set_config("wal_sender_timeout", "60s")


class CleanupTest(TestCase):
    def _postmaster_pid(self, pg):
        with open(os.path.join(pg.datadir, "postmaster.pid")) as f:
            return int(f.readline())

    def test_cluster_dir_removed_after_exit(self):
        with PgCluster() as pg:
            d = pg.dir
            pid = self._postmaster_pid(pg)
            self.assertTrue(os.path.isdir(d))
        self.assertFalse(os.path.exists(d))
        self.assertFalse(pid_alive(pid))

    def test_cluster_dir_removed_after_exception(self):
        with self.assertRaises(ZeroDivisionError):
            with PgCluster() as pg:
                d = pg.dir
                pid = self._postmaster_pid(pg)
                1 / 0
        self.assertFalse(os.path.exists(d))
        self.assertFalse(pid_alive(pid))

    def test_cluster_removed_when_test_process_gets_sigterm(self):
        script = textwrap.dedent("""
            import sys, time, pgcdc_test
            pgcdc_test.util.install_signal_handlers()
            with pgcdc_test.PgCluster() as pg:
                pid = open(pg.datadir + "/postmaster.pid").readline().strip()
                print(pg.dir, pid, flush=True)
                time.sleep(60)
        """)
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            d, pid = p.stdout.readline().split()
            self.assertTrue(os.path.isdir(d))
            p.send_signal(signal.SIGTERM)
            rc = p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
        self.assertNotEqual(rc, 0)
        self.assertFalse(os.path.exists(d))
        self.assertFalse(pid_alive(int(pid)))


if __name__ == "__main__":
    pgcdc_test.main()
