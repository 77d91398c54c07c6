#!/usr/bin/python3
"""capture-fixtures.py - capture raw pgoutput messages from a throwaway PostgreSQL into test fixtures.

Starts its own PostgreSQL cluster (initdb and the server run as the `postgres`
OS user when this runs as root) in a temporary directory on a free port with
wal_level=logical, runs every scenario below against its own publication and
replication slot, reads the slot with psycopg2's LogicalReplicationConnection
(decode=False, proto_version 1, messages true) and writes one fixture per
scenario to tests/fixtures/pgoutput/<scenario>.msgs. The cluster is removed at
the end, whatever happens.

Fixture format (text, one pgoutput message per line, in stream order):

    # comment lines (scenario, server version, options, the SQL that ran)
    <wal_start_lsn> <payload as lower-case hex>

<wal_start_lsn> is the XLogData dataStart of the message in PostgreSQL's %X/%X
form; the payload is the XLogData body, starting with the message type byte.

Run with the system interpreter (psycopg2 is a Debian package):

    /usr/bin/python3 scripts/capture-fixtures.py [--out DIR] [--pgbin DIR] [scenario ...]

Commit timestamps, xids and LSNs change at every capture, so re-capturing
means regenerating and re-reviewing the golden files
(PGCDC_UPDATE_GOLDEN=1 meson test -C build pgoutput, then git diff).
"""

import argparse
import os
import pwd
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import psycopg2
import psycopg2.extras

END_PREFIX = "pgcdc-capture-end"
OPTIONS = {"proto_version": "1", "messages": "true"}

