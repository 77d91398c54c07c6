"""test_compat.py - pgcdc's messages equal Debezium's on the same WAL (tests/compat/compat.py).

Debezium's PostgreSQL connector (the release of tests/compat/pom.xml, pgoutput)
and pgcdc read two slots created at the same point over one workload; every
message is compared field by field, and anything not listed in
tests/compat/differences.txt fails the test.
"""

import unittest

import pgcdc_test
from pgcdc_test import TestCase

import test_types_mirror as tm
import compat
from compat import Differences, SameWal

TABLES = [
    # a primary key, a NOT NULL column with a default, REPLICA IDENTITY DEFAULT
    "CREATE TABLE pk (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0)",
    # REPLICA IDENTITY FULL: before images hold every column
    "CREATE TABLE full_ri (id int PRIMARY KEY, v text, n int)",
    "ALTER TABLE full_ri REPLICA IDENTITY FULL",
    # REPLICA IDENTITY USING INDEX on a unique index other than the primary key
    "CREATE TABLE pk_and_index (id int PRIMARY KEY, u int NOT NULL, v text)",
    "CREATE UNIQUE INDEX pk_and_index_u ON pk_and_index (u)",
    "ALTER TABLE pk_and_index REPLICA IDENTITY USING INDEX pk_and_index_u",
    # no primary key: REPLICA IDENTITY USING INDEX, two columns
    "CREATE TABLE index_only (a int NOT NULL, b text NOT NULL, v text)",
    "CREATE UNIQUE INDEX index_only_ab ON index_only (a, b)",
    "ALTER TABLE index_only REPLICA IDENTITY USING INDEX index_only_ab",
    # no primary key, a unique index, REPLICA IDENTITY FULL
    "CREATE TABLE full_unique (u int NOT NULL, v text)",
    "CREATE UNIQUE INDEX full_unique_u ON full_unique (u)",
    "ALTER TABLE full_unique REPLICA IDENTITY FULL",
    # no key at all (FULL, so that it can be updated and deleted)
    "CREATE TABLE no_key (v text, n int)",
    "ALTER TABLE no_key REPLICA IDENTITY FULL",
    # NOT NULL columns and defaults: what a delete's before image holds for them
    "CREATE TABLE defaults (id int PRIMARY KEY, a int NOT NULL, b text NOT NULL, "
    "c text NOT NULL DEFAULT 'zz', d int DEFAULT 7, e timestamptz NOT NULL DEFAULT now(), "
    "f numeric(5,2) NOT NULL DEFAULT 1.5, g bool NOT NULL, h date NOT NULL DEFAULT '2020-01-02', "
    "i bool NOT NULL DEFAULT false, j inet DEFAULT '10.0.0.1', k char(5) DEFAULT 'ab', "
    "l varchar(10) NOT NULL DEFAULT 'abc'::varchar(10), m bit(3) DEFAULT B'101', "
    "n int DEFAULT -3)",
    # a domain whose CHECK has a side effect: reading a default never runs it
    "CREATE SEQUENCE checked",
    "CREATE FUNCTION check_counts(text) RETURNS bool LANGUAGE sql "
    "AS $$ SELECT nextval('checked') > 0 $$",
    "CREATE DOMAIN counted AS text CHECK (check_counts(VALUE))",
    "CREATE TABLE checked_default (id int PRIMARY KEY, c counted NOT NULL DEFAULT 'x')",
    # a domain with a modifier on a FULL table (its key and typmods both from the catalog)
    "CREATE DOMAIN amount AS numeric(10,2)",
    "CREATE TABLE full_domain (id int PRIMARY KEY, a amount)",
    "ALTER TABLE full_domain REPLICA IDENTITY FULL",
    # a primary key with an INCLUDE column, which is not part of the key
    "CREATE TABLE pk_include (id int, v text, CONSTRAINT pk_include_pk PRIMARY KEY (id) "
    "INCLUDE (v))",
    # a value stored out of line (TOAST) that updates leave unchanged
    "CREATE TABLE toasted (id int PRIMARY KEY, big text, n int)",
    "ALTER TABLE toasted ALTER big SET STORAGE EXTERNAL",
]

