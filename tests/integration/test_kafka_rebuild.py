"""test_kafka_rebuild.py - pgcdc start --endpos into Kafka, then rebuild every table from its topic.

A scripted workload (a composite key under REPLICA IDENTITY FULL, a FULL table
without a key, an insert-only table without a key, primary-key changes, deletes,
TRUNCATE, rolled-back transactions and savepoints, awkward text, NULLs and
empty strings, and one transaction of 100,000 rows) runs once; pgcdc drains it
twice, into JSON topics and into protobuf topics (one slot each). From each
set of topics the tables are rebuilt the way a consumer would (all messages of
a topic in (pgcdc.lsn, pgcdc.ordinal) order, c/u/d/t applied, tombstones
ignored) and must equal the source tables exactly.
"""

import collections
import os
import random


import pgcdc_test
from pgcdc_test import Broker, PgCluster, TestCase, run_pgcdc

import kafka_check as kc

BIG_TXN_ROWS = 100_000

# name -> (create statement, columns in order, primary key columns)
TABLES = {
    "acct": ('CREATE TABLE acct (id int PRIMARY KEY, name text, balance numeric(12,2), '
             'active boolean, "Note" varchar(300))',
             ["id", "name", "balance", "active", "Note"], ["id"]),
    "line": ("CREATE TABLE line (order_id bigint, line_no int, sku text, qty int, "
             "PRIMARY KEY (order_id, line_no))",
             ["order_id", "line_no", "sku", "qty"], ["order_id", "line_no"]),
    "full_nokey": ("CREATE TABLE full_nokey (x int, y text)", ["x", "y"], []),
    "applog": ("CREATE TABLE applog (n int, msg text)", ["n", "msg"], []),
    "bulk": ("CREATE TABLE bulk (id int PRIMARY KEY, v int, s text)", ["id", "v", "s"], ["id"]),
}
PARTITIONS = {"acct": 16, "line": 16, "full_nokey": 8, "applog": 8, "bulk": 64}

TRICKY = [
    "it's", '"double"', "say \"hi\", it's", "emoji \U0001F600\U0001F389\U0001F44D\U0001F3FD",
    "back\\slash \\\\ \\n \\x41", "line1\nline2\r\nline3", "tab\there", "", None,
    "\u00fcn\u00efc\u00f8d\u00e9 \u65e5\u672c\u8a9e \u05e2\u05d1\u05e8\u05d9\u05ea",
    '{"json": [1, "two", null]}', "NULL", "\\N", "ctrl \x01\x02\x1f\x7f", "trailing space ",
    "   ", "'", '"', "\\", "a'b\"c\\d\ne", "%s %d {} $1", "<tag attr='x'>&amp;</tag>",
    "\u2028\u2029 separators", "zero\u200bwidth", "\U0001F600" * 20, "\ufeffbom",
    "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m",
]


def text_value(rng):
    r = rng.random()
    if r < 0.55:
        return rng.choice(TRICKY)
    if r < 0.65:
        return None
    if r < 0.7:
        return ""
    n = rng.randint(1, 40)
    alphabet = "abcxyz XYZ0189'\"\\\n\t\u00e9\u4e2d\U0001F600"
    return "".join(rng.choice(alphabet) for _ in range(n))


