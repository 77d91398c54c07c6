"""exactly_once.py - the versioned-row workload and the exactly-once count shared by
test_crash.py and test_faults.py.

    make_versioned_table(pg, "vrows", rows=200)      # table, publication, slot, version-0 rows
    w = Workload(pg.dsn(), "vrows", rows=200); w.start() ... w.finish()
    msgs = read_all(kafka.bootstrap, [topic])
    counts = count_versions(msgs, final_versions(pg, "vrows"))
    print(counts.line()); counts.assert_exact(self)

Every row is `(id int PRIMARY KEY, version int, pad text)`; a transaction bumps
the version of some rows (`version = version + 1`, so versions stay contiguous
even when a commit's outcome is unknown, as when the server restarts under the
workload). The rows are inserted with version 0 after the slot exists, so the
row's history in Kafka must be exactly 0, 1, ..., its final version in the
database: each once, in order, all in one partition.
"""

import collections
import json
import random
import re
import threading
import time
import zlib

import psycopg2

from pgcdc_test import consume_all, lsn_int, watermarks


def make_versioned_table(pg, table, rows, publication="pgcdc", slot="pgcdc"):
    """Create table, its publication and a pgoutput slot, then insert rows 1..rows at version 0
    (after the slot, so the inserts are captured)."""
    pg.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, version int NOT NULL, pad text)")
    pg.sql(f"CREATE PUBLICATION {publication} FOR TABLE {table}")
    pg.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    pg.sql(f"INSERT INTO {table} SELECT g, 0, repeat('p', 16) FROM generate_series(1, %s) g",
           (rows,))


class Workload(threading.Thread):
    """Commits version bumps on table until stopped: mostly small transactions of 1..4 random
    rows, every bulk_every seconds (if > 0) one transaction that bumps every row twice.
    Survives server restarts and terminated connections (reconnects, keeps going)."""

    def __init__(self, dsn, table, rows, seed=1, pause=0.01, bulk_every=0.0):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.table = table
        self.rows = rows
        self.rng = random.Random(seed)
        self.pause = pause
        self.bulk_every = bulk_every
        self.stop_event = threading.Event()
        self.commits = 0
        self.bulk_commits = 0
        self.conn_errors = 0
        self.error = None  # an unexpected exception, reported by the test

    def run(self):
        try:
            self._run()
        except BaseException as e:
            self.error = e

    def _connect(self):
        while not self.stop_event.is_set():
            try:
                c = psycopg2.connect(self.dsn, connect_timeout=5)
                c.autocommit = False
                return c
            except psycopg2.OperationalError:
                self.conn_errors += 1
                time.sleep(0.1)
        return None

    def _run(self):
        rng = self.rng
        conn = None
        next_bulk = time.monotonic() + self.bulk_every
        t = self.table
        while not self.stop_event.is_set():
            if conn is None:
                conn = self._connect()
                if conn is None:
                    return
            try:
                with conn.cursor() as cur:
                    bulk = self.bulk_every > 0 and time.monotonic() >= next_bulk
                    if bulk:
                        # a few hundred changes in one transaction: every row, twice
                        cur.execute(f"UPDATE {t} SET version = version + 1")
                        cur.execute(f"UPDATE {t} SET version = version + 1")
                        next_bulk = time.monotonic() + self.bulk_every
                    else:
                        ids = rng.sample(range(1, self.rows + 1), rng.randint(1, 4))
                        cur.execute(f"UPDATE {t} SET version = version + 1 WHERE id = ANY(%s)",
                                    (ids,))
                conn.commit()
                self.commits += 1
                self.bulk_commits += bulk
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                # server restarted or connection terminated: the commit may or may not
                # have happened; versions are computed by the server, so either is fine
                self.conn_errors += 1
                try:
                    conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.05)
                continue
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def finish(self, timeout=30):
        """Stop and join; raises what the thread raised."""
        self.stop_event.set()
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the workload thread did not stop")
        if self.error is not None:
            raise AssertionError(f"workload failed: {self.error!r}") from self.error


def final_versions(pg, table):
    """{id: version} as the database has it now."""
    return dict(pg.sql(f"SELECT id, version FROM {table}"))


def end_lsn(pg):
    """An --endpos covering everything committed so far (flushes the WAL first)."""
    pg.flush_wal()
    return pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")


def topic_total(bootstrap, topic):
    """Messages in topic (sum of high watermarks)."""
    return sum(high for _, high in watermarks(bootstrap, topic).values())


def read_all(bootstrap, topics, timeout=120.0):
    """Every message of topics, after checking that the broker dropped none (low watermark 0).

    Returns message dicts: topic, partition, offset, key, value (parsed JSON or None for a
    tombstone), headers {name: str}.
    """
    expect = 0
    for t in topics:
        for p, (low, high) in watermarks(bootstrap, t).items():
            if low != 0:
                raise AssertionError(f"the test broker dropped messages of {t} [{p}] (low "
                                     f"watermark {low}): pre-create the topic with more "
                                     "partitions")
            expect += high
    raw = consume_all(bootstrap, list(topics), timeout=timeout, expect_count=expect,
                      conf={"fetch.message.max.bytes": 8 << 20})
    if len(raw) != expect:
        raise AssertionError(f"consumed {len(raw)} of the {expect} messages in {topics}")
    out = []
    for m in raw:
        # pgcdc's headers are text; a key change's __debezium.* headers hold keys as encoded
        hdr = {k: (v.decode(errors="replace" if k.startswith("__debezium.") else "strict")
                   if v is not None else None) for k, v in m["headers"]}
        out.append({
            "topic": m["topic"], "partition": m["partition"], "offset": m["offset"],
            "key": m["key"], "headers": hdr,
            "value": json.loads(m["value"]) if m["value"] is not None else None,
        })
    return out


