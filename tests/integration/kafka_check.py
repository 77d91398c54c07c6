"""kafka_check.py - what a consumer of pgcdc's topics checks, shared by the test_kafka_* tests.

    msgs = read_topics(kafka, ["cdc.public.t"], fmt="json")   # every message, decoded
    check_headers(self, msgs); check_partition_order(self, msgs); check_tombstones(self, msgs)
    rows = rebuild(msgs, {"cdc.public.t": ["id"]})             # table contents from its topic

Messages are decoded into dicts (see decode()); values are normalised to
PostgreSQL's text form so that a rebuilt table compares with
`SELECT col::text ...` on the source, for JSON and protobuf alike. The
protobuf wire format is read by a small decoder here (no generated code).
"""

import collections
import json
import os
import time

from pgcdc_test import consume_all, lsn_int, watermarks

# ------------------------------------------------------------------ protobuf


def _varint(buf, i):
    shift = 0
    v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def pb_fields(buf):
    """Decode one protobuf message: {field number: [values]} (varints as int, others bytes)."""
    out = collections.defaultdict(list)
    i = 0
    n = len(buf)
    while i < n:
        tag, i = _varint(buf, i)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            v, i = bytes(buf[i:i + ln]), i + ln
            if i > n:
                raise ValueError("truncated protobuf field")
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out[field].append(v)
    return out


def _one(f, num, default=None):
    v = f.get(num)
    return v[-1] if v else default


UNCHANGED_TOAST = object()

PB_OPS = {1: "c", 2: "u", 3: "d", 4: "t", 5: "m", 6: "r"}


def pb_column(raw):
    """(name, text value | None | UNCHANGED_TOAST, is_key) of a pgcdc.v1.Column."""
    f = pb_fields(raw)
    name = _one(f, 1, b"").decode()
    is_key = bool(_one(f, 4, 0))
    if 10 in f:
        v = None
    elif 11 in f:
        v = UNCHANGED_TOAST
    elif 12 in f:
        v = _one(f, 12).decode()
    elif 13 in f:
        v = _one(f, 13).decode("utf-8", "replace")
    elif 14 in f:
        raise AssertionError(f"column {name}: binary value not expected")
    else:
        raise AssertionError(f"column {name}: no value set in the oneof")
    return name, v, is_key


def pb_columns(raws):
    return {name: v for name, v, _ in (pb_column(r) for r in raws)} if raws else None


def pb_event(raw):
    f = pb_fields(raw)
    src = pb_fields(_one(f, 2, b""))
    pos = pb_fields(_one(f, 3, b""))
    return {
        "op": PB_OPS.get(_one(f, 1, 0), "?"),
        "schema": _one(src, 5, b"").decode(),
        "table": _one(src, 6, b"").decode(),
        "before": pb_columns(f.get(5)),
        "after": pb_columns(f.get(6)),
        "commit_lsn": _one(pos, 1, 0),
        "ordinal": _one(pos, 3, 0),
    }


def pb_key(raw):
    f = pb_fields(raw)
    return tuple((name, v) for name, v, _ in (pb_column(c) for c in f.get(1, [])))


# ---------------------------------------------------------------------- json


