"""compat.py - pgcdc and Debezium on the same WAL, their messages compared field by field.

    run = SameWal(test, setup_sql)        # the tables, pgcdc's setup, a second slot
    run.sql(...)                          # the workload, written once
    diffs = run.compare(pgcdc_settings, debezium_options)

Two logical slots are created at the same point (nothing is written between them):
pgcdc's, by `pgcdc setup`, and Debezium's. The workload then runs once. pgcdc
streams its slot into the test broker up to the end of the workload (`start
--endpos`), and every message of every topic it wrote is read back. Debezium's
connector (pgcdc_test.debezium) reads its own slot until it has produced the end
marker, a row of the table compat_end that the workload's last transaction writes.

Both sides' messages are then compared as a consumer sees them: grouped by topic
and key (the order of the messages of one key is the order a consumer reads them
in, since one key is one partition), the values and keys as JSON, the headers by
name. The processing timestamps (the envelope's ts_ms, ts_us and ts_ns, and a
heartbeat's) are removed first. What pgcdc keeps different on purpose is listed,
with the reason, in tests/compat/differences.txt: each line names the fields it
covers and whether they are pgcdc's alone, Debezium's alone, or on both sides
with other values. Those fields are taken out of both sides after their kind is
checked (a field said to be pgcdc's alone must not be in Debezium's message);
every other difference is reported.
"""

import collections
import json
import os
import re
import sys

from pgcdc_test import consume_all, run_pgcdc
from pgcdc_test.broker import watermarks
from pgcdc_test.debezium import Debezium

HERE = os.path.dirname(os.path.abspath(__file__))
DIFFERENCES = os.path.join(HERE, "differences.txt")
PREFIX = "pgcdc"
END_TABLE = "compat_end"
SIDES = ("pgcdc-only", "debezium-only", "both")
USED = set()  # the differences.txt lines some comparison needed, by line number


class Differences:
    """tests/compat/differences.txt: what pgcdc does differently from Debezium on purpose.

    fields: [(glob, side, why)]; topics: [(glob, why)]; keyless_tombstones: the side that
    writes them, or None; defaults: {Debezium option: value} (pgcdc's default differs).
    """

    def __init__(self, path=DIFFERENCES):
        self.fields, self.topics, self.defaults, self.keyless_tombstones = [], [], {}, None
        self.columns, self.values = {}, {}  # left out of the types tests: name -> why
        self.lines = {}  # what each line says -> its line number
        self.all_lines = set()
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                w = line.split(None, 3)
                where = f"{path}:{n}"
                self.all_lines.add(n)
                when = None
                if w[0] == "field" and len(w) == 4 and w[2] == "when":
                    # field <glob> when <option>=<value> <side> <why>
                    w = line.split(None, 5)
                    when = tuple(w[3].split("=", 1))
                    w = [w[0], w[1], w[4], w[5]] if len(w) == 6 else []
                if w and w[0] == "field" and len(w) == 4 and w[2] in SIDES:
                    self.fields.append((w[1], w[2], w[3], when))
                    self.lines[("field", w[1], when)] = n
                elif w[0] == "topic" and len(w) >= 3:
                    self.topics.append((w[1], line.split(None, 2)[2]))
                    self.lines[("topic", w[1])] = n
                elif w[0] == "message" and len(w) == 4 and w[1] == "keyless-tombstone" \
                        and w[2] in SIDES:
                    self.keyless_tombstones = w[2]
                    self.lines[("message", w[1])] = n
                elif w[0] == "column" and len(w) >= 3:
                    self.columns[w[1]] = line.split(None, 2)[2]
                    self.lines[("column", w[1])] = n
                elif w[0] == "value" and len(w) >= 4:
                    col, lit, why = split_value_line(line)
                    self.values[(col, lit)] = why
                    self.lines[("value", col, lit)] = n
                elif w[0] == "default" and len(w) >= 3 and "=" in w[1]:
                    k, v = w[1].split("=", 1)
                    self.defaults[k] = v
                    self.lines[("default", k)] = n
                else:
                    raise ValueError(f"{where}: not a difference line: {line!r}")

    def use(self, *what):
        """Note that a comparison needed the line saying what."""
        USED.add(self.lines[what])

    def unused(self):
        """The line numbers no comparison needed so far."""
        return sorted(self.all_lines - USED)

    def topic_excluded(self, topic):
        for g, _ in self.topics:
            if glob(topic, g):
                self.use("topic", g)
                return True
        return False