# A scenario: setup SQL (runs before the slot exists, so it is not captured),
# the publications to stream, and the steps whose changes are captured. A step
# is SQL run in autocommit mode on session "a" or ("b", sql) on a second
# session, so two transactions can interleave. Multi-statement strings without
# BEGIN run as one implicit transaction.
SCENARIOS = [
    {
        "name": "basic",
        "doc": "insert/update/delete in several transactions, interleaved sessions, "
        "a rolled back transaction and a rolled back savepoint",
        "setup": [
            "CREATE TABLE basic (id int PRIMARY KEY, name text, qty int)",
            "CREATE PUBLICATION pub_basic FOR TABLE basic",
        ],
        "pubs": "pub_basic",
        "steps": [
            "INSERT INTO basic VALUES (1, 'one', 10)",
            "INSERT INTO basic VALUES (2, 'two', 20), (3, 'three', NULL)",
            "UPDATE basic SET qty = qty + 1 WHERE id = 1",
            "DELETE FROM basic WHERE id = 2",
            "BEGIN",
            "INSERT INTO basic VALUES (4, 'rolled back', 0)",
            "ROLLBACK",
            "BEGIN",
            "INSERT INTO basic VALUES (5, 'kept', 5)",
            "SAVEPOINT s1",
            "INSERT INTO basic VALUES (6, 'rolled back to savepoint', 6)",
            "ROLLBACK TO SAVEPOINT s1",
            "UPDATE basic SET name = 'kept too' WHERE id = 5",
            "COMMIT",
            # session a starts first but commits last: b's transaction comes first
            "BEGIN",
            "INSERT INTO basic VALUES (7, 'a first, commits second', 7)",
            ("b", "BEGIN"),
            ("b", "INSERT INTO basic VALUES (8, 'b second, commits first', 8)"),
            ("b", "COMMIT"),
            "UPDATE basic SET qty = 70 WHERE id = 7",
            "COMMIT",
        ],
    },
    {
        "name": "truncate",
        "doc": "TRUNCATE of two tables, CASCADE over a foreign key, RESTART IDENTITY, both",
        "setup": [
            "CREATE TABLE tr_parent (id serial PRIMARY KEY, v text)",
            "CREATE TABLE tr_child (id serial PRIMARY KEY, parent_id int REFERENCES tr_parent)",
            "CREATE TABLE tr_a (id serial PRIMARY KEY)",
            "CREATE TABLE tr_b (id serial PRIMARY KEY)",
            "CREATE PUBLICATION pub_truncate FOR TABLE tr_parent, tr_child, tr_a, tr_b",
        ],
        "pubs": "pub_truncate",
        "steps": [
            "INSERT INTO tr_parent (v) VALUES ('p1'); INSERT INTO tr_child (parent_id) VALUES (1)",
            "INSERT INTO tr_a DEFAULT VALUES; INSERT INTO tr_b DEFAULT VALUES",
            "TRUNCATE tr_a, tr_b",
            "TRUNCATE tr_parent CASCADE",
            "TRUNCATE tr_a RESTART IDENTITY",
            "TRUNCATE tr_parent RESTART IDENTITY CASCADE",
            "BEGIN",
            "INSERT INTO tr_a DEFAULT VALUES",
            "TRUNCATE tr_b",
            "INSERT INTO tr_b DEFAULT VALUES",
            "COMMIT",
        ],
    },
    {
        "name": "messages",
        "doc": "pg_logical_emit_message: transactional and not, inside a transaction with "
        "changes, alone, rolled back, empty and non-UTF-8 content",
        "setup": [
            "CREATE TABLE msg_t (id int PRIMARY KEY)",
            "CREATE PUBLICATION pub_messages FOR TABLE msg_t",
        ],
        "pubs": "pub_messages",
        "steps": [
            "SELECT pg_logical_emit_message(false, 'nontx', 'hello, non-transactional')",
            "BEGIN",
            "INSERT INTO msg_t VALUES (1)",
            "SELECT pg_logical_emit_message(true, 'tx', 'inside a transaction')",
            "INSERT INTO msg_t VALUES (2)",
            "COMMIT",
            "SELECT pg_logical_emit_message(true, 'tx-alone', 'the only thing in its transaction')",
            "BEGIN",
            "SELECT pg_logical_emit_message(true, 'tx-rolled-back', 'never delivered')",
            "SELECT pg_logical_emit_message(false, 'nontx-in-rolled-back', 'delivered anyway')",
            "ROLLBACK",
            "SELECT pg_logical_emit_message(false, 'empty', '')",
            "SELECT pg_logical_emit_message(false, 'binary', '\\xdeadbeef00ff'::bytea)",
        ],
    },
    {
        "name": "toast",
        "doc": "NULL vs unchanged TOAST vs empty string, with DEFAULT and FULL replica identity",
        "setup": [
            "CREATE TABLE toast_t (id int PRIMARY KEY, small text, big text, note text)",
            "ALTER TABLE toast_t ALTER COLUMN big SET STORAGE EXTERNAL",
            "CREATE TABLE toast_full (id int, big text, note text)",
            "ALTER TABLE toast_full ALTER COLUMN big SET STORAGE EXTERNAL",
            "ALTER TABLE toast_full REPLICA IDENTITY FULL",
            "CREATE PUBLICATION pub_toast FOR TABLE toast_t, toast_full",
        ],
        "pubs": "pub_toast",
        "steps": [
            # big is 3000 bytes stored out of line: later updates that leave it
            # alone send it as 'u' (unchanged TOAST)
            "INSERT INTO toast_t VALUES (1, NULL, repeat('0123456789', 300), '')",
            "UPDATE toast_t SET note = 'changed' WHERE id = 1",
            "UPDATE toast_t SET small = '', note = NULL WHERE id = 1",
            "UPDATE toast_t SET big = 'short now' WHERE id = 1",
            "DELETE FROM toast_t WHERE id = 1",
            "INSERT INTO toast_full VALUES (1, repeat('abcdefghij', 300), 'n1')",
            "UPDATE toast_full SET note = 'n2' WHERE id = 1",
            "DELETE FROM toast_full WHERE id = 1",
        ],
    },
    {
        "name": "replica_identity",
        "doc": "REPLICA IDENTITY DEFAULT, FULL, USING INDEX and NOTHING (and no key at all)",
        "setup": [
            "CREATE TABLE ri_default (id int PRIMARY KEY, v text)",
            "CREATE TABLE ri_full (id int, v text)",
            "ALTER TABLE ri_full REPLICA IDENTITY FULL",
            "CREATE TABLE ri_index (id int, code text NOT NULL, v text)",
            "CREATE UNIQUE INDEX ri_index_code ON ri_index (code)",
            "ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code",
            "CREATE TABLE ri_nothing (id int PRIMARY KEY, v text)",
            "ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING",
            "CREATE TABLE ri_nokey (id int, v text)",
            "CREATE PUBLICATION pub_ri FOR TABLE ri_default, ri_full, ri_index",
            # without a replica identity only inserts can be published
            "CREATE PUBLICATION pub_ri_ins FOR TABLE ri_nothing, ri_nokey WITH (publish = 'insert')",
        ],
        "pubs": "pub_ri,pub_ri_ins",
        "steps": [
            "INSERT INTO ri_default VALUES (1, 'a')",
            "UPDATE ri_default SET v = 'b' WHERE id = 1",
            "DELETE FROM ri_default WHERE id = 1",
            "INSERT INTO ri_full VALUES (1, 'a')",
            "UPDATE ri_full SET v = 'b' WHERE id = 1",
            "DELETE FROM ri_full WHERE id = 1",
            "INSERT INTO ri_index VALUES (1, 'c1', 'a')",
            "UPDATE ri_index SET v = 'b' WHERE code = 'c1'",
            "UPDATE ri_index SET code = 'c2' WHERE code = 'c1'",
            "DELETE FROM ri_index WHERE code = 'c2'",
            "INSERT INTO ri_nothing VALUES (1, 'a')",
            "UPDATE ri_nothing SET v = 'not published' WHERE id = 1",
            "INSERT INTO ri_nokey VALUES (1, 'a')",
        ],
    },
    {
        "name": "composite_pk",
        "doc": "a two-column primary key: plain update, update of one key column, delete",
        "setup": [
            "CREATE TABLE cpk (tenant int, code text, v text, PRIMARY KEY (tenant, code))",
            "CREATE PUBLICATION pub_cpk FOR TABLE cpk",
        ],
        "pubs": "pub_cpk",
        "steps": [
            "INSERT INTO cpk VALUES (1, 'a', 'x'), (1, 'b', 'y')",
            "UPDATE cpk SET v = 'x2' WHERE tenant = 1 AND code = 'a'",
            "UPDATE cpk SET code = 'c' WHERE tenant = 1 AND code = 'b'",
            "DELETE FROM cpk WHERE tenant = 1 AND code = 'a'",
        ],
    },
    {
        "name": "pk_change",
        "doc": "updates that change the primary key, one and several rows per statement",
        "setup": [
            "CREATE TABLE pkc (id int PRIMARY KEY, v text)",
            "CREATE PUBLICATION pub_pkc FOR TABLE pkc",
        ],
        "pubs": "pub_pkc",
        "steps": [
            "INSERT INTO pkc VALUES (1, 'one'), (2, 'two')",
            "UPDATE pkc SET id = 10 WHERE id = 1",
            "UPDATE pkc SET id = id + 100, v = v || '!'",
        ],
    },
    {
        "name": "types",
        "doc": "a custom enum type and a domain (Type messages) next to common built-in types",
        "setup": [
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
            "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
            "CREATE TABLE typed (id int PRIMARY KEY, m mood, p posint, n numeric(10,2), "
            "ts timestamptz, j jsonb, b bytea, flag bool, arr int[], vc varchar(20), "
            "f8 float8, u uuid)",
            "CREATE PUBLICATION pub_types FOR TABLE typed",
        ],
        "pubs": "pub_types",
        "steps": [
            "INSERT INTO typed VALUES (1, 'happy', 7, 12345678.90, '2024-02-29 12:34:56.789+00', "
            "'{\"a\": [1, 2, {\"b\": null}]}', '\\x00ff', true, '{1,NULL,3}', 'vc', "
            "'NaN', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')",
            "UPDATE typed SET m = 'sad', n = -0.5, flag = false WHERE id = 1",
        ],
    },
    {
        "name": "unicode",
        "doc": "unicode, quotes, backslashes and control characters in names and values",
        "setup": [
            'CREATE SCHEMA "wëird ""schema"""',
            'CREATE TABLE "wëird ""schema"""."tåble ""q""" (id int PRIMARY KEY, '
            '"naïve col" text, "back\\slash" text)',
            'CREATE PUBLICATION pub_unicode FOR TABLE "wëird ""schema"""."tåble ""q"""',
        ],
        "pubs": "pub_unicode",
        "steps": [
            'INSERT INTO "wëird ""schema"""."tåble ""q""" VALUES '
            "(1, 'Grüße, 世界 🌍', 'He said \"hi\" \\ and ''bye'''), "
            "(2, E'tab\\there\\nnew line\\r\\x01\\x1f\\x7f end', ''), "
            "(3, E'\\u2028\\u2029 / </script>', NULL)",
        ],
    },
    {
        "name": "origin",
        "doc": "a transaction replayed under a replication origin (Origin message)",
        "setup": [
            "CREATE TABLE orig_t (id int PRIMARY KEY)",
            "CREATE PUBLICATION pub_origin FOR TABLE orig_t",
            "SELECT pg_replication_origin_create('upstream_a')",
        ],
        "pubs": "pub_origin",
        "steps": [
            "SELECT pg_replication_origin_session_setup('upstream_a')",
            "BEGIN",
            "SELECT pg_replication_origin_xact_setup('1/23456789', '2024-01-02 03:04:05+00')",
            "INSERT INTO orig_t VALUES (1)",
            "COMMIT",
            "SELECT pg_replication_origin_session_reset()",
            "INSERT INTO orig_t VALUES (2)",
        ],
    },
    {
        "name": "column_list",
        "doc": "a publication column list, a dropped and a generated column (all left out)",
        "setup": [
            "CREATE TABLE cl (id int PRIMARY KEY, secret text, v text)",
            "CREATE TABLE gen (id int PRIMARY KEY, gone int, v text, "
            "twice int GENERATED ALWAYS AS (id * 2) STORED, w text)",
            "ALTER TABLE gen DROP COLUMN gone",
            "CREATE PUBLICATION pub_cl FOR TABLE cl (id, v), gen",
        ],
        "pubs": "pub_cl",
        "steps": [
            "INSERT INTO cl (id, secret, v) VALUES (1, 'hidden', 'shown')",
            "UPDATE cl SET v = 'shown again', secret = 'still hidden' WHERE id = 1",
            "INSERT INTO gen (id, v, w) VALUES (21, 'v', 'w')",
        ],
    },
    {
        "name": "binary",
        "doc": "the binary option (PG14+): values in binary send format ('b' columns)",
        "setup": [
            "CREATE TABLE bin_t (id int PRIMARY KEY, t text, n int8, b bytea)",
            "CREATE PUBLICATION pub_bin FOR TABLE bin_t",
        ],
        "pubs": "pub_bin",
        "options": {"binary": "true"},
        "steps": [
            "INSERT INTO bin_t VALUES (1, 'text', 258, '\\x00ff'), (2, '', NULL, '')",
        ],
    },
    {
        "name": "sql_ascii",
        "doc": "a SQL_ASCII database: text values that are not valid UTF-8",
        "db": "sqlascii",
        "setup": [
            "CREATE TABLE latin (id int PRIMARY KEY, v text)",
            "CREATE PUBLICATION pub_latin FOR TABLE latin",
        ],
        "pubs": "pub_latin",
        "steps": [
            "INSERT INTO latin VALUES (1, E'caf\\xe9 cr\\xe8me'), (2, E'\\xff\\xfe\\xc3'), (3, E'\\xc3\\xa9 ok')",
        ],
    },
]


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def as_postgres(cmd):
    """Prefix cmd so it runs as the postgres OS user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, pgbin):
        self.pgbin = pgbin
        self.tmp = tempfile.mkdtemp(prefix="pgcdc-capture-")
        self.datadir = os.path.join(self.tmp, "data")
        self.sockdir = self.tmp
        self.port = free_port()
        self.started = False
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)

    def start(self):
        run(as_postgres([os.path.join(self.pgbin, "initdb"), "-D", self.datadir, "-U", "postgres",
                         "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]),
            stdout=subprocess.DEVNULL)
        opts = ("-c wal_level=logical -c max_replication_slots=32 -c max_wal_senders=8 "
                "-c fsync=off -c listen_addresses='' -c unix_socket_directories=%s -p %d"
                % (self.sockdir, self.port))
        run(as_postgres([os.path.join(self.pgbin, "pg_ctl"), "-D", self.datadir, "-w", "-l",
                         os.path.join(self.tmp, "server.log"), "-o", opts, "start"]),
            stdout=subprocess.DEVNULL)
        self.started = True
        self.version = self.query("postgres", "SHOW server_version")[0][0]

    def stop(self):
        if self.started:
            subprocess.run(as_postgres([os.path.join(self.pgbin, "pg_ctl"), "-D", self.datadir,
                                        "-m", "immediate", "stop"]), stdout=subprocess.DEVNULL)
            self.started = False
        shutil.rmtree(self.tmp, ignore_errors=True)

    def dsn(self, db):
        return "host=%s port=%d user=postgres dbname=%s" % (self.sockdir, self.port, db)

    def connect(self, db, **kw):
        conn = psycopg2.connect(self.dsn(db), **kw)
        if "connection_factory" not in kw:
            conn.autocommit = True
        return conn

    def query(self, db, sql):
        conn = self.connect(db)  # no "with conn": psycopg2 2.9 would open a transaction
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
        finally:
            conn.close()


def capture(cluster, sc):
    db = sc.get("db", "fixtures")
    slot = "capture_" + sc["name"]
    sessions = {"a": cluster.connect(db), "b": cluster.connect(db)}
    try:
        cur = sessions["a"].cursor()
        for sql in sc["setup"]:
            cur.execute(sql)
        cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        for step in sc["steps"]:
            who, sql = step if isinstance(step, tuple) else ("a", step)
            sessions[who].cursor().execute(sql)
        cur.execute("SELECT pg_logical_emit_message(false, %s, '')", (END_PREFIX,))
    finally:
        for c in sessions.values():
            c.close()

    options = dict(OPTIONS, publication_names=sc["pubs"], **sc.get("options", {}))
    repl = cluster.connect(db, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    msgs = []
    try:
        rcur = repl.cursor()
        rcur.start_replication(slot_name=slot, decode=False, options=options)
        deadline = time.monotonic() + 30
        while True:
            msg = rcur.read_message()
            if msg is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("scenario %s: end marker not seen in 30 s" % sc["name"])
                select.select([rcur], [], [], 1.0)
                continue
            payload = bytes(msg.payload)
            if payload[:1] == b"M" and (END_PREFIX.encode() + b"\0") in payload:
                break
            msgs.append((msg.data_start, payload))
    finally:
        repl.close()
    cluster.query(db, "SELECT pg_drop_replication_slot('%s')" % slot)
    return options, msgs


def lsn_text(lsn):
    return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)


def write_fixture(path, cluster, sc, options, msgs):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# pgoutput fixture \"%s\": %s\n" % (sc["name"], sc["doc"]))
        f.write("# captured by scripts/capture-fixtures.py from PostgreSQL %s\n" % cluster.version)
        f.write("# options: %s\n" % ", ".join("%s=%s" % kv for kv in sorted(options.items())))
        f.write("# format: <wal_start_lsn> <payload hex>, one XLogData message per line\n")
        f.write("# setup (not captured):\n")
        for sql in sc["setup"]:
            f.write("#   %s;\n" % sql)
        f.write("# captured steps (session: sql):\n")
        for step in sc["steps"]:
            who, sql = step if isinstance(step, tuple) else ("a", step)
            f.write("#   %s: %s;\n" % (who, sql))
        for lsn, payload in msgs:
            f.write("%s %s\n" % (lsn_text(lsn), payload.hex()))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "pgoutput"))
    ap.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    ap.add_argument("scenarios", nargs="*", help="names to capture (default: all)")
    args = ap.parse_args()

    known = {sc["name"] for sc in SCENARIOS}
    unknown = set(args.scenarios) - known
    if unknown:
        ap.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
    os.environ["PGTZ"] = "UTC"  # timestamptz text output is in the session time zone
    os.makedirs(args.out, exist_ok=True)

    cluster = Cluster(args.pgbin)
    try:
        cluster.start()
        cluster.query("postgres", "CREATE DATABASE fixtures")
        cluster.query("postgres", "CREATE DATABASE sqlascii TEMPLATE template0 ENCODING 'SQL_ASCII'")
        for sc in SCENARIOS:
            if args.scenarios and sc["name"] not in args.scenarios:
                continue
            options, msgs = capture(cluster, sc)
            path = os.path.join(args.out, sc["name"] + ".msgs")
            write_fixture(path, cluster, sc, options, msgs)
            print("%-18s %3d messages -> %s" % (sc["name"], len(msgs), os.path.relpath(path)))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
