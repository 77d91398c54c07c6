"""test_sql_scripts.py - sql/setup.sql, teardown.sql, monitoring.sql on a real server, and the
least-privilege role they create running pgcdc status and streaming."""

import itertools
import json
import os
import select
import subprocess
import time

import psycopg2
import psycopg2.extras

import pgcdc_test
from pgcdc_test import PgCluster, TestCase, run_pgcdc, wait_until
from pgcdc_test.pg import PG_BINDIR

SQL_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "sql"))
_ids = itertools.count(1)


def psql(dsn, script, **variables):
    """Run psql -f sql/SCRIPT with -v NAME=VALUE; returns the CompletedProcess."""
    argv = [os.path.join(PG_BINDIR, "psql"), "-X", "-d", dsn, "-f",
            os.path.join(SQL_DIR, script)]
    for k, v in variables.items():
        argv += ["-v", f"{k}={v}"]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


class SqlScriptsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())

    def new_db(self):
        db = f"sqls_{next(_ids)}"
        self.pg.sql(f"CREATE DATABASE {db}")
        self.pg.sql("CREATE TABLE orders (id int PRIMARY KEY, total numeric); "
                    "CREATE TABLE audit (line text); "
                    "CREATE TABLE private (id int PRIMARY KEY)", dbname=db)
        return db

    def assertPsqlOk(self, p):
        self.assertEqual(p.returncode, 0, f"--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}")

    def role_attrs(self, role):
        return self.pg.sql("SELECT rolcanlogin, rolreplication, rolsuper, rolcreatedb, "
                           "rolcreaterole FROM pg_roles WHERE rolname = %s", (role,))

    def stream_one_insert(self, dsn, db, slot, pub):
        """As dsn's role, stream from the slot and return the first pgoutput Insert message."""
        conn = psycopg2.connect(dsn,
                                connection_factory=psycopg2.extras.LogicalReplicationConnection)
        try:
            cur = conn.cursor()
            cur.start_replication(slot_name=slot, decode=False, options={
                "proto_version": "1", "publication_names": pub})
            self.pg.sql("INSERT INTO orders VALUES (42, 9.99)", dbname=db)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                msg = cur.read_message()
                if msg is None:
                    select.select([conn], [], [], 1.0)
                    continue
                if bytes(msg.payload[:1]) == b"I":
                    return bytes(msg.payload)
            self.fail("no Insert message streamed within 20s")
        finally:
            conn.close()

    def test_setup_sql_with_table_list_and_least_privilege_role(self):
        pg = self.pg
        db = self.new_db()
        role, password = f"cdc_lp_{db}", "lp-Secret-1"
        p = psql(pg.dsn(dbname=db), "setup.sql", slot=db, publication=db, role=role,
                 password=password, tables="public.orders, audit")
        self.assertPsqlOk(p)
        # the same objects pgcdc setup creates
        self.assertEqual(self.role_attrs(role), [(True, True, False, False, False)])
        self.assertEqual(pg.sql("SELECT c.relname FROM pg_publication p JOIN pg_publication_rel "
                                "r ON r.prpubid = p.oid JOIN pg_class c ON c.oid = r.prrelid "
                                "WHERE p.pubname = %s ORDER BY 1", (db,), dbname=db),
                         [("audit",), ("orders",)])
        slot = pg.slot(db)
        self.assertEqual((slot["plugin"], slot["database"], slot["slot_type"]),
                         ("pgoutput", db, "logical"))
        privs = pg.sql("SELECT c.relname, has_table_privilege(%s, c.oid, 'SELECT') FROM pg_class "
                       "c WHERE c.relname IN ('orders', 'audit', 'private') ORDER BY 1", (role,),
                       dbname=db)
        self.assertEqual(privs, [("audit", True), ("orders", True), ("private", False)])
        self.assertIn("ALTER TABLE public.audit REPLICA IDENTITY FULL;", p.stdout)
        # running it again is harmless
        p = psql(pg.dsn(dbname=db), "setup.sql", slot=db, publication=db, role=role,
                 tables="public.orders, audit")
        self.assertPsqlOk(p)
        self.assertIn("already exists", p.stdout)
        self.assertEqual(pg.sql_one("SELECT count(*) FROM pg_replication_slots WHERE "
                                    "slot_name = %s", (db,)), 1)

        # pgcdc, as the least-privilege role, finds everything in place
        cfg = self.write_config({"source.dsn": pg.dsn(dbname=db, user=role, password=password),
                                 "slot.name": db, "publication.name": db,
                                 "publication.tables": "orders, public.audit",
                                 "checkpoint.path": os.path.join(self.tmpdir(), "ckpt")})
        r = run_pgcdc(["setup", "-c", cfg], check=0)
        self.assertIn(f'publication "{db}" already exists', r.stdout)
        self.assertIn(f'replication slot "{db}" already exists', r.stdout)
        self.assertIn(f'ok      role: "{role}" REPLICATION', r.stdout)
        r = run_pgcdc(["status", "-c", cfg, "--json"], check=0)
        st = json.loads(r.stdout)
        self.assertTrue(st["healthy"], st)
        self.assertEqual(st["source"]["user"], role)
        self.assertEqual(st["publication"]["tables"], ["public.audit", "public.orders"])
        self.assertNotIn(password, r.stdout + r.stderr)

        # the role can stream from the slot
        payload = self.stream_one_insert(pg.dsn(dbname=db, user=role, password=password), db, db,
                                         db)
        self.assertIn(b"42", payload)

        # monitoring.sql, as the role
        p = psql(pg.dsn(dbname=db, user=role, password=password), "monitoring.sql", slot=db)
        self.assertPsqlOk(p)
        self.assertIn(db, p.stdout)
        self.assertIn("retained_wal_bytes", p.stdout)
        self.assertIn("(1 row)", p.stdout)

        # teardown.sql removes slot, publication and role; again is harmless
        p = psql(pg.dsn(dbname=db), "teardown.sql", slot=db, publication=db, role=role)
        self.assertPsqlOk(p)
        self.assertIsNone(pg.slot(db))
        self.assertEqual(pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 0)
        self.assertEqual(self.role_attrs(role), [])
        p = psql(pg.dsn(dbname=db), "teardown.sql", slot=db, publication=db, role=role)
        self.assertPsqlOk(p)
        self.assertIn("already absent", p.stdout + p.stderr)

    def test_setup_sql_defaults_publish_all_tables(self):
        pg = self.pg
        db = self.new_db()
        p = psql(pg.dsn(dbname=db), "setup.sql", password="pgcdc-Default-pw")
        self.assertPsqlOk(p)
        self.assertTrue(pg.sql_one("SELECT puballtables FROM pg_publication WHERE pubname = "
                                   "'pgcdc'", dbname=db))
        self.assertEqual(pg.slot("pgcdc")["plugin"], "pgoutput")
        self.assertTrue(pg.sql_one("SELECT has_table_privilege('pgcdc', 'private', 'SELECT')",
                                   dbname=db))
        cfg = self.write_config({"source.dsn": pg.dsn(dbname=db, user="pgcdc",
                                                      password="pgcdc-Default-pw"),
                                 "checkpoint.path": os.path.join(self.tmpdir(), "ckpt")})
        r = run_pgcdc(["status", "-c", cfg], check=0)
        self.assertIn("status: healthy", r.stdout)
        self.assertIn("public.audit: no primary key and REPLICA IDENTITY DEFAULT", r.stdout)
        # the role does not own the publication: pgcdc teardown says so and drops nothing
        r = run_pgcdc(["teardown", "-c", cfg, "--yes"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn('publication "pgcdc" is owned by "postgres": role "pgcdc" cannot drop it',
                      r.stderr)
        self.assertIsNotNone(pg.slot("pgcdc"))
        p = psql(pg.dsn(dbname=db), "teardown.sql", role="pgcdc")
        self.assertPsqlOk(p)
        self.assertIsNone(pg.slot("pgcdc"))
        self.assertEqual(self.role_attrs("pgcdc"), [])

    def test_setup_sql_refuses_slot_with_other_plugin(self):
        pg = self.pg
        db = self.new_db()
        pg.sql(f"SELECT pg_create_logical_replication_slot('{db}', 'test_decoding')", dbname=db)
        p = psql(pg.dsn(dbname=db), "setup.sql", slot=db, publication=db, role=f"r_{db}")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn(f'replication slot "{db}" exists with plugin "test_decoding"', p.stderr)
        self.assertEqual(pg.slot(db)["plugin"], "test_decoding")
        pg.sql(f"SELECT pg_drop_replication_slot('{db}')")
        pg.sql(f"DROP OWNED BY r_{db}; DROP ROLE r_{db}", dbname=db)

    def test_teardown_sql_refuses_active_slot(self):
        pg = self.pg
        db = self.new_db()
        self.assertPsqlOk(psql(pg.dsn(dbname=db), "setup.sql", slot=db, publication=db,
                               role=f"r_{db}"))
        conn = psycopg2.connect(pg.dsn(dbname=db),
                                connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self.addCleanup(conn.close)
        conn.cursor().start_replication(slot_name=db, decode=False, options={
            "proto_version": "1", "publication_names": db})
        pid = wait_until(lambda: (pg.slot(db) or {}).get("active_pid"), timeout=10,
                         message="slot to become active")
        p = psql(pg.dsn(dbname=db), "teardown.sql", slot=db, publication=db, role=f"r_{db}")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn(f'replication slot "{db}" is active for PID {pid}: not dropped', p.stderr)
        self.assertIsNotNone(pg.slot(db))
        conn.close()
        wait_until(lambda: not pg.slot(db)["active"], timeout=10, message="slot inactive")
        self.assertPsqlOk(psql(pg.dsn(dbname=db), "teardown.sql", slot=db, publication=db,
                               role=f"r_{db}"))
        self.assertIsNone(pg.slot(db))


if __name__ == "__main__":
    pgcdc_test.main()
