"""test_setup.py - pgcdc setup: server checks with their fixes, idempotent creation, --dry-run."""

import itertools

import pgcdc_test
from pgcdc_test import PgCluster, TestCase, conninfo, free_port, run_pgcdc

_ids = itertools.count(1)


def new_db(pg, prefix="setup"):
    """A fresh database on pg; returns its name (also used for the slot and publication)."""
    name = f"{prefix}_{next(_ids)}"
    pg.sql(f"CREATE DATABASE {name}")
    return name


class SetupTestCase(TestCase):
    def config(self, dsn, db, **settings):
        cfg = {"source.dsn": dsn, "slot.name": db, "publication.name": db,
               "checkpoint.path": "/nonexistent/pgcdc.checkpoint"}
        cfg.update({k.replace("_", ".", 1): v for k, v in settings.items()})
        return self.write_config(cfg)

    def assertNothingCreated(self, pg, db):
        self.assertEqual(pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 0)
        self.assertIsNone(pg.slot(db))


class ServerSettingFailures(SetupTestCase):
    """Checks that need a server started with particular settings (failure cases first)."""

    def test_wal_level_replica(self):
        pg = self.pg_cluster(settings={"wal_level": "replica"})
        db = new_db(pg)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("FAILED  wal_level", r.stdout)
        self.assertIn('wal_level is "replica": logical decoding needs "logical"', r.stderr)
        self.assertIn("hint: run ALTER SYSTEM SET wal_level = logical;", r.stderr)
        self.assertIn("restart the server", r.stderr)
        self.assertNotIn(pg.app_password, r.stdout + r.stderr)
        self.assertNothingCreated(pg, db)
        # status says the same
        r = run_pgcdc(["status", "-c", self.config(pg.app_dsn(dbname=db), db)])
        self.assertEqual(r.returncode, 5, r)
        self.assertIn('unhealthy: wal_level is "replica": logical decoding needs "logical"',
                      r.stderr)

    def test_no_free_replication_slot(self):
        pg = self.pg_cluster(settings={"max_replication_slots": 1})
        pg.sql("SELECT pg_create_logical_replication_slot('someone_else', 'test_decoding')")
        db = new_db(pg)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("FAILED  replication slots", r.stdout)
        self.assertIn("no free replication slot: 1 of max_replication_slots = 1 in use",
                      r.stderr)
        self.assertIn("pg_drop_replication_slot", r.stderr)
        self.assertIn("ALTER SYSTEM SET max_replication_slots", r.stderr)
        self.assertNothingCreated(pg, db)


    def test_slot_failure_undoes_the_publication(self):
        """The slot cannot be made after the publication was (here another session takes
        the slot's name in between: an event trigger on CREATE PUBLICATION makes a
        physical slot of that name). setup must not leave the publication behind."""
        pg = self.pg_cluster()
        db = new_db(pg)
        pg.sql(f"""CREATE FUNCTION take_slot() RETURNS event_trigger LANGUAGE plpgsql AS $$
                   BEGIN PERFORM pg_create_physical_replication_slot('{db}'); END $$""",
               dbname=db)
        pg.sql("CREATE EVENT TRIGGER take_slot ON ddl_command_end "
               "WHEN TAG IN ('CREATE PUBLICATION') EXECUTE FUNCTION take_slot()", dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.dsn(dbname=db), db)])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("already exists", r.stderr)
        self.assertIn(f'setup dropped the publication "{db}" it had just created', r.stderr)
        self.assertEqual(pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 0)