def glob(name, pattern):
    """Whether name matches pattern, where * is any text and everything else is literal
    (brackets too: value.after.c[1] names an array element)."""
    rx = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(rx, name) is not None


def split_value_line(line):
    """`value <column> <SQL literal> <why>`: the literal may be quoted and hold spaces."""
    rest = line.split(None, 2)
    col, tail = rest[1], rest[2]
    if tail.startswith("'"):
        i = 1
        while True:
            j = tail.index("'", i)
            if j + 1 < len(tail) and tail[j + 1] == "'":
                i = j + 2
                continue
            lit = tail[:j + 1]
            break
    else:
        lit = tail.split(None, 1)[0]
    return col, lit, tail[len(lit):].strip()


def flatten(prefix, v, out):
    """{dotted path: leaf value} of a JSON value; an empty object or list is a leaf."""
    if isinstance(v, dict) and v:
        for k, x in v.items():
            flatten(f"{prefix}.{k}", x, out)
    elif isinstance(v, list) and v:
        for i, x in enumerate(v):
            flatten(f"{prefix}[{i}]", x, out)
    else:
        out[prefix] = v
    return out


def message_fields(m):
    """A message as {path: value}: key.*, value.* (processing times removed), headers.<name>."""
    value = m["value"]
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("ts_ms", "ts_us", "ts_ns")}
        if value.get("op") == "r" and isinstance(value.get("source"), dict):
            # a snapshot row's source time is when it was read: a processing time too
            value["source"] = {k: v for k, v in value["source"].items()
                               if k not in ("ts_ms", "ts_us", "ts_ns")}
    f = {}
    flatten("key", m["key"], f)
    flatten("value", value, f)
    for name, text in m["headers"].items():
        f[f"headers.{name}"] = text
    return f


class Report:
    """The differences found, as lines a reader can act on."""

    def __init__(self):
        self.lines = []
        self.paths = {}  # field -> messages where it differs

    def add(self, line):
        self.lines.append(line)

    def field(self, path):
        self.paths[path] = self.paths.get(path, 0) + 1

    def __bool__(self):
        return bool(self.lines)

    def __str__(self):
        shown = self.lines[:400]
        more = len(self.lines) - len(shown)
        summary = "".join(f"  {p}: in {n} message{'s' if n > 1 else ''}\n"
                          for p, n in sorted(self.paths.items()))
        return (("fields that differ:\n" + summary if summary else "") + "\n".join(shown)
                + (f"\n... and {more} more" if more > 0 else ""))


