#!/usr/bin/python3
"""seed-corpus.py - write the fuzz seed corpus for fuzz_pgoutput from the pgoutput fixtures.

For every tests/fixtures/pgoutput/*.msgs this writes, in the target's input
format (records of a 2-byte big-endian length + payload):

  <fixture>.all          the whole captured stream
  <fixture>.txN          the Relation/Type messages seen so far + transaction N
                         (Begin .. Commit), so small inputs reach every message
  <fixture>.nontxN       a message sent outside any transaction

Regression inputs found by fuzzing live next to them as regress-*.bin and are
left alone. Run: /usr/bin/python3 tests/fuzz/seed-corpus.py
"""

import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "pgoutput")
CORPUS = os.path.join(HERE, "corpus", "pgoutput")


def load(path):
    msgs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                msgs.append(bytes.fromhex(line.split(" ", 1)[1]))
    return msgs


def frame(msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs if len(m) <= 0xFFFF)


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for old in glob.glob(os.path.join(CORPUS, "*")):
        if not os.path.basename(old).startswith("regress-"):
            os.remove(old)
    count = 0
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.msgs"))):
        name = os.path.basename(path)[:-5]
        msgs = load(path)
        out = {name + ".all": frame(msgs)}
        schema, before, txn, ntx, nnontx = [], [], None, 0, 0
        for m in msgs:
            t = m[:1]
            if t in (b"R", b"Y"):
                schema.append(m)
            if t == b"B":
                txn, before = [m], list(schema)
            elif txn is not None:
                txn.append(m)
                if t == b"C":
                    out["%s.tx%d" % (name, ntx)] = frame(before + txn)
                    ntx += 1
                    txn = None
            elif t not in (b"R", b"Y"):
                out["%s.nontx%d" % (name, nnontx)] = frame([m])
                nnontx += 1
        for fname, data in out.items():
            with open(os.path.join(CORPUS, fname), "wb") as f:
                f.write(data)
            count += 1
    print("wrote %d seed files to %s" % (count, os.path.relpath(CORPUS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