BIG = "repeat('toast me ', 2000)"



class CompatTest(TestCase):
    ran = 0

    def setUp(self):
        super().setUp()
        CompatTest.ran += 1

    @classmethod
    def tearDownClass(cls):
        # when every case ran, every line of differences.txt must have been needed by one
        # (a difference pgcdc no longer has is taken off the list, not left to hide others)
        cases = unittest.TestLoader().getTestCaseNames(cls)
        if cls.ran == len(cases):
            d = Differences()
            if d.unused():
                raise AssertionError(f"lines of {compat.DIFFERENCES} no comparison needed: "
                                     f"{d.unused()}; take them off the list")
        super().tearDownClass()
    def test_operations_keys_and_replica_identities(self):
        run = SameWal(self, TABLES)
        run.sql(
            "INSERT INTO pk VALUES (1, 'a', 1), (2, NULL, 2), (3, 'c', 3)",
            "UPDATE pk SET v = 'b' WHERE id = 1",
            "UPDATE pk SET id = 10 WHERE id = 2",  # a key change
            "DELETE FROM pk WHERE id = 3",
            "INSERT INTO full_ri VALUES (1, 'a', 1), (2, 'b', NULL)",
            "UPDATE full_ri SET v = 'z', n = 5 WHERE id = 1",
            "UPDATE full_ri SET id = 20 WHERE id = 2",
            "DELETE FROM full_ri WHERE id = 1",
            "INSERT INTO pk_and_index VALUES (1, 100, 'a'), (2, 200, 'b')",
            "UPDATE pk_and_index SET v = 'x' WHERE id = 1",
            "UPDATE pk_and_index SET u = 201 WHERE id = 2",
            "DELETE FROM pk_and_index WHERE id = 1",
            "INSERT INTO index_only VALUES (1, 'x', 'a'), (2, 'y', 'b')",
            "UPDATE index_only SET v = 'c' WHERE a = 1",
            "UPDATE index_only SET b = 'yy' WHERE a = 2",
            "DELETE FROM index_only WHERE a = 1",
            "INSERT INTO full_unique VALUES (1, 'a'), (2, 'b')",
            "UPDATE full_unique SET v = 'c' WHERE u = 1",
            "UPDATE full_unique SET u = 3 WHERE u = 2",
            "DELETE FROM full_unique WHERE u = 1",
            "INSERT INTO no_key VALUES ('a', 1), ('b', 2)",
            "UPDATE no_key SET n = 3 WHERE v = 'a'",
            "DELETE FROM no_key WHERE v = 'b'",
            "INSERT INTO defaults (id, a, b, g) VALUES (1, 1, 'b', true)",
            "DELETE FROM defaults WHERE id = 1",
            "INSERT INTO checked_default VALUES (1, 'y')",
            "DELETE FROM checked_default WHERE id = 1",
            "INSERT INTO full_domain VALUES (1, 12.5), (2, -0.01)",
            "UPDATE full_domain SET a = 3 WHERE id = 1",
            "DELETE FROM full_domain WHERE id = 2",
            "INSERT INTO pk_include VALUES (1, 'a')",
            "UPDATE pk_include SET v = 'b' WHERE id = 1",
            "DELETE FROM pk_include WHERE id = 1",
            f"INSERT INTO toasted VALUES (1, {BIG}, 1)",
            "UPDATE toasted SET n = 2 WHERE id = 1",  # big unchanged: not in the WAL
            "DELETE FROM toasted WHERE id = 1",
            "BEGIN; INSERT INTO pk VALUES (4, 'd', 4); UPDATE pk SET n = 44 WHERE id = 4; "
            "DELETE FROM pk WHERE id = 4; COMMIT",
            # a transaction applied with a replication origin (as a subscription applies one)
            "SELECT pg_replication_origin_create('compat_origin')",
            "SELECT pg_replication_origin_session_setup('compat_origin'); BEGIN; "
            "SELECT pg_replication_origin_xact_setup('1/ABCDEF0', now()); "
            "INSERT INTO pk VALUES (5, 'from elsewhere', 5); COMMIT; "
            "SELECT pg_replication_origin_session_reset()",
            # TRUNCATE, and logical decoding messages, in and out of a transaction
            "INSERT INTO no_key VALUES ('t', 9)",
            "TRUNCATE no_key",
            "SELECT pg_logical_emit_message(true, 'compat', 'in a transaction')",
            "SELECT pg_logical_emit_message(false, 'compat', 'not in one')",
        )
        report, ours, theirs = run.compare()
        self.assertGreater(len(theirs), 30)
        self.assertFalse(report, f"pgcdc and Debezium differ:\n{report}")
        # the domain's CHECK ran for the one row the workload wrote, never for pgcdc
        self.assertEqual(run.pg.sql_one("SELECT last_value FROM checked"), 1)

    def test_identity_index_other_than_the_primary_key(self):
        # differences.txt leaves this table out of the comparison: here is why. pgoutput's
        # delete carries the identity index's columns alone, so the primary key is unknown.
        run = SameWal(self, TABLES[3:6])
        run.sql("INSERT INTO pk_and_index VALUES (1, 100, 'a')",
                "UPDATE pk_and_index SET v = 'x' WHERE id = 1",
                "DELETE FROM pk_and_index WHERE id = 1")
        _, ours, theirs = run.compare()
        topic = "pgcdc.public.pk_and_index"
        # pgcdc: every message under the identity index's key, the delete's too
        self.assertEqual([(m["key"], op(m)) for m in ours if m["topic"] == topic],
                         [({"u": 100}, "c"), ({"u": 100}, "u"), ({"u": 100}, "d"),
                          ({"u": 100}, None)])
        # Debezium: the primary key, but the delete under {"id": 0}, not the row's key
        self.assertEqual([(r["key"], op(r)) for r in theirs if r["topic"] == topic],
                         [({"id": 1}, "c"), ({"id": 1}, "u"), ({"id": 0}, "d"),
                          ({"id": 0}, None)])

    def test_snapshot(self):
        # rows written before the slots, and nothing after them but the end marker: each
        # side's snapshot reads the same rows (op r). Debezium runs after pgcdc and, its
        # slot existing already, snapshots the tables as they are then: it reads the end
        # marker as a row, where pgcdc streams it (and reads it again), so the end
        # marker's topic is left out.
        rows = ["INSERT INTO pk SELECT g, 'v' || g, g FROM generate_series(1, 50) g",
                "INSERT INTO full_domain SELECT g, g / 7.0 FROM generate_series(1, 30) g",
                "INSERT INTO pk_include SELECT g, 'i' || g FROM generate_series(1, 10) g",
                "INSERT INTO full_ri SELECT g, 'w' || g, g FROM generate_series(1, 20) g",
                "INSERT INTO no_key SELECT 'x' || g, g FROM generate_series(1, 5) g",
                "INSERT INTO defaults VALUES (1, 1, 'b', 'c', 1, '2024-01-01', 2.5, true, "
                "'2024-01-01')"]
        run = SameWal(self, TABLES + rows)
        # chunks of 7 rows: each is read with its own copy of the table's columns
        report, ours, theirs = run.compare({"snapshot.mode": "initial",
                                            "snapshot.chunk.size": 7},
                                           {"snapshot.mode": "initial"}, skip_end=True)
        self.assertGreater(sum(1 for m in theirs if op(m) == "r"), 75)
        self.assertFalse(report, f"pgcdc and Debezium differ:\n{report}")

    def types_case(self, settings=None, options=None, identity=None):
        """Every column type pgcdc maps (test_types_mirror's table): inserts, an update of
        every column, a delete; pgcdc with settings, Debezium with the same options."""
        # the columns and values differences.txt leaves out (Debezium cannot stream them)
        d = Differences()
        for c, t, vals in tm.COLUMNS:
            if c in d.columns:
                d.use("column", c)
            for v in vals:
                if (c, v) in d.values:
                    d.use("value", c, v)
        columns = [(c, t, [v for v in vals if (c, v) not in d.values])
                   for c, t, vals in tm.COLUMNS if c not in d.columns]
        columns = [c for c in columns if c[2]]
        types = {t.split("[")[0] for _, t, _ in columns}
        setup = [s for s in tm.SETUP.strip().split(";\n")
                 if not s.startswith("CREATE DOMAIN") or s.split()[2] in types]
        cols = ", ".join(f"{c} {t}" for c, t, _ in columns)
        setup.append(f"CREATE TABLE types (id int PRIMARY KEY, {cols})")
        if identity:
            setup.append(f"ALTER TABLE types REPLICA IDENTITY {identity}")
        run = SameWal(self, setup)
        names = [c for c, _, _ in columns]
        for i in range(tm.NROWS):
            vals = ", ".join(v[i % len(v)] for _, _, v in columns)
            run.sql(f"INSERT INTO types (id, {', '.join(names)}) VALUES ({i + 1}, {vals})")
        run.sql(f"INSERT INTO types (id) VALUES ({tm.NROWS + 1})")  # all NULL
        run.sql(f"UPDATE types SET ({', '.join(names)}) = (SELECT {', '.join(names)} "
                f"FROM types t2 WHERE t2.id = types.id + 1) WHERE id = 1",
                "DELETE FROM types WHERE id = 2")
        report, ours, theirs = run.compare(settings, options)
        self.assertGreater(len(theirs), tm.NROWS)
        self.assertFalse(report, f"pgcdc and Debezium differ:\n{report}")

    def test_every_type_defaults(self):
        self.types_case()

    def test_every_type_other_modes(self):
        modes = {"decimal.handling.mode": "precise", "time.precision.mode": "connect",
                 "binary.handling.mode": "hex", "interval.handling.mode": "string",
                 "hstore.handling.mode": "map"}
        self.types_case(modes, modes)

    def test_every_type_more_modes(self):
        modes = {"decimal.handling.mode": "double",
                 "time.precision.mode": "adaptive_time_microseconds"}
        self.types_case(modes, modes)

    def test_every_type_microseconds_url_safe(self):
        modes = {"time.precision.mode": "microseconds",
                 "binary.handling.mode": "base64-url-safe"}
        self.types_case(modes, modes)

    def test_every_type_nanoseconds_bytes(self):
        modes = {"time.precision.mode": "nanoseconds", "binary.handling.mode": "bytes"}
        self.types_case(modes, modes)

    def test_every_type_isostring(self):
        modes = {"time.precision.mode": "isostring"}
        self.types_case(modes, modes)

    def test_unique_index_choice(self):
        # differences.txt leaves this table out of the comparison: here is why. Without a
        # primary key Debezium keys by the first unique index by name, even one on a
        # nullable column (rows with NULL there are not unique) or a partial one (rows
        # outside its predicate are not); pgcdc skips those, as it skips expressions
        run = SameWal(self, [
            "CREATE TABLE unique_choice (n int, p int NOT NULL, q int NOT NULL, v text)",
            "CREATE UNIQUE INDEX unique_choice_a_nullable ON unique_choice (n)",
            "CREATE UNIQUE INDEX unique_choice_b_partial ON unique_choice (p) WHERE p > 0",
            "CREATE UNIQUE INDEX unique_choice_c_expression ON unique_choice ((q + 1))",
            "CREATE UNIQUE INDEX unique_choice_d_plain ON unique_choice (q)",
            "ALTER TABLE unique_choice REPLICA IDENTITY FULL"])
        run.sql("INSERT INTO unique_choice VALUES (NULL, 2, 3, 'a'), (NULL, -1, 4, 'b')")
        _, ours, theirs = run.compare()
        topic = "pgcdc.public.unique_choice"
        self.assertEqual(sorted((m["key"] for m in ours if m["topic"] == topic),
                                key=lambda k: k["q"]), [{"q": 3}, {"q": 4}])
        # Debezium: both rows under one key, {"n": null}
        self.assertEqual([r["key"] for r in theirs if r["topic"] == topic],
                         [{"n": None}, {"n": None}])


def op(m):
    return m["value"]["op"] if m["value"] is not None else None


if __name__ == "__main__":
    pgcdc_test.main()
