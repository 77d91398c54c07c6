"""test_status.py - pgcdc status: slot, lag, publication, replica identity and checkpoint health."""

import itertools
import json
import os
import zlib

import psycopg2
import psycopg2.extras

import pgcdc_test
from pgcdc_test import PgCluster, TestCase, lsn_int, run_pgcdc, wait_until

_ids = itertools.count(1)

EXIT_UNHEALTHY = 5


def write_checkpoint(path, system_id, database, slot, lsn, written_at_ms=1700000000123):
    """Write a checkpoint file in pgcdc's format (version 1, CRC-32 sealed)."""
    body = (f"pgcdc-checkpoint 1\nsystem_identifier = {system_id}\ntimeline = 1\n"
            f"database = {database}\nslot = {slot}\nlsn = {lsn}\n"
            f"written_at_ms = {written_at_ms}\n")
    body += "crc32 = %08x\n" % zlib.crc32(body.encode())
    with open(path, "w") as f:
        f.write(body)


class StatusTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())
        cls.system_id = cls.pg.sql_one("SELECT system_identifier FROM pg_control_system()")

    def prepare(self, setup=True, tables="CREATE TABLE t (id int PRIMARY KEY, v text)"):
        """A fresh database with table t, a config (slot = publication = db name) and setup run."""
        pg = self.pg
        db = f"status_{next(_ids)}"
        pg.sql(f"CREATE DATABASE {db}")
        if tables:
            pg.sql(tables, dbname=db)
        self.ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({"source.dsn": pg.app_dsn(dbname=db), "slot.name": db,
                                 "publication.name": db, "checkpoint.path": self.ckpt})
        if setup:
            run_pgcdc(["setup", "-c", cfg], check=0)
        return db, cfg

    def status(self, cfg, *extra, expect=0):
        r = run_pgcdc(["status", "-c", cfg, *extra], check=expect)
        self.assertNotIn(self.pg.app_password, r.stdout + r.stderr)
        return r

    def status_json(self, cfg, expect=0):
        r = self.status(cfg, "--json", expect=expect)
        self.assertEqual(len(r.stdout.strip().splitlines()), 1, r.stdout)
        return json.loads(r.stdout)

    # ------------------------------------------------------------ unhealthy first

    def test_slot_missing_is_unhealthy(self):
        db, cfg = self.prepare()
        self.pg.sql(f"SELECT pg_drop_replication_slot('{db}')")
        r = self.status(cfg, expect=EXIT_UNHEALTHY)
        self.assertIn("  state:               missing", r.stdout)
        self.assertIn("status: unhealthy", r.stdout)
        self.assertIn(f'pgcdc: error: unhealthy: replication slot "{db}" does not exist '
                      "(run pgcdc setup)", r.stderr)
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertFalse(st["healthy"])
        self.assertEqual(st["slot"], {"name": db, "exists": False})
        self.assertEqual(st["problems"], [f'replication slot "{db}" does not exist '
                                          "(run pgcdc setup)"])
        self.assertTrue(st["publication"]["exists"])

    def test_publication_missing_is_unhealthy(self):
        db, cfg = self.prepare()
        self.pg.sql(f"DROP PUBLICATION {db}", dbname=db)
        r = self.status(cfg, expect=EXIT_UNHEALTHY)
        self.assertIn(f'publication "{db}" does not exist', r.stderr)
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertEqual(st["publication"], {"name": db, "exists": False})
        self.assertTrue(st["slot"]["exists"])

    def test_nothing_set_up_is_unhealthy(self):
        db, cfg = self.prepare(setup=False)
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertEqual(len(st["problems"]), 2, st["problems"])

    def test_corrupt_checkpoint_is_unhealthy(self):
        db, cfg = self.prepare()
        write_checkpoint(self.ckpt, self.system_id, db, db, "0/1000000")
        with open(self.ckpt, "r+") as f:  # flip one digit of the LSN: the CRC no longer fits
            text = f.read().replace("lsn = 0/1000000", "lsn = 0/2000000")
            f.seek(0)
            f.write(text)
        r = self.status(cfg, expect=EXIT_UNHEALTHY)
        self.assertIn("  state:               corrupt", r.stdout)
        self.assertIn(f'checkpoint file "{self.ckpt}" is corrupt', r.stderr)
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertEqual(st["checkpoint"]["state"], "corrupt")
        self.assertIn("is corrupt", st["checkpoint"]["error"])

    def test_text_after_the_crc_line_is_corrupt(self):
        """The CRC covers the whole file: a line appended after it (an edit, a file glued
        to another) makes the checkpoint corrupt, not silently ignored."""
        db, cfg = self.prepare()
        lsn = self.pg.slot(db)["confirmed_flush_lsn"]
        write_checkpoint(self.ckpt, self.system_id, db, db, lsn)
        self.status(cfg)
        with open(self.ckpt, "a") as f:
            f.write("lsn = FFFFFFFF/FFFFFFFF\n")
        r = self.status(cfg, expect=EXIT_UNHEALTHY)
        self.assertIn("  state:               corrupt", r.stdout)
        self.assertIn(f'checkpoint file "{self.ckpt}" is corrupt', r.stderr)

    def test_checkpoint_of_other_system_or_slot_is_unhealthy(self):
        db, cfg = self.prepare()
        write_checkpoint(self.ckpt, self.system_id + 1, db, db, "0/1000000")
        r = self.status(cfg, expect=EXIT_UNHEALTHY)
        self.assertIn("comes from another server: system identifier "
                      f"{self.system_id + 1}, the server's is {self.system_id}", r.stderr)
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertEqual(st["checkpoint"]["state"], "mismatch")

        write_checkpoint(self.ckpt, self.system_id, db, "another_slot", "0/1000000")
        st = self.status_json(cfg, expect=EXIT_UNHEALTHY)
        self.assertEqual(st["checkpoint"]["state"], "mismatch")
        self.assertEqual(st["problems"], [f'checkpoint "{self.ckpt}" belongs to slot '
                                          f'"another_slot", not "{db}"'])

    def test_wrong_password(self):
        db, _ = self.prepare(setup=False)
        cfg = self.write_config({"source.dsn": self.pg.dsn(dbname=db, user=self.pg.app_user,
                                                            password="Bad-Pass-123")})
        r = run_pgcdc(["status", "-c", cfg])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("password authentication failed", r.stderr)
        self.assertNotIn("Bad-Pass-123", r.stdout + r.stderr)
        r = run_pgcdc(["status", "-c", cfg, "--json"])
        self.assertEqual(r.returncode, 1, r)
        st = json.loads(r.stdout)
        self.assertFalse(st["healthy"])
        self.assertEqual(st["error"]["code"], "PGCONN")
        self.assertIn("password=********", st["error"]["detail"])
        self.assertNotIn("Bad-Pass-123", r.stdout + r.stderr)

    # ------------------------------------------------------------ healthy

    def test_healthy_text(self):
        db, cfg = self.prepare()
        r = self.status(cfg)
        out = r.stdout
        self.assertIn("password=********", out)
        self.assertIn(f'replication slot "{db}":\n  state:               inactive\n', out)
        self.assertIn("  plugin:              pgoutput\n", out)
        self.assertIn(f"  database:            {db}\n", out)
        self.assertIn(f'publication "{db}":\n  tables:              ALL TABLES\n', out)
        self.assertIn("replica identity:      ok", out)
        self.assertIn(f'checkpoint "{self.ckpt}":\n  state:               absent', out)
        self.assertIn(f"system identifier {self.system_id}", out)
        # what pgcdc asks this server's pgoutput for: messages from PostgreSQL 14 on
        self.assertIn("pgoutput:              proto_version 1, logical decoding messages "
                      + ("on\n" if self.pg.version >= 14 else
                         "off (PostgreSQL 14 and later send them)\n"), out)
        self.assertTrue(out.rstrip().endswith("status: healthy"), out)
        self.assertEqual(r.stderr, "")

    def test_json_fields_and_lag(self):
        pg = self.pg
        db, cfg = self.prepare()
        st = self.status_json(cfg)
        self.assertTrue(st["healthy"])
        self.assertEqual(st["problems"], [])
        slot = pg.slot(db)
        s = st["slot"]
        self.assertEqual((s["name"], s["exists"], s["active"], s["active_pid"], s["plugin"],
                          s["database"], s["type"]),
                         (db, True, False, None, "pgoutput", db, "logical"))
        self.assertEqual(s["restart_lsn"], slot["restart_lsn"])
        self.assertEqual(s["confirmed_flush_lsn"], slot["confirmed_flush_lsn"])
        self.assertEqual(s["wal_status"], "reserved")
        self.assertIsInstance(s["retained_wal_bytes"], int)
        self.assertEqual(st["publication"]["all_tables"], True)
        self.assertEqual(st["publication"]["published_tables"], ["public.t"])
        self.assertEqual(st["publication"]["via_root"], False)
        self.assertEqual(st["replica_identity_problems"], [])
        self.assertEqual(st["checkpoint"], {"path": self.ckpt, "state": "absent"})
        self.assertEqual(st["source"]["database"], db)
        self.assertEqual(st["source"]["system_identifier"], str(self.system_id))
        self.assertEqual(st["source"]["pgoutput_proto_version"], 1)
        self.assertEqual(st["source"]["pgoutput_messages"], pg.version >= 14)
        self.assertNotIn(pg.app_password, st["source"]["dsn"])

        # WAL written after the slot's position is retained and counts as lag
        pg.sql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g",
               dbname=db)
        pg.flush_wal()  # written, not only inserted (synchronous_commit is off)
        current = pg.current_lsn()
        st = self.status_json(cfg)
        s = st["slot"]
        written = lsn_int(current) - lsn_int(slot["confirmed_flush_lsn"])
        self.assertGreater(written, 100000)
        self.assertGreaterEqual(s["lag_bytes"], written)
        self.assertGreaterEqual(s["retained_wal_bytes"], s["lag_bytes"])
        self.assertEqual(s["retained_wal_bytes"] - s["lag_bytes"],
                         lsn_int(slot["confirmed_flush_lsn"]) - lsn_int(slot["restart_lsn"]))
        r = self.status(cfg)
        self.assertRegex(r.stdout, r"retained WAL: +\d+\.\d [kM]B \(\d+ bytes\)")

    def test_valid_checkpoint_is_shown(self):
        db, cfg = self.prepare()
        lsn = self.pg.slot(db)["confirmed_flush_lsn"]
        write_checkpoint(self.ckpt, self.system_id, db, db, lsn, written_at_ms=1700000000123)
        r = self.status(cfg)
        self.assertIn(f"  state:               ok\n  lsn:                 {lsn}\n", r.stdout)
        self.assertIn("  written at:          2023-11-14T22:13:20.123Z", r.stdout)
        st = self.status_json(cfg)
        self.assertTrue(st["healthy"])
        self.assertEqual(st["checkpoint"]["state"], "ok")
        self.assertEqual(st["checkpoint"]["lsn"], lsn)
        self.assertEqual(st["checkpoint"]["slot"], db)
        self.assertEqual(st["checkpoint"]["database"], db)
        self.assertEqual(st["checkpoint"]["system_identifier"], str(self.system_id))
        self.assertEqual(st["checkpoint"]["written_at"], "2023-11-14T22:13:20.123Z")

    def test_active_slot_shows_its_pid(self):
        db, cfg = self.prepare()
        conn = psycopg2.connect(self.pg.dsn(dbname=db),
                                connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self.addCleanup(conn.close)
        conn.cursor().start_replication(slot_name=db, decode=False, options={
            "proto_version": "1", "publication_names": db})
        pid = wait_until(lambda: (self.pg.slot(db) or {}).get("active_pid"), timeout=10,
                         message="slot to become active")
        r = self.status(cfg)
        self.assertIn(f"  state:               active (pid {pid})", r.stdout)
        st = self.status_json(cfg)
        self.assertEqual((st["slot"]["active"], st["slot"]["active_pid"]), (True, pid))

    def test_replica_identity_problem_and_table_list(self):
        pg = self.pg
        db, cfg = self.prepare(setup=False, tables='CREATE TABLE t (id int PRIMARY KEY); '
                               'CREATE TABLE "Log ""2024""" (line text)')
        cfg = self.write_config({"source.dsn": pg.app_dsn(dbname=db), "slot.name": db,
                                 "publication.name": db, "checkpoint.path": self.ckpt,
                                 "publication.tables": 't, "Log ""2024"""'})
        run_pgcdc(["setup", "-c", cfg], check=0)
        r = self.status(cfg)
        self.assertIn('  tables:              public."Log ""2024""", public.t', r.stdout)
        self.assertIn("replica identity:      1 table cannot produce keyed updates and deletes",
                      r.stdout)
        self.assertIn('    fix: ALTER TABLE public."Log ""2024""" REPLICA IDENTITY FULL;', r.stdout)
        st = self.status_json(cfg)
        self.assertTrue(st["healthy"])
        self.assertEqual(st["publication"]["all_tables"], False)
        self.assertEqual(st["publication"]["tables"], ['public."Log ""2024"""', "public.t"])
        self.assertEqual(st["replica_identity_problems"], [{
            "table": 'public."Log ""2024"""',
            "reason": "no primary key and REPLICA IDENTITY DEFAULT",
            "fix": 'ALTER TABLE public."Log ""2024""" REPLICA IDENTITY FULL;'}])
        self.assertEqual(st["warnings"],
                         ["1 published table cannot produce keyed updates and deletes"])


if __name__ == "__main__":
    pgcdc_test.main()