class Counts:
    def __init__(self):
        self.lost = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.unexpected = 0  # messages that match no committed version (or split partitions)
        self.position_problems = 0  # (pgcdc.lsn, pgcdc.ordinal) not increasing in a partition
        self.messages = 0
        self.rows = 0
        self.expected = 0
        self.examples = []   # the first few problems, described

    def note(self, text):
        if len(self.examples) < 12:
            self.examples.append(text)

    def line(self):
        return (f"lost {self.lost}, duplicated {self.duplicated}, out of order "
                f"{self.out_of_order} ({self.messages} messages for {self.rows} rows, "
                f"{self.expected} versions expected, {self.unexpected} unexpected, "
                f"{self.position_problems} position header problems)")

    def assert_exact(self, tc):
        tc.assertEqual((self.lost, self.duplicated, self.out_of_order, self.unexpected,
                        self.position_problems), (0, 0, 0, 0, 0),
                       self.line() + "\n" + "\n".join(self.examples))


def count_versions(msgs, finals):
    """Check each row's history: versions 0..finals[id], each exactly once, in offset order,
    all in one partition. Also checks the pgcdc position headers: (pgcdc.lsn, pgcdc.ordinal)
    strictly increases in each partition (counted as position_problems)."""
    c = Counts()
    per_row = collections.defaultdict(list)  # id -> [(partition, offset, version)]
    last_pos = {}
    for m in sorted(msgs, key=lambda m: (m["topic"], m["partition"], m["offset"])):
        c.messages += 1
        v = m["value"]
        if v is None or v.get("op") not in ("c", "u") or v.get("after") is None:
            c.unexpected += 1
            c.note(f"unexpected message {m['topic']} [{m['partition']}] @{m['offset']}: {v}")
            continue
        after = v["after"]
        per_row[int(after["id"])].append((m["partition"], m["offset"], int(after["version"])))
        h = m["headers"]
        pos = (lsn_int(h["pgcdc.lsn"]), int(h["pgcdc.ordinal"]))
        tp = (m["topic"], m["partition"])
        if tp in last_pos and pos <= last_pos[tp]:
            c.position_problems += 1
            c.note(f"{m['topic']} [{m['partition']}] @{m['offset']}: position "
                   f"{h['pgcdc.lsn']}#{h['pgcdc.ordinal']} not above the previous message's")
        last_pos[tp] = max(pos, last_pos.get(tp, pos))
    c.rows = len(finals)
    for rid, final in sorted(finals.items()):
        hist = per_row.pop(rid, [])
        c.expected += final + 1
        parts = {p for p, _, _ in hist}
        if len(parts) > 1:
            c.unexpected += 1
            c.note(f"row {rid}: messages in partitions {sorted(parts)}")
        hist.sort(key=lambda x: (x[0], x[1]))
        seen = collections.Counter(ver for _, _, ver in hist)
        for ver in range(final + 1):
            n = seen.get(ver, 0)
            if n == 0:
                c.lost += 1
                c.note(f"row {rid}: version {ver} missing (final {final})")
            elif n > 1:
                c.duplicated += n - 1
                c.note(f"row {rid}: version {ver} {n} times")
        for ver, n in seen.items():
            if ver < 0 or ver > final:
                c.unexpected += n
                c.note(f"row {rid}: version {ver} beyond the committed {final}")
        top = -1
        for _, off, ver in hist:
            if ver < top:
                c.out_of_order += 1
                c.note(f"row {rid}: version {ver} at offset {off} after version {top}")
            top = max(top, ver)
    for rid, hist in per_row.items():
        c.unexpected += len(hist)
        c.note(f"row {rid} is not in the table but has {len(hist)} messages")
    return c


# ---------------------------------------------------------------- checkpoint file

_LSN_RX = re.compile(r"^lsn = ([0-9A-F]+/[0-9A-F]+)$", re.M)
_CRC_RX = re.compile(r"^crc32 = ([0-9a-f]{8})\n\Z", re.M)


def parse_checkpoint(path):
    """The LSN (int) of a checkpoint file after checking that it is whole: an `lsn = X/X`
    line and a final `crc32 = ` line whose CRC-32 covers every byte before it.
    Raises AssertionError describing a torn or corrupt file."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", "replace")
    m = _CRC_RX.search(text)
    if m is None:
        raise AssertionError(f"checkpoint {path} has no final crc32 line: {text!r}")
    body = data[:m.start()]
    if zlib.crc32(body) != int(m.group(1), 16):
        raise AssertionError(f"checkpoint {path}: crc32 {m.group(1)} does not match "
                             f"{zlib.crc32(body):08x}: {text!r}")
    lm = _LSN_RX.search(text)
    if lm is None:
        raise AssertionError(f"checkpoint {path} has no `lsn = X/X` line: {text!r}")
    return lsn_int(lm.group(1))


def fmt_lsn(v):
    return "%X/%X" % (v >> 32, v & 0xFFFFFFFF)