def json_text(v):
    """A JSON column value in PostgreSQL's text form (the types these tests use)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, int):
        return str(v)
    raise AssertionError(f"unexpected JSON value {v!r}")


def json_row(obj):
    if obj is None:
        return None
    return {k: json_text(v) for k, v in obj.items()}


def json_event(raw):
    d = json.loads(raw)
    src = d["source"]
    return {
        "op": d["op"],
        "schema": src["schema"],
        "table": src["table"],
        "before": json_row(d["before"]),
        "after": json_row(d["after"]),
        "commit_lsn": json.loads(src["sequence"])[0],
        "ordinal": None,  # the JSON envelope does not carry it
        "snapshot": src.get("snapshot"),
    }


def json_key(raw):
    d = json.loads(raw)
    return tuple((k, json_text(v)) for k, v in d.items())


# ------------------------------------------------------------------ messages


def decode(m, fmt):
    """A consumed message dict -> decoded dict:

    topic, partition, offset, headers {name: str} (and header_names, in
    order), lsn (int, from pgcdc.lsn), ordinal (int), op (pgcdc.op), key
    (None or ((column, text), ...)), event (None for a tombstone, else
    {op, schema, table, before, after, commit_lsn, ordinal}).
    """
    names = [h[0] for h in m["headers"]]
    # pgcdc's headers are text; a key change's __debezium.* key headers are keys as encoded
    hdr = {h[0]: (h[1].decode() if h[1] is not None and h[0].startswith("pgcdc.") else h[1])
           for h in m["headers"]}
    d = {
        "topic": m["topic"], "partition": m["partition"], "offset": m["offset"],
        "header_names": names, "headers": hdr,
        "lsn": lsn_int(hdr["pgcdc.lsn"]) if hdr.get("pgcdc.lsn") else None,
        "ordinal": int(hdr["pgcdc.ordinal"]) if hdr.get("pgcdc.ordinal") else None,
        "op": hdr.get("pgcdc.op"),
        "raw_key": m["key"],
    }
    if m["key"] is None:
        d["key"] = None
    else:
        d["key"] = json_key(m["key"]) if fmt == "json" else pb_key(m["key"])
    if m["value"] is None:
        d["event"] = None
    else:
        d["event"] = json_event(m["value"]) if fmt == "json" else pb_event(m["value"])
    return d


def read_topics(bootstrap, topics, fmt, timeout=120.0):
    """Every message of topics, decoded, after checking that the broker dropped none.

    Returns (messages, {topic: count}).
    """
    expect = 0
    counts = {}
    for t in topics:
        wm = watermarks(bootstrap, t)
        for p, (low, high) in wm.items():
            if low != 0:
                raise AssertionError(f"the broker dropped messages of {t} [{p}] (low watermark "
                                     f"{low}): use more partitions")
        counts[t] = sum(high for _, high in wm.values())
        expect += counts[t]
    raw = consume_all(bootstrap, list(topics), timeout=timeout, expect_count=expect,
                      conf={"fetch.message.max.bytes": 8 << 20})
    if len(raw) != expect:
        raise AssertionError(f"consumed {len(raw)} of the {expect} messages in {topics}")
    return [decode(m, fmt) for m in raw], counts


# ---------------------------------------------------------------- properties

HEADER_NAMES = ["pgcdc.lsn", "pgcdc.ordinal", "pgcdc.op", "pgcdc.source"]


def source_id(pg, slot, dbname="postgres"):
    """The pgcdc.source header value of a slot: <system identifier>/<database>/<slot>."""
    sysid = pg.sql_one("SELECT system_identifier FROM pg_control_system()")
    return f"{sysid}/{dbname}/{slot}"


def check_headers(tc, msgs, source=None):
    """Every message carries exactly the documented headers (docs/MESSAGES.md), consistent
    with its value; pgcdc.source equals source when given."""
    bad = []
    for m in msgs:
        ev = m["event"]
        problems = []
        # a key change's delete and tombstone carry the new key, its create the old key
        extra = [n for n in m["header_names"] if n not in HEADER_NAMES]
        allowed = (["__debezium.newkey"] if m["op"] in ("d", "tombstone") else
                   ["__debezium.oldkey"] if m["op"] == "c" else [])
        if sorted(n for n in m["header_names"] if n in HEADER_NAMES) != sorted(HEADER_NAMES) \
                or len(extra) > 1 or any(n not in allowed for n in extra):
            problems.append(f"headers {m['header_names']}")
        for n in extra:
            if not m["headers"].get(n):
                problems.append(f"empty {n} header")
        if m["lsn"] is None or m["ordinal"] is None:
            problems.append("no or empty position header")
        if source is not None and m["headers"].get("pgcdc.source") != source:
            problems.append(f"pgcdc.source {m['headers'].get('pgcdc.source')!r}, want {source!r}")
        if ev is None:
            if m["op"] != "tombstone":
                problems.append(f"null value with pgcdc.op={m['op']}")
        else:
            if m["op"] != ev["op"]:
                problems.append(f"pgcdc.op={m['op']} but value op={ev['op']}")
            if ev["commit_lsn"] is not None and int(ev["commit_lsn"]) != m["lsn"]:
                problems.append(f"pgcdc.lsn {m['headers'].get('pgcdc.lsn')} but value commit "
                                f"LSN {ev['commit_lsn']}")
        if problems:
            bad.append((m["topic"], m["partition"], m["offset"], problems))
    # the key headers come exactly with key changes: a delete and its tombstone carrying the
    # new key, and the create after them (same transaction position, sub-ordinals 0, 1, 2)
    # carrying the old key; each equal to the other message's key
    by_pos = {(m["topic"], m["lsn"], m["ordinal"]): m for m in msgs if m["ordinal"] is not None}
    for m in msgs:
        if m["ordinal"] is None:
            continue
        base = m["ordinal"] - m["ordinal"] % 4
        sub = m["ordinal"] % 4
        create = by_pos.get((m["topic"], m["lsn"], base + 2))
        delete = by_pos.get((m["topic"], m["lsn"], base))
        pair = (create is not None and delete is not None and create["op"] == "c"
                and delete["op"] == "d")
        want = None
        if pair and sub in (0, 1):
            want = ("__debezium.newkey", create)
        elif pair and sub == 2:
            want = ("__debezium.oldkey", delete)
        extra = [n for n in m["header_names"] if n not in HEADER_NAMES]
        if want is None:
            if extra:
                bad.append((m["topic"], m["partition"], m["offset"],
                            [f"{extra} on a message that is not part of a key change"]))
        elif extra != [want[0]]:
            bad.append((m["topic"], m["partition"], m["offset"],
                        [f"a key change's message without its {want[0]} header: {extra}"]))
        elif m["headers"][want[0]] != want[1]["raw_key"]:
            bad.append((m["topic"], m["partition"], m["offset"],
                        [f"{want[0]} {m['headers'][want[0]]!r} is not the key "
                         f"{want[1]['raw_key']!r} of its pair"]))
    tc.assertEqual(bad[:10], [], f"{len(bad)} messages with header problems")


def check_pb_ordinals(tc, msgs):
    """protobuf Position.ordinal is the event's ordinal; the pgcdc.ordinal header is
    ordinal * 4 + sub (proto/pgcdc/v1/change_event.proto)."""
    bad = [(m["topic"], m["offset"], m["ordinal"], m["event"]["ordinal"]) for m in msgs
           if m["event"] is not None and m["event"]["ordinal"] != m["ordinal"] // 4]
    tc.assertEqual(bad[:10], [], f"{len(bad)} messages whose Position.ordinal is not "
                                 "pgcdc.ordinal // 4 (topic, offset, header, Position)")


def check_ordinals(tc, msgs):
    """pgcdc.ordinal = event ordinal * 4 + sub (docs/MESSAGES.md): in each transaction the
    events count 0, 1, 2, ... (sub 0), sub 1 is a delete's tombstone, sub 2 the create of a
    primary-key change (after its delete)."""
    by_lsn = collections.defaultdict(dict)
    bad = []
    for m in msgs:
        if m["ordinal"] in by_lsn[m["lsn"]]:
            continue  # a duplicate: check_unique_positions reports it
        by_lsn[m["lsn"]][m["ordinal"]] = m
    for lsn, ords in by_lsn.items():
        events = sorted({o // 4 for o in ords})
        if events != list(range(len(events))):
            bad.append((fmt_lsn(lsn), "event ordinals", events[:8]))
        for o, m in ords.items():
            e, sub = divmod(o, 4)
            op = m["op"]
            first = ords.get(4 * e)
            if sub == 0 and op == "tombstone":
                bad.append((fmt_lsn(lsn), o, "tombstone at sub 0"))
            elif sub == 1 and (op != "tombstone" or first is None or first["op"] != "d"):
                bad.append((fmt_lsn(lsn), o, f"{op} at sub 1, after {first and first['op']}"))
            elif sub == 2 and (op != "c" or first is None or first["op"] != "d"):
                bad.append((fmt_lsn(lsn), o, f"{op} at sub 2, after {first and first['op']}"))
            elif sub == 3:
                bad.append((fmt_lsn(lsn), o, f"{op} at sub 3"))
            if sub and 4 * e not in ords:
                bad.append((fmt_lsn(lsn), o, "no message at sub 0"))
    tc.assertEqual(bad[:10], [], f"{len(bad)} ordinal problems")


def check_partition_order(tc, msgs):
    """Within each partition, (lsn, ordinal) strictly increases."""
    last = {}
    bad = []
    for m in sorted(msgs, key=lambda m: (m["topic"], m["partition"], m["offset"])):
        tp = (m["topic"], m["partition"])
        pos = (m["lsn"], m["ordinal"])
        if tp in last and not pos > last[tp]:
            bad.append((tp, m["offset"], last[tp], pos))
        last[tp] = pos
    tc.assertEqual(bad[:10], [], f"{len(bad)} messages out of (lsn, ordinal) order in their "
                                 "partition")


def check_unique_positions(tc, msgs):
    """No (lsn, ordinal) pair appears twice (across all topics)."""
    c = collections.Counter((m["lsn"], m["ordinal"]) for m in msgs)
    dups = [(k, n) for k, n in c.items() if n > 1]
    tc.assertEqual(dups[:10], [], f"{len(dups)} positions published more than once")


def check_tombstones(tc, msgs):
    """Each delete with a key is followed, in its partition, by a tombstone with the same key
    at the next ordinal; every tombstone follows such a delete."""
    by_part = collections.defaultdict(list)
    for m in msgs:
        by_part[(m["topic"], m["partition"])].append(m)
    bad = []
    deletes = tombstones = 0
    for tp, ms in by_part.items():
        ms.sort(key=lambda m: m["offset"])
        for i, m in enumerate(ms):
            if m["event"] is not None and m["event"]["op"] == "d" and m["raw_key"] is not None:
                deletes += 1
                nxt = ms[i + 1] if i + 1 < len(ms) else None
                if (nxt is None or nxt["event"] is not None or nxt["raw_key"] != m["raw_key"]
                        or (nxt["lsn"], nxt["ordinal"]) != (m["lsn"], m["ordinal"] + 1)):
                    bad.append(("delete not followed by its tombstone", tp, m["offset"]))
            if m["event"] is None:
                tombstones += 1
                prv = ms[i - 1] if i > 0 else None
                if (prv is None or prv["event"] is None or prv["event"]["op"] != "d"
                        or prv["raw_key"] != m["raw_key"]):
                    bad.append(("tombstone without its delete", tp, m["offset"]))
                if m["raw_key"] is None:
                    bad.append(("tombstone with a null key", tp, m["offset"]))
    tc.assertEqual(bad[:10], [], f"{len(bad)} tombstone problems")
    tc.assertEqual(tombstones, deletes)
    return deletes


def check_keys(tc, msgs, key_columns):
    """The Kafka key of each row event is the key columns of its row image (after, or before
    for a delete); null for tables in key_columns with an empty list and for truncates."""
    bad = []
    for m in msgs:
        ev = m["event"]
        if ev is None:
            continue
        cols = key_columns[m["topic"]]
        if ev["op"] == "t" or not cols:
            if m["key"] is not None:
                bad.append((m["topic"], m["offset"], ev["op"], "key should be null", m["key"]))
            continue
        img = ev["before"] if ev["op"] == "d" else ev["after"]
        want = tuple((c, img.get(c)) for c in cols) if img is not None else None
        if m["key"] != want:
            bad.append((m["topic"], m["offset"], ev["op"], m["key"], want))
    tc.assertEqual(bad[:10], [], f"{len(bad)} messages with a wrong key")


# ------------------------------------------------------------------- rebuild


def ordered(msgs):
    return sorted(msgs, key=lambda m: (m["lsn"], m["ordinal"]))


def rebuild(msgs, columns, key_columns, snapshot=False):
    """Apply a topic's events in (lsn, ordinal) order: returns (Counter of row tuples, problems).

    columns: the table's columns in order. key_columns: primary key columns, or
    [] for a table without one (then an update or delete applies to one row
    equal to its before image).

    snapshot: the topic has snapshot rows (op r), applied as a consumer must: a row read
    replaces the row of its key; an update or delete may name a key the consumer has not
    seen (a row that existed before the slot, changed before its chunk was read). A table
    without a key is read in one pass, at one position: its first row read
    (source.snapshot first or first_in_data_collection) replaces everything held for it.
    """
    problems = []
    keyed = {}   # key tuple -> row tuple (tables with a key)
    bag = collections.Counter()  # row tuple -> count (tables without one)
    kidx = [columns.index(c) for c in key_columns]
    read_seen = False  # a table without a key: its snapshot read has begun

    def row_of(img, what):
        missing = [c for c in columns if c not in img]
        if missing:
            problems.append(f"{what} lacks columns {missing}: {img}")
            return None
        r = tuple(img[c] for c in columns)
        if any(v is UNCHANGED_TOAST for v in r):
            problems.append(f"{what} has an unchanged-TOAST column: {img}")
        return r

    for m in ordered(msgs):
        ev = m["event"]
        if ev is None:
            continue  # tombstone
        op = ev["op"]
        where = f"{op} at {m['headers']['pgcdc.lsn']}#{m['ordinal']}"
        if op == "t":
            keyed.clear()
            bag.clear()
        elif op in ("c", "r"):
            r = row_of(ev["after"], where)
            if r is None:
                continue
            if kidx:
                k = tuple(r[i] for i in kidx)
                if k in keyed and op == "c":
                    problems.append(f"{where}: create of existing key {k}")
                keyed[k] = r
            else:
                if op == "r" and ev.get("snapshot") in ("first", "first_in_data_collection"):
                    bag.clear()
                    read_seen = True
                bag[r] += 1
        elif op == "u":
            r = row_of(ev["after"], where)
            if r is None:
                continue
            if kidx:
                k = tuple(r[i] for i in kidx)
                if k not in keyed and not snapshot:
                    problems.append(f"{where}: update of missing key {k}")
                keyed[k] = r
            else:
                old = row_of(ev["before"] or {}, where + " before")
                if old is None or bag[old] <= 0:
                    if not snapshot or read_seen:  # before its read: a row not seen yet
                        problems.append(f"{where}: update of a missing row {old}")
                else:
                    bag[old] -= 1
                bag[r] += 1
        elif op == "d":
            img = ev["before"] or {}
            if kidx:
                k = tuple(img.get(c) for c in key_columns)
                if keyed.pop(k, None) is None and not snapshot:
                    problems.append(f"{where}: delete of missing key {k}")
            else:
                old = row_of(img, where)
                if old is None or bag[old] <= 0:
                    if not snapshot or read_seen:
                        problems.append(f"{where}: delete of a missing row {old}")
                else:
                    bag[old] -= 1
        else:
            problems.append(f"{where}: unexpected op")
    if kidx:
        bag = collections.Counter(keyed.values())
    return +bag, problems


def source_rows(pg, table, columns, dbname="postgres"):
    """Counter of the table's rows as text tuples (NULL as None), each value in its type's
    output form (what pgoutput sends: 't' for true, where ::text would give 'true')."""
    sel = ", ".join(f"""CASE WHEN "{c}" IS NULL THEN NULL ELSE format('%s', "{c}") END"""
                    for c in columns)
    return collections.Counter(tuple(r) for r in pg.sql(f"SELECT {sel} FROM {table}",
                                                         dbname=dbname))


def diff_summary(want, got, limit=5):
    """A short description of how two row Counters differ ('' if equal)."""
    if want == got:
        return ""
    missing = list((want - got).items())
    extra = list((got - want).items())
    return (f"{sum(want.values())} source rows, {sum(got.values())} rebuilt; "
            f"{len(missing)} missing e.g. {missing[:limit]}; {len(extra)} extra e.g. "
            f"{extra[:limit]}")


# ---------------------------------------------------------------- checkpoint


def checkpoint_lsn(path):
    """The lsn of a pgcdc checkpoint file, or None if there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith("lsn = "):
                return lsn_int(line.split("=", 1)[1].strip())
    raise AssertionError(f"no lsn line in checkpoint {path}")


def fmt_lsn(v):
    return "%X/%X" % (v >> 32, v & 0xFFFFFFFF)


def end_lsn(pg):
    """An endpos covering everything committed so far (flushes the WAL first)."""
    pg.flush_wal()
    return pg.sql_one("SELECT pg_current_wal_insert_lsn()::text")


def slot_confirmed(pg, slot):
    return lsn_int(pg.slot(slot)["confirmed_flush_lsn"])


class Timer:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self):
        return time.monotonic() - self.t0