class Workload:
    """Random transactions over the tables, as SQL text; a model of the committed keys keeps
    inserts from colliding and updates and deletes aimed at existing rows."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.acct = set()
        self.line = set()
        self.full_x = collections.Counter()
        self.next_id = 1
        self.next_order = 1
        self.changes = 0  # row changes in committed transactions (a lower bound)

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def op(self, cur, st, out):
        """Append one statement to out, updating the tentative state st; returns rows touched."""
        rng = self.rng
        m = cur.mogrify
        kind = rng.random()
        acct, line, fx = st["acct"], st["line"], st["full_x"]
        if kind < 0.20 or not acct:
            i = self.new_id()
            acct.add(i)
            bal = rng.choice([None, "0.00", "-12.50", "99999999.99",
                              f"{rng.randint(-10**6, 10**6)}.{rng.randint(0, 99):02d}"])
            out.append(m("INSERT INTO acct VALUES (%s, %s, %s, %s, %s)",
                         (i, text_value(rng), bal, rng.choice([True, False, None]),
                          text_value(rng))))
            return 1
        if kind < 0.30:
            i = rng.choice(sorted(acct))
            out.append(m('UPDATE acct SET name = %s, "Note" = %s, balance = balance + 1 '
                         "WHERE id = %s", (text_value(rng), text_value(rng), i)))
            return 1
        if kind < 0.35:  # primary-key change
            i = rng.choice(sorted(acct))
            j = self.new_id()
            acct.discard(i)
            acct.add(j)
            out.append(m("UPDATE acct SET id = %s, active = NOT active WHERE id = %s", (j, i)))
            return 1
        if kind < 0.40:
            i = rng.choice(sorted(acct))
            acct.discard(i)
            out.append(m("DELETE FROM acct WHERE id = %s", (i,)))
            return 1
        if kind < 0.55 or not line:
            o = self.next_order
            self.next_order += 1
            n = rng.randint(1, 5)
            vals = []
            for ln in range(1, n + 1):
                line.add((o, ln))
                vals.append(m("(%s, %s, %s, %s)", (o, ln, text_value(rng),
                                                   rng.choice([None, 0, rng.randint(1, 10**6)]))))
            out.append(b"INSERT INTO line VALUES " + b", ".join(vals))
            return n
        if kind < 0.62:
            o, ln = rng.choice(sorted(line))
            out.append(m("UPDATE line SET qty = coalesce(qty, 0) + 1, sku = %s "
                         "WHERE order_id = %s AND line_no = %s", (text_value(rng), o, ln)))
            return 1
        if kind < 0.65:  # several rows in one statement
            o, _ = rng.choice(sorted(line))
            n = sum(1 for k in line if k[0] == o)
            out.append(m("UPDATE line SET qty = -1 WHERE order_id = %s", (o,)))
            return n
        if kind < 0.68:  # composite primary-key change
            o, ln = rng.choice(sorted(line))
            new = (o, 1000 + self.new_id())
            line.discard((o, ln))
            line.add(new)
            out.append(m("UPDATE line SET line_no = %s WHERE order_id = %s AND line_no = %s",
                         (new[1], o, ln)))
            return 1
        if kind < 0.72:
            o, ln = rng.choice(sorted(line))
            line.discard((o, ln))
            out.append(m("DELETE FROM line WHERE order_id = %s AND line_no = %s", (o, ln)))
            return 1
        if kind < 0.84 or not fx:  # duplicates on purpose: small x range, few y values
            x = rng.randint(1, 30)
            fx[x] += 1
            out.append(m("INSERT INTO full_nokey VALUES (%s, %s)",
                         (x, rng.choice(["p", "q", "it's", None, "", "\u00e9\n\\"]))))
            return 1
        if kind < 0.88:  # one row of possibly several equal ones
            x = rng.choice(sorted(fx))
            out.append(m("UPDATE full_nokey SET y = %s WHERE ctid = (SELECT ctid FROM full_nokey "
                         "WHERE x = %s LIMIT 1)", (text_value(rng), x)))
            return 1
        if kind < 0.90:
            x = rng.choice(sorted(fx))
            n = fx[x]
            fx[x + 100] += n
            del fx[x]
            out.append(m("UPDATE full_nokey SET x = x + 100 WHERE x = %s", (x,)))
            return n
        if kind < 0.93:
            x = rng.choice(sorted(fx))
            fx[x] -= 1
            if fx[x] <= 0:
                del fx[x]
            out.append(m("DELETE FROM full_nokey WHERE ctid = (SELECT ctid FROM full_nokey "
                         "WHERE x = %s LIMIT 1)", (x,)))
            return 1
        n = rng.randint(1, 4)
        out.append(b"INSERT INTO applog VALUES " + b", ".join(
            m("(%s, %s)", (rng.randint(0, 99), text_value(rng))) for _ in range(n)))
        return n

    def transaction(self, cur):
        """Run one random transaction (sometimes rolled back, sometimes with a rolled-back
        savepoint) as one round trip."""
        rng = self.rng
        st = {"acct": set(self.acct), "line": set(self.line),
              "full_x": collections.Counter(self.full_x)}
        out = [b"BEGIN"]
        touched = 0
        for _ in range(rng.randint(1, 24)):
            touched += self.op(cur, st, out)
        if rng.random() < 0.1:  # a subtransaction that is rolled back
            sp = {"acct": set(st["acct"]), "line": set(st["line"]),
                  "full_x": collections.Counter(st["full_x"])}
            out.append(b"SAVEPOINT s1")
            for _ in range(rng.randint(1, 5)):
                self.op(cur, sp, out)
            out.append(b"ROLLBACK TO SAVEPOINT s1")
            touched += self.op(cur, st, out)
        rollback = rng.random() < 0.08
        out.append(b"ROLLBACK" if rollback else b"COMMIT")
        cur.execute(b";\n".join(out))
        if not rollback:
            self.acct, self.line, self.full_x = st["acct"], st["line"], st["full_x"]
            self.changes += touched

    def run(self, pg, transactions):
        conn = pg.connect()
        try:
            cur = conn.cursor()
            for i in range(transactions):
                self.transaction(cur)
                if i == transactions // 3:
                    cur.execute("TRUNCATE line")
                    self.line = set()
                if i == transactions // 2:
                    cur.execute("BEGIN; TRUNCATE acct, applog; ROLLBACK")  # never published
                    cur.execute("BEGIN; TRUNCATE applog; INSERT INTO applog VALUES "
                                "(1, 'after truncate'); COMMIT")
                if i == (2 * transactions) // 3:
                    # the big transaction, with changes to other tables after it
                    cur.execute(f"BEGIN; INSERT INTO bulk SELECT g, g % 1000, "
                                f"CASE WHEN g % 7 = 0 THEN NULL WHEN g % 11 = 0 THEN '' "
                                f"ELSE md5(g::text) || E'\\'\\\\\\n' END "
                                f"FROM generate_series(1, {BIG_TXN_ROWS}) g;")
                    for _ in range(5):
                        self.transaction_body_only(cur)
                    cur.execute("COMMIT")
                    self.changes += BIG_TXN_ROWS
            # touch the big table again
            cur.execute("UPDATE bulk SET v = -v, s = s || ' \U0001F600' WHERE id % 100 = 0")
            cur.execute("DELETE FROM bulk WHERE id % 97 = 0")
            cur.execute("UPDATE bulk SET id = id + 1000000 WHERE id % 1009 = 0")
            cur.execute("INSERT INTO unpublished SELECT g FROM generate_series(1, 1000) g")
        finally:
            conn.close()

    def transaction_body_only(self, cur):
        """Statements inside an already open transaction (committed by the caller)."""
        st = {"acct": self.acct, "line": self.line, "full_x": self.full_x}
        out = []
        self.changes += self.op(cur, st, out)
        cur.execute(b";\n".join(out))


class KafkaRebuildTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = cls.enterClassContext(PgCluster())
        pg = cls.pg
        for name, (ddl, _, _) in TABLES.items():
            pg.sql(ddl)
        pg.sql("ALTER TABLE full_nokey REPLICA IDENTITY FULL")
        pg.sql("ALTER TABLE line REPLICA IDENTITY FULL")  # keyed by its primary key
        pg.sql("CREATE TABLE unpublished (id int PRIMARY KEY)")
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE " + ", ".join(TABLES))
        cls.prefixes = {"json": "rj", "protobuf": "rp"}
        cls.slots = {"json": "slot_json", "protobuf": "slot_pb"}
        for slot in cls.slots.values():
            pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        topics = {f"{p}.public.{t}": PARTITIONS[t] for p in cls.prefixes.values() for t in TABLES}
        cls.kafka = cls.enterClassContext(Broker(topics=topics))
        t = kc.Timer()
        cls.workload = Workload(seed=int(os.environ.get("PGCDC_TEST_SEED", "4242")))
        cls.workload.run(pg, transactions=900)
        cls.endpos = kc.end_lsn(pg)
        print(f"\nworkload: {cls.workload.changes} committed row changes in {t():.1f}s",
              flush=True)

    def rebuild_and_compare(self, fmt):
        pg, kafka = self.pg, self.kafka
        prefix, slot = self.prefixes[fmt], self.slots[fmt]
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "slot.name": slot,
            "publication.name": "pgcdc",
            "topic.prefix": prefix,
            "format": fmt,
            "checkpoint.path": ckpt,
            "kafka.bootstrap.servers": kafka.bootstrap,
        })
        t = kc.Timer()
        r = run_pgcdc(["start", "-c", cfg, "--endpos", self.endpos], timeout=150)
        self.assertEqual(r.returncode, 0, r)
        t_run = t()

        topics = [f"{prefix}.public.{name}" for name in TABLES]
        t = kc.Timer()
        msgs, counts = kc.read_topics(kafka.bootstrap, topics, fmt)
        print(f"\n{fmt}: pgcdc --endpos took {t_run:.1f}s, consumed {len(msgs)} messages in "
              f"{t():.1f}s: {counts}", flush=True)
        by_topic = collections.defaultdict(list)
        for m in msgs:
            by_topic[m["topic"]].append(m)

        # the workload really is what the test claims
        changes = sum(1 for m in msgs if m["event"] is not None and m["event"]["op"] in "cud")
        self.assertGreaterEqual(changes - BIG_TXN_ROWS, 10_000)
        big = collections.Counter(m["lsn"] for m in by_topic[f"{prefix}.public.bulk"])
        self.assertGreaterEqual(max(big.values()), BIG_TXN_ROWS)
        ops = collections.Counter(m["op"] for m in msgs)
        for op in ("c", "u", "d", "t", "tombstone"):
            self.assertGreater(ops[op], 0, f"no {op} messages: {ops}")

        key_cols = {f"{prefix}.public.{n}": pk for n, (_, _, pk) in TABLES.items()}
        with self.subTest("rebuilt tables equal the source tables"):
            for name, (_, cols, pk) in TABLES.items():
                got, problems = kc.rebuild(by_topic[f"{prefix}.public.{name}"], cols, pk)
                want = kc.source_rows(pg, name, cols)
                self.assertEqual(problems[:10], [], f"{name}: {len(problems)} problems")
                self.assertTrue(got == want, f"{name}: {kc.diff_summary(want, got)}")
        with self.subTest("every message carries pgcdc.lsn, .ordinal, .op and .source"):
            kc.check_headers(self, msgs, kc.source_id(pg, slot))
        if fmt == "protobuf":
            with self.subTest("Position.ordinal equals the pgcdc.ordinal header"):
                kc.check_pb_ordinals(self, msgs)
        with self.subTest("(lsn, ordinal) strictly increases within each partition"):
            kc.check_partition_order(self, msgs)
        with self.subTest("no position twice"):
            kc.check_unique_positions(self, msgs)
        with self.subTest("ordinal = event ordinal * 4 + sub, events counted 0, 1, 2, ..."):
            kc.check_ordinals(self, msgs)
        with self.subTest("each delete is followed by a tombstone with the same key"):
            self.assertGreater(kc.check_tombstones(self, msgs), 0)
        with self.subTest("keys: the primary key columns (also under FULL), else null"):
            kc.check_keys(self, msgs, key_cols)
        with self.subTest("an insert-only table without a key: null keys, one partition"):
            ms = by_topic[f"{prefix}.public.applog"]
            self.assertEqual({m["key"] for m in ms}, {None})
            self.assertEqual(len({m["partition"] for m in ms}), 1)
        with self.subTest("the REPLICA IDENTITY FULL table without a key: null keys, "
                          "one partition"):
            ms = by_topic[f"{prefix}.public.full_nokey"]
            parts = collections.Counter(m["partition"] for m in ms)
            self.assertEqual({m["key"] for m in ms}, {None})
            self.assertEqual(len(parts), 1, f"messages spread over partitions {dict(parts)}; "
                             f"keys e.g. {[m['raw_key'] for m in ms[:3]]}")
        with self.subTest("nothing from the unpublished table"):
            # (asking for the topic's metadata may auto-create it: check it stays empty)
            wm = pgcdc_test.watermarks(kafka.bootstrap, f"{prefix}.public.unpublished")
            self.assertEqual(sum(h for _, h in wm.values()), 0)
        with self.subTest("checkpoint = slot's confirmed_flush_lsn, at endpos"):
            saved = kc.checkpoint_lsn(ckpt)
            self.assertIsNotNone(saved)
            self.assertEqual(kc.fmt_lsn(saved), pg.slot(slot)["confirmed_flush_lsn"])
            self.assertGreaterEqual(saved, max(m["lsn"] for m in msgs))
            self.assertFalse(pg.slot(slot)["active"])

    def test_rebuild_json(self):
        self.rebuild_and_compare("json")

    def test_rebuild_protobuf(self):
        self.rebuild_and_compare("protobuf")


if __name__ == "__main__":
    pgcdc_test.main()