def compare_messages(ours, theirs, differences, skip_topics=(), options=None):
    """Compare pgcdc's messages with Debezium's; returns a Report (empty when they agree).

    ours, theirs: [{"topic", "key", "value", "headers"}], each in the order a consumer of
    one partition reads them (pgcdc's per partition, Debezium's in the order produced).
    """
    report = Report()

    def keyless_tombstone(m):
        return m["key"] is None and m["value"] is None

    def keep(msgs, side):
        out = []
        for m in msgs:
            if m["topic"] in skip_topics or differences.topic_excluded(m["topic"]):
                continue
            if keyless_tombstone(m) and differences.keyless_tombstones is not None:
                differences.use("message", "keyless-tombstone")
                if differences.keyless_tombstones not in (f"{side}-only", "both"):
                    report.add(f"{m['topic']}: a tombstone without a key, listed in "
                               f"differences.txt as {differences.keyless_tombstones}, "
                               f"but {side} wrote it")
                continue
            out.append(m)
        return out

    def group(msgs):
        g = {}
        for m in msgs:
            g.setdefault((m["topic"], json.dumps(m["key"], sort_keys=True)), []).append(m)
        return g

    def apply(fields, side, op):
        for path in list(fields):
            for pattern, kind, _why, when in differences.fields:
                if when is not None and (options or {}).get(when[0]) != when[1]:
                    continue
                where, _, only = pattern.partition("@")  # glob@op: only messages of that op
                if (not only or only == op) and glob(path, where):
                    differences.use("field", pattern, when)
                    if kind == "pgcdc-only" and side == "debezium":
                        report.add(f"  {path}: listed as pgcdc's alone in differences.txt, "
                                   f"but Debezium writes it ({fields[path]!r})")
                    if kind == "debezium-only" and side == "pgcdc":
                        report.add(f"  {path}: listed as Debezium's alone in "
                                   f"differences.txt, but pgcdc writes it ({fields[path]!r})")
                    del fields[path]
                    break
        return fields

    a, b = group(keep(ours, "pgcdc")), group(keep(theirs, "debezium"))
    for k in sorted(set(a) | set(b)):
        topic, key = k
        xs, ys = a.get(k, []), b.get(k, [])
        if key == "null":  # keyless: no order across partitions; compare as multisets
            cx = collections.Counter(json.dumps(apply(message_fields(m), "pgcdc", op_of(m)),
                                                sort_keys=True) for m in xs)
            cy = collections.Counter(json.dumps(apply(message_fields(m), "debezium", op_of(m)),
                                                sort_keys=True) for m in ys)
            for text in sorted((cx - cy).elements()):
                report.field(f"{topic}: a message without a key")
                report.add(f"{topic} (no key): only pgcdc wrote {text}")
            for text in sorted((cy - cx).elements()):
                report.field(f"{topic}: a message without a key")
                report.add(f"{topic} (no key): only Debezium wrote {text}")
            continue
        if len(xs) != len(ys):
            report.field(f"{topic}: messages of a key")
            report.add(f"{topic} key {key}: pgcdc wrote {len(xs)} messages, Debezium "
                       f"{len(ys)}:\n  pgcdc ops:    {[op_of(m) for m in xs]}\n"
                       f"  debezium ops: {[op_of(m) for m in ys]}")
        for i, (x, y) in enumerate(zip(xs, ys)):
            fx = apply(message_fields(x), "pgcdc", op_of(x))
            fy = apply(message_fields(y), "debezium", op_of(y))
            paths = sorted(set(fx) | set(fy))
            bad = [p for p in paths if p not in fx or p not in fy or not same(fx[p], fy[p])]
            if bad:
                report.add(f"{topic} key {key}, message {i + 1} ({op_of(x)}):")
                for p in bad:
                    report.field(p)
                    report.add(f"  {p}: pgcdc {show(fx, p)}, debezium {show(fy, p)}")
    return report


def same(x, y):
    # JSON numbers: 1 and 1.0 are the same number to a consumer
    if isinstance(x, bool) or isinstance(y, bool):
        return x is y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y
    return x == y and type(x) is type(y)


def show(fields, path):
    return json.dumps(fields[path]) if path in fields else "(absent)"


def op_of(m):
    v = m["value"]
    if v is None:
        return "tombstone"
    return v.get("op", "?") if isinstance(v, dict) else "?"


