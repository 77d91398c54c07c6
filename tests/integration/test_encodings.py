"""test_encodings.py - databases that are not UTF8: LATIN1 text arrives as UTF-8, SQL_ASCII streams.

pgoutput sends text in the client encoding of the replication connection.
pgcdc asks for UTF8, so a LATIN1 database's 'café' reaches Kafka as "café"
(before, the LATIN1 byte 0xE9 became U+FFFD in JSON). A SQL_ASCII database has
no encoding to convert from: its bytes are taken as stored (valid UTF-8 exact,
other bytes U+FFFD, with a warning at start); before, the walsender failed on
the first such byte and pgcdc reconnected for ever.
"""

import json
import os

import pgcdc_test
from pgcdc_test import TestCase, consume_all, run_pgcdc


class EncodingTest(TestCase):
    def stream(self, pg, db, kafka):
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)", dbname=db)
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE t", dbname=db)
        pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (db,), dbname=db)
        cfg = self.write_config({
            "source.dsn": pg.dsn(dbname=db),
            "checkpoint.path": os.path.join(self.tmpdir(), "pgcdc.checkpoint"),
            "kafka.bootstrap.servers": kafka.bootstrap,
            "topic.prefix": db,
            "slot.name": db,
        }, name=f"{db}.conf")
        return cfg

    def drain(self, pg, db, cfg):
        end = pg.sql_one("SELECT pg_current_wal_insert_lsn()::text", dbname=db)
        r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=60)
        self.assertEqual(r.returncode, 0, r)
        return r

    def values(self, kafka, db):
        msgs = consume_all(kafka.bootstrap, f"{db}.public.t", timeout=20)
        return {json.loads(m["value"])["after"]["id"]: json.loads(m["value"])["after"]["v"]
                for m in msgs}

    def test_latin1_and_sql_ascii(self):
        pg = self.pg_cluster()
        kafka = self.broker()
        for enc in ("LATIN1", "SQL_ASCII"):
            db = f"enc_{enc.lower()}"
            pg.sql(f"CREATE DATABASE {db} ENCODING '{enc}' LC_COLLATE 'C' LC_CTYPE 'C' "
                   "TEMPLATE template0")
        cfg = self.stream(pg, "enc_latin1", kafka)
        pg.sql("INSERT INTO t VALUES (1, 'café'), (2, 'naïve Straße ½')", dbname="enc_latin1")
        self.drain(pg, "enc_latin1", cfg)
        self.assertEqual(self.values(kafka, "enc_latin1"), {1: "café", 2: "naïve Straße ½"})

        cfg = self.stream(pg, "enc_sql_ascii", kafka)
        # bytes as stored: UTF-8 'café', then a lone 0xE9 (LATIN1's é) that is not UTF-8
        pg.sql(r"INSERT INTO t VALUES (1, E'caf\xc3\xa9'), (2, 'caf' || chr(233))",
               dbname="enc_sql_ascii")
        r = self.drain(pg, "enc_sql_ascii", cfg)
        self.assertIn("database encoding is SQL_ASCII", r.stderr)
        self.assertNotIn("reconnecting", r.stderr)
        self.assertEqual(self.values(kafka, "enc_sql_ascii"), {1: "café", 2: "caf\ufffd"})


if __name__ == "__main__":
    pgcdc_test.main()
