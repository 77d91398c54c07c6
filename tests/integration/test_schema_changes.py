"""test_schema_changes.py - DDL while streaming: events carry the new shape, nothing skipped, each change logged once."""

import json
import os

import pgcdc_test
from pgcdc_test import TestCase, consume_all


def in_order(msgs):
    """Messages of several partitions in source order, by their position headers."""
    def pos(m):
        h = dict(m["headers"])
        return (pgcdc_test.lsn_int(h["pgcdc.lsn"].decode()), int(h["pgcdc.ordinal"]))
    return sorted(msgs, key=pos)


def value(m):
    return json.loads(m["value"]) if m["value"] is not None else None


class SchemaChangeTest(TestCase):
    def setUp(self):
        super().setUp()
        self.pg = self.pg_cluster()
        self.kafka = self.broker()

    def config(self, **extra):
        d = self.tmpdir()
        settings = {
            "source.dsn": self.pg.dsn(),
            "checkpoint.path": os.path.join(d, "pgcdc.checkpoint"),
            "kafka.bootstrap.servers": self.kafka.bootstrap,
            "topic.prefix": "db",
        }
        settings.update(extra)
        return self.write_config(settings)

    def drain(self, cfg):
        self.pg.flush_wal()
        end = self.pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")
        r = pgcdc_test.run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_ddl_mid_stream(self):
        pg = self.pg
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, a text, b int)")
        pg.sql("CREATE TABLE other (id int PRIMARY KEY)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE t")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        cfg = self.config()
        pg.sql("INSERT INTO t VALUES (1, 'one', 1)")
        pg.sql("ALTER TABLE t ADD COLUMN c text DEFAULT 'new'")
        pg.sql("INSERT INTO t VALUES (2, 'two', 2, 'cee')")
        pg.sql("ALTER TABLE t DROP COLUMN b")
        pg.sql("INSERT INTO t VALUES (3, 'three', 'x')")
        pg.sql("ALTER TABLE t ALTER COLUMN a TYPE int USING length(a)")
        pg.sql("INSERT INTO t VALUES (4, 44, 'y')")
        pg.sql("ALTER TABLE t RENAME COLUMN c TO d")
        pg.sql("UPDATE t SET d = 'renamed' WHERE id = 4")
        pg.sql("ALTER PUBLICATION pgcdc ADD TABLE other")
        pg.sql("INSERT INTO other VALUES (7)")
        pg.sql("ALTER TABLE t RENAME TO t2")
        pg.sql("INSERT INTO t2 VALUES (5, 55, 'z')")
        r = self.drain(cfg)

        t = [value(m)["after"] for m in in_order(consume_all(
            self.kafka.bootstrap, ["db.public.t"], expect_count=5, timeout=30))]
        self.assertEqual(t, [
            {"id": 1, "a": "one", "b": 1},
            {"id": 2, "a": "two", "b": 2, "c": "cee"},
            {"id": 3, "a": "three", "c": "x"},
            {"id": 4, "a": 44, "c": "y"},
            {"id": 4, "a": 44, "d": "renamed"},
        ])
        other = consume_all(self.kafka.bootstrap, ["db.public.other"], expect_count=1, timeout=30)
        self.assertEqual([value(m)["after"] for m in other], [{"id": 7}])
        renamed = consume_all(self.kafka.bootstrap, ["db.public.t2"], expect_count=1, timeout=30)
        self.assertEqual([value(m)["after"] for m in renamed], [{"id": 5, "a": 55, "d": "z"}])
        # every shape change logged once: add, drop, type, rename column, rename table
        changes = [l for l in r.stderr.splitlines() if "changed shape" in l]
        self.assertEqual(len(changes), 5, r.stderr)

    def test_crash_then_rename_drop_or_unpublish_repeats_nothing(self):
        """Changes delivered but not checkpointed, then pgcdc killed, then the table renamed
        (or dropped, or removed from the publication): the replay writes them under the
        name the table had, a topic the restart did not read from the publication. They
        must not be written twice."""
        self.pg.sql("CREATE TABLE ra (id int PRIMARY KEY)")
        self.pg.sql("CREATE TABLE rb (id int PRIMARY KEY)")
        self.pg.sql("CREATE TABLE rc (id int PRIMARY KEY)")
        self.pg.sql("CREATE PUBLICATION pgcdc FOR TABLE ra, rb, rc")
        self.pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        cfg = self.config(**{"checkpoint.interval": "1h"})
        p = self.start_pgcdc(["start", "-c", cfg])
        p.wait_for_output(r"streaming from slot", timeout=60)
        for t in ("ra", "rb", "rc"):
            self.pg.sql(f"INSERT INTO {t} SELECT generate_series(1, 5)")
        topics = ["db.public.ra", "db.public.rb", "db.public.rc"]
        pgcdc_test.wait_until(
            lambda: len(consume_all(self.kafka.bootstrap, topics, timeout=10,
                                    expect_count=15)) >= 15,
            timeout=60, message="15 inserts in Kafka")
        self.assertEqual(p.kill(), -9)
        self.pg.sql("ALTER TABLE ra RENAME TO ra_renamed")
        self.pg.sql("ALTER PUBLICATION pgcdc DROP TABLE rb")
        self.pg.sql("DROP TABLE rc")
        self.drain(cfg)
        msgs = consume_all(self.kafka.bootstrap, topics + ["db.public.ra_renamed"], timeout=20)
        per = {}
        for m in msgs:
            per[m["topic"]] = per.get(m["topic"], 0) + 1
        self.assertEqual(per, {"db.public.ra": 5, "db.public.rb": 5, "db.public.rc": 5})

    def test_partitioned_table_via_root(self):
        pg = self.pg
        pg.sql("CREATE TABLE m (id int, region text, PRIMARY KEY (id, region)) "
               "PARTITION BY LIST (region)")
        pg.sql("CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu')")
        pg.sql("CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us')")
        cfg_root = self.config(**{"publication.name": "proot", "slot.name": "sroot",
                                  "publication.tables": "public.m",
                                  "publication.via_root": "true", "topic.prefix": "root"})
        cfg_leaf = self.config(**{"publication.name": "pleaf", "slot.name": "sleaf",
                                  "publication.tables": "public.m", "topic.prefix": "leaf"})
        for cfg in (cfg_root, cfg_leaf):
            r = pgcdc_test.run_pgcdc(["setup", "-c", cfg])
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        pg.sql("INSERT INTO m VALUES (1, 'eu'), (2, 'us')")
        pg.sql("UPDATE m SET id = 3 WHERE id = 2")
        self.drain(cfg_root)
        self.drain(cfg_leaf)
        root = consume_all(self.kafka.bootstrap, ["root.public.m"], expect_count=5, timeout=30)
        self.assertEqual(sorted(value(m)["source"]["table"] for m in root if m["value"]),
                         ["m", "m", "m", "m"])
        eu = consume_all(self.kafka.bootstrap, ["leaf.public.m_eu"], expect_count=1, timeout=30)
        us = in_order(consume_all(self.kafka.bootstrap, ["leaf.public.m_us"], expect_count=4,
                                  timeout=30))
        self.assertEqual([value(m)["after"] for m in eu], [{"id": 1, "region": "eu"}])
        self.assertEqual([value(m)["op"] if m["value"] else "tombstone" for m in us],
                         ["c", "d", "tombstone", "c"])


if __name__ == "__main__":
    pgcdc_test.main()