class SameWal:
    """One PostgreSQL server, pgcdc's slot and Debezium's created at the same point."""

    def __init__(self, test, setup_sql, settings=None):
        self.test = test
        self.pg = test.pg_cluster(settings=settings)
        for stmt in setup_sql:
            self.pg.sql(stmt)
        self.pg.sql(f"CREATE TABLE {END_TABLE} (id int PRIMARY KEY)")
        self.kafka = test.broker()
        self.ckpt = os.path.join(test.tmpdir(), "pgcdc.checkpoint")
        r = run_pgcdc(["setup", "-c", self.config({})], timeout=60)
        test.assertEqual(r.returncode, 0, r)
        # nothing is written between pgcdc's slot and this one: both start at the same point
        self.pg.sql("SELECT pg_create_logical_replication_slot('debezium', 'pgoutput')")

    def sql(self, *stmts):
        for s in stmts:
            self.pg.sql(s)

    def config(self, settings):
        return self.test.write_config({
            "source.dsn": self.pg.dsn(),
            "checkpoint.path": self.ckpt,
            "kafka.bootstrap.servers": self.kafka.bootstrap,
            "topic.prefix": PREFIX,
            **settings,
        })

    def end(self):
        """The workload's last transaction: the end marker both sides wait for."""
        self.pg.sql(f"INSERT INTO {END_TABLE} VALUES (1)")
        self.pg.flush_wal()
        return self.pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")

    def pgcdc_messages(self, settings, endpos):
        r = run_pgcdc(["start", "-c", self.config(settings), "--endpos", endpos], timeout=180)
        self.test.assertEqual(r.returncode, 0, r)
        topics = sorted(t for t in topic_names(self.kafka.bootstrap) if t.startswith(PREFIX))
        want = sum(h for t in topics for _, h in watermarks(self.kafka.bootstrap, t).values())
        msgs = consume_all(self.kafka.bootstrap, topics, timeout=60, expect_count=want)
        self.test.assertEqual(len(msgs), want)
        out = []
        for m in msgs:
            out.append({
                "topic": m["topic"],
                "key": json.loads(m["key"]) if m["key"] is not None else None,
                "value": json.loads(m["value"]) if m["value"] is not None else None,
                "headers": {k: v.decode() if v is not None else None
                            for k, v in (m["headers"] or [])},
            })
        return out

    def debezium_records(self, options):
        """Debezium's records; options: the connector options under test. pgcdc's defaults
        where they differ from Debezium's (differences.txt `default` lines) are added."""
        d = Differences()
        for k in d.defaults:
            if k not in options:
                d.use("default", k)
        options = {**d.defaults, **options}
        end_topic = f"{PREFIX}.public.{END_TABLE}"
        snapshot = options.get("snapshot.mode", "no_data") not in ("no_data", "never")

        def done(rs):
            # the end marker; with a snapshot also its last row (Debezium's snapshot may read
            # the end marker's row before other tables)
            return any(r["topic"] == end_topic for r in rs) and (not snapshot or any(
                isinstance(r["value"], dict) and r["value"].get("op") == "r"
                and r["value"]["source"].get("snapshot") == "last" for r in rs))

        with Debezium(self.pg, slot="debezium", publication="pgcdc", prefix=PREFIX,
                      options=options) as dbz:
            dbz.wait_for(done, timeout=90, message="the end marker")
            rc = dbz.stop()
        self.test.assertEqual(rc, 0, dbz.log_tail())
        return dbz.records

    def compare(self, settings=None, options=None, differences=None, skip_end=False):
        """Run both on the workload written so far; returns (Report, pgcdc's, Debezium's).
        skip_end: leave the end marker's messages out of the comparison."""
        endpos = self.end()
        ours = self.pgcdc_messages(settings or {}, endpos)
        theirs = self.debezium_records(options or {})
        skip = [f"{PREFIX}.public.{END_TABLE}"] if skip_end else []
        report = compare_messages(ours, theirs, differences or Differences(), skip,
                                  {**Differences().defaults, **(options or {})})
        print(f"compat: {len(ours)} messages of pgcdc's compared with {len(theirs)} of "
              f"Debezium's: {len(report.lines)} report lines", file=sys.stderr, flush=True)
        return report, ours, theirs


def topic_names(bootstrap):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return [t for t in md.topics if not t.startswith("__")]