class SetupChecks(SetupTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())

    def test_role_without_replication(self):
        pg = self.pg
        db = new_db(pg)
        pg.create_role("norepl", password="norepl-pw", replication=False)
        pg.sql("CREATE TABLE t (id int PRIMARY KEY)", dbname=db)
        pg.sql("GRANT SELECT ON t TO norepl", dbname=db)
        dsn = pg.dsn(dbname=db, user="norepl", password="norepl-pw")
        r = run_pgcdc(["setup", "-c", self.config(dsn, db, publication_tables="t")])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("FAILED  role", r.stdout)
        self.assertIn('role "norepl" has neither the REPLICATION attribute nor SUPERUSER',
                      r.stderr)
        self.assertIn("ALTER ROLE norepl REPLICATION;", r.stderr)
        self.assertNotIn("norepl-pw", r.stdout + r.stderr)
        self.assertNothingCreated(pg, db)

    def test_role_cannot_read_published_table(self):
        pg = self.pg
        db = new_db(pg)
        pg.create_role("noread", password="noread-pw", replication=True)
        pg.sql("CREATE TABLE readable (id int PRIMARY KEY); CREATE TABLE secret (id int "
               "PRIMARY KEY); GRANT SELECT ON readable TO noread", dbname=db)
        dsn = pg.dsn(dbname=db, user="noread", password="noread-pw")
        r = run_pgcdc(["setup", "-c", self.config(dsn, db, publication_tables="readable, secret")])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("FAILED  table privileges", r.stdout)
        self.assertIn('role "noread" cannot read 1 of the published tables: public.secret',
                      r.stderr)
        self.assertIn("GRANT SELECT ON public.secret TO noread;", r.stderr)
        self.assertNothingCreated(pg, db)

    def test_missing_table_in_configuration(self):
        pg = self.pg
        db = new_db(pg)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db,
                                                   publication_tables="public.nope")])
        self.assertEqual(r.returncode, 2, r)
        self.assertIn('table "public.nope" of publication.tables does not exist', r.stderr)
        self.assertNothingCreated(pg, db)

    def test_wrong_password(self):
        pg = self.pg
        db = new_db(pg)
        dsn = pg.dsn(dbname=db, user=pg.app_user, password="Wr0ng-Pa55word")
        r = run_pgcdc(["setup", "-c", self.config(dsn, db)])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot connect to postgresql", r.stderr)
        self.assertIn("password authentication failed", r.stderr)
        self.assertIn("hint: check the user and password", r.stderr)
        self.assertIn("password=********", r.stdout + r.stderr)
        self.assertNotIn("Wr0ng-Pa55word", r.stdout + r.stderr)
        self.assertNothingCreated(pg, db)

    def test_server_not_running(self):
        dsn = conninfo(host="127.0.0.1", port=free_port(), dbname="postgres", user="x",
                       password="Unseen-Secret", connect_timeout=5)
        r = run_pgcdc(["setup", "-c", self.config(dsn, "nothing")])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot connect to postgresql", r.stderr)
        self.assertIn("Connection refused", r.stderr)
        self.assertIn("is the server running", r.stderr)
        self.assertNotIn("Unseen-Secret", r.stdout + r.stderr)

    def test_existing_publication_with_other_tables_is_reported(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); "
               f"CREATE PUBLICATION {db} FOR TABLE a", dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db,
                                                   publication_tables="a,b")])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(f'publication "{db}" exists with other tables than the configuration',
                      r.stderr)
        self.assertIn("publication has tables: public.a; publication.tables asks for tables: "
                      "public.a, public.b", r.stderr)
        self.assertIn(f"ALTER PUBLICATION {db} SET TABLE public.a, public.b;", r.stderr)
        # not changed, and no slot created either
        self.assertEqual(pg.sql("SELECT tablename FROM pg_publication_tables", dbname=db),
                         [("a",)])
        self.assertIsNone(pg.slot(db))

    def test_existing_all_tables_publication_differs_from_table_list(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql(f"CREATE TABLE a (id int PRIMARY KEY); CREATE PUBLICATION {db} FOR ALL TABLES",
               dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db,
                                                   publication_tables="a")])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("publication has ALL TABLES; publication.tables asks for tables: public.a",
                      r.stderr)
        self.assertTrue(pg.sql_one(f"SELECT puballtables FROM pg_publication WHERE pubname = "
                                   f"'{db}'", dbname=db))

    def test_slot_with_other_plugin_is_reported(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql(f"SELECT pg_create_logical_replication_slot('{db}', 'test_decoding')", dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(f'replication slot "{db}" exists with output plugin "test_decoding", '
                      'pgcdc needs "pgoutput"', r.stderr)
        self.assertIn("use another slot.name", r.stderr)
        self.assertEqual(pg.slot(db)["plugin"], "test_decoding")

    def test_slot_in_other_database_is_reported(self):
        pg = self.pg
        db, other = new_db(pg), new_db(pg)
        pg.sql(f"SELECT pg_create_logical_replication_slot('{db}', 'pgoutput')", dbname=other)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(f'replication slot "{db}" exists in database "{other}", not in "{db}"',
                      r.stderr)
        self.assertEqual(pg.slot(db)["database"], other)


class SetupCreates(SetupTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())

    def test_fresh_server_gets_publication_and_slot(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql("CREATE TABLE orders (id int PRIMARY KEY, total numeric)", dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)], check=0)
        for line in (f"ok      server version: {pg.version}.", "ok      wal_level: logical",
                     "ok      replication slots: ", "ok      wal senders: 0 of 20",
                     "ok      replication connection: accepted",
                     f'created publication "{db}" FOR ALL TABLES',
                     f'created replication slot "{db}" (plugin pgoutput, database "{db}") at '):
            self.assertIn(line, r.stdout)
        self.assertNotIn(pg.app_password, r.stdout + r.stderr)
        self.assertEqual(pg.sql(f"SELECT puballtables, pubinsert, pubupdate, pubdelete FROM "
                                f"pg_publication WHERE pubname = '{db}'", dbname=db),
                         [(True, True, True, True)])
        slot = pg.slot(db)
        self.assertEqual((slot["slot_type"], slot["plugin"], slot["database"], slot["temporary"]),
                         ("logical", "pgoutput", db, False))

    def test_table_list_and_via_root(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql('CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); '
               'CREATE TABLE "Mixed Case" (id int PRIMARY KEY); CREATE TABLE other (id int '
               'PRIMARY KEY); CREATE TABLE m (id int PRIMARY KEY, d date) PARTITION BY RANGE (id);'
               ' CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (0) TO (10)', dbname=db)
        cfg = self.config(pg.app_dsn(dbname=db), db,
                          publication_tables=' sales.orders, "Mixed Case" ,m',
                          publication_via_root=True)
        r = run_pgcdc(["setup", "-c", cfg], check=0)
        self.assertIn(f'created publication "{db}" for the configured tables', r.stdout)
        self.assertEqual(
            pg.sql("SELECT c.oid::regclass::text FROM pg_publication_rel pr JOIN pg_class c ON "
                   "c.oid = pr.prrelid ORDER BY 1", dbname=db),
            [('"Mixed Case"',), ("m",), ("sales.orders",)])
        self.assertTrue(pg.sql_one("SELECT pubviaroot FROM pg_publication", dbname=db))
        # same list in another order and spelling: still the same publication
        cfg2 = self.config(pg.app_dsn(dbname=db), db,
                           publication_tables='public.m, "Mixed Case", SALES.ORDERS',
                           publication_via_root=True)
        r = run_pgcdc(["setup", "-c", cfg2], check=0)
        self.assertIn(f'publication "{db}" already exists', r.stdout)
        # via_root differs from the configuration: reported
        cfg3 = self.config(pg.app_dsn(dbname=db), db,
                           publication_tables='m, "Mixed Case", sales.orders')
        r = run_pgcdc(["setup", "-c", cfg3])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("publish_via_partition_root = true but publication.via_root is false",
                      r.stderr)

    def test_setup_twice_is_harmless(self):
        pg = self.pg
        db = new_db(pg)
        cfg = self.config(pg.app_dsn(dbname=db), db)
        run_pgcdc(["setup", "-c", cfg], check=0)
        before = pg.slot(db)
        r = run_pgcdc(["setup", "-c", cfg], check=0)
        self.assertIn(f'publication "{db}" already exists', r.stdout)
        self.assertIn(f'replication slot "{db}" already exists', r.stdout)
        self.assertRegex(r.stdout, r"ok      replication slots: \d+ of 20 used \(including this slot\)")
        after = pg.slot(db)
        self.assertEqual(before["restart_lsn"], after["restart_lsn"])
        self.assertEqual(pg.sql_one("SELECT count(*) FROM pg_publication", dbname=db), 1)

    def test_dry_run_prints_sql_and_changes_nothing(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql("CREATE TABLE t (id int PRIMARY KEY)", dbname=db)
        cfg = self.config(pg.app_dsn(dbname=db), db, publication_tables="t")
        r = run_pgcdc(["setup", "-c", cfg, "--dry-run"], check=0)
        self.assertIn(f'CREATE PUBLICATION "{db}" FOR TABLE public.t;', r.stdout)
        self.assertIn(f"SELECT lsn FROM pg_create_logical_replication_slot('{db}', 'pgoutput');",
                      r.stdout)
        self.assertIn("nothing was changed", r.stdout)
        self.assertNothingCreated(pg, db)
        # the printed SQL is what a DBA can run by hand
        sql = [l for l in r.stdout.splitlines() if l.startswith(("CREATE", "SELECT lsn"))]
        for stmt in sql:
            pg.sql(stmt, dbname=db)
        r = run_pgcdc(["setup", "-c", cfg, "--dry-run"], check=0)
        self.assertIn(f'-- publication "{db}" already exists', r.stdout)
        self.assertIn(f'-- replication slot "{db}" already exists', r.stdout)

    def test_replica_identity_problems_are_warnings_with_fixes(self):
        pg = self.pg
        db = new_db(pg)
        pg.sql("CREATE TABLE keyed (id int PRIMARY KEY); "
               "CREATE TABLE nokey (v text); "
               "CREATE TABLE uniq (code text NOT NULL UNIQUE, v text); "
               "CREATE TABLE nullable_uniq (code text UNIQUE); "
               "CREATE TABLE nothing (id int PRIMARY KEY); "
               "ALTER TABLE nothing REPLICA IDENTITY NOTHING; "
               "CREATE TABLE full_ri (v text); ALTER TABLE full_ri REPLICA IDENTITY FULL",
               dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)], check=0)
        out = r.stdout
        self.assertIn("warning: table public.nokey cannot produce keyed updates and deletes: "
                      "no primary key and REPLICA IDENTITY DEFAULT", out)
        self.assertIn("fix: ALTER TABLE public.nokey REPLICA IDENTITY FULL;", out)
        self.assertIn("fix: ALTER TABLE public.uniq REPLICA IDENTITY USING INDEX uniq_code_key;",
                      out)
        self.assertIn("fix: ALTER TABLE public.nullable_uniq REPLICA IDENTITY FULL;", out)
        self.assertIn("warning: table public.nothing cannot produce keyed updates and deletes: "
                      "REPLICA IDENTITY NOTHING", out)
        self.assertIn("fix: ALTER TABLE public.nothing REPLICA IDENTITY DEFAULT;", out)
        self.assertNotIn("public.keyed", out)
        self.assertNotIn("public.full_ri", out)
        self.assertIn("setup complete", out)
        self.assertIsNotNone(pg.slot(db))
        # the suggested statements fix it
        for line in out.splitlines():
            if "fix: " in line:
                pg.sql(line.split("fix: ", 1)[1], dbname=db)
        r = run_pgcdc(["setup", "-c", self.config(pg.app_dsn(dbname=db), db)], check=0)
        self.assertNotIn("warning:", r.stdout)
        self.assertIn("ok      replica identity", r.stdout)


if __name__ == "__main__":
    pgcdc_test.main()
