"""test_teardown.py - pgcdc teardown: asks or needs --yes, refuses an active slot, keeps the checkpoint."""

import itertools
import os
import subprocess

import psycopg2
import psycopg2.extras

import pgcdc_test
from pgcdc_test import PgCluster, TestCase, run_pgcdc, wait_until
from pgcdc_test.proc import pgcdc_bin

_ids = itertools.count(1)


class TeardownTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())

    def prepare(self, setup=True):
        """A database with a table, a config (slot = publication = db name), setup run."""
        pg = self.pg
        db = f"teardown_{next(_ids)}"
        pg.sql(f"CREATE DATABASE {db}")
        pg.sql("CREATE TABLE t (id int PRIMARY KEY)", dbname=db)
        self.ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({"source.dsn": pg.app_dsn(dbname=db), "slot.name": db,
                                 "publication.name": db, "checkpoint.path": self.ckpt})
        if setup:
            run_pgcdc(["setup", "-c", cfg], check=0)
        return db, cfg

    def assertStillThere(self, db):
        self.assertIsNotNone(self.pg.slot(db))
        self.assertEqual(self.pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 1)

    def assertGone(self, db):
        self.assertIsNone(self.pg.slot(db))
        self.assertEqual(self.pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 0)

    def run_on_terminal(self, cfg, answer):
        """Run teardown with a pseudo-terminal as stdin and type answer."""
        master, slave = os.openpty()
        try:
            p = subprocess.Popen([pgcdc_bin(), "teardown", "-c", cfg], stdin=slave,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            os.close(slave)
            slave = None
            os.write(master, answer.encode())
            out, err = p.communicate(timeout=30)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        return p.returncode, out, err

    # ------------------------------------------------------------ refusals first

    def test_without_yes_and_without_terminal_refuses(self):
        db, cfg = self.prepare()
        r = run_pgcdc(["teardown", "-c", cfg], input="y\n")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("teardown needs --yes when standard input is not a terminal", r.stderr)
        self.assertIn(f'teardown would drop slot "{db}" and publication "{db}" on database '
                      f'"{db}"', r.stderr)
        self.assertIn("hint: run pgcdc teardown -c FILE --yes", r.stderr)
        self.assertStillThere(db)

    def test_refuses_while_slot_is_active(self):
        db, cfg = self.prepare()
        conn = psycopg2.connect(self.pg.dsn(dbname=db),
                                connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self.addCleanup(conn.close)
        conn.cursor().start_replication(slot_name=db, decode=False, options={
            "proto_version": "1", "publication_names": db})
        pid = wait_until(lambda: (self.pg.slot(db) or {}).get("active_pid"), timeout=10,
                         message="slot to become active")
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f'replication slot "{db}" is active for PID {pid}: not dropped', r.stderr)
        self.assertIn("detail: nothing was dropped", r.stderr)
        self.assertIn(f"pg_terminate_backend({pid})", r.stderr)
        self.assertStillThere(db)
        # once the stream stops, teardown goes through
        conn.close()
        wait_until(lambda: not self.pg.slot(db)["active"], timeout=10,
                   message="slot to become inactive")
        run_pgcdc(["teardown", "-c", cfg, "--yes"], check=0)
        self.assertGone(db)

    def test_refuses_a_slot_that_is_not_pgcdcs(self):
        db, cfg = self.prepare(setup=False)
        self.pg.sql(f"SELECT pg_create_logical_replication_slot('{db}', 'test_decoding')",
                    dbname=db)
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"])
        self.assertEqual(r.returncode, 4, r)
        self.assertIn(f'replication slot "{db}" uses plugin "test_decoding", not pgcdc\'s '
                      '"pgoutput": not dropped', r.stderr)
        self.assertEqual(self.pg.slot(db)["plugin"], "test_decoding")

    def test_terminal_answer_no_keeps_everything(self):
        db, cfg = self.prepare()
        rc, out, err = self.run_on_terminal(cfg, "n\n")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn(f'drop slot "{db}" and publication "{db}" on database "{db}"? [y/N]', out)
        self.assertIn("teardown cancelled: nothing was dropped", err)
        self.assertStillThere(db)

    # ------------------------------------------------------------ dropping

    def test_terminal_answer_yes_drops(self):
        db, cfg = self.prepare()
        rc, out, err = self.run_on_terminal(cfg, "y\n")
        self.assertEqual(rc, 0, (out, err))
        self.assertIn(f'dropped replication slot "{db}"', out)
        self.assertGone(db)

    def test_yes_drops_and_keeps_checkpoint(self):
        db, cfg = self.prepare()
        with open(self.ckpt, "w") as f:
            f.write("pretend checkpoint\n")
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"], check=0)
        self.assertIn(f'dropped replication slot "{db}"', r.stdout)
        self.assertIn(f'dropped publication "{db}"', r.stdout)
        self.assertIn(f'checkpoint file "{self.ckpt}" is now stale and was kept', r.stdout)
        self.assertNotIn(self.pg.app_password, r.stdout + r.stderr)
        self.assertGone(db)
        self.assertTrue(os.path.exists(self.ckpt))
        # again: everything is already absent, which is fine
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"], check=0)
        self.assertIn(f'replication slot "{db}" does not exist (already absent)', r.stdout)
        self.assertIn(f'publication "{db}" does not exist (already absent)', r.stdout)

    def test_nothing_to_drop_needs_no_confirmation(self):
        db, cfg = self.prepare(setup=False)
        r = run_pgcdc(["teardown", "-c", cfg], input="", check=0)
        self.assertIn("already absent", r.stdout)
        self.assertIn(f'no checkpoint file at "{self.ckpt}"', r.stdout)

    def test_only_the_publication_left(self):
        db, cfg = self.prepare()
        self.pg.sql(f"SELECT pg_drop_replication_slot('{db}')")
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"], check=0)
        self.assertIn(f'replication slot "{db}" does not exist (already absent)', r.stdout)
        self.assertIn(f'dropped publication "{db}"', r.stdout)
        self.assertGone(db)


if __name__ == "__main__":
    pgcdc_test.main()
