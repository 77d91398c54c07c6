#!/usr/bin/python3
"""perf_attr.py - where pgcdc's CPU goes, from `perf script` output of a --call-graph dwarf run.

    perf script -i perf.data -F comm,tid,ip,sym,dso | perf_attr.py [BINARY_NAME]

Prints the share of samples per thread, the inclusive share of pgcdc's own
functions, and, for costly library code (printf family, malloc/free,
librdkafka headers, rd_kafka_producev, protobuf-c), which pgcdc function
called it. Used by bench.py --profile.
"""
import collections
import sys


def parse(lines):
    samples, cur = [], None
    for line in lines:
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        if not line.startswith((" ", "\t")):
            cur = {"comm": line.split()[0], "frames": []}
        elif cur is not None:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            sym = rest.rsplit(" (", 1)[0]
            dso = rest.rsplit("(", 1)[-1].rstrip(")")
            cur["frames"].append((sym, dso))
    if cur:
        samples.append(cur)
    return samples


MALLOC = {"malloc", "__GI___libc_malloc", "_int_malloc", "cfree@GLIBC_2.2.5", "_int_free",
          "__GI___libc_free", "free", "calloc", "__libc_calloc", "realloc", "__GI___libc_realloc",
          "_int_realloc", "malloc_consolidate", "tcache_get", "tcache_put", "unlink_chunk",
          "__libc_calloc", "_int_free_merge_chunk", "_int_free_create_chunk"}


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "pgcdc"
    samples = parse(sys.stdin)
    n = len(samples)
    if not n:
        print("no samples")
        return
    own = lambda dso: dso == binary or dso.endswith("/" + binary)
    print(f"{n} samples")
    print("threads:")
    for k, v in collections.Counter(s["comm"] for s in samples).most_common():
        print(f"  {100 * v / n:5.1f}%  {k}")

    def attr(pred, name):
        c, tot = collections.Counter(), 0
        for s in samples:
            fr = s["frames"]
            idx = [i for i, (sym, _) in enumerate(fr) if pred(sym)]
            if not idx:
                continue
            tot += 1
            who = "(librdkafka thread)" if s["comm"].startswith("rdk:") else "?"
            for sym, dso in fr[idx[-1] + 1:]:
                if own(dso):
                    who = sym
                    break
            c[who] += 1
        print(f"{name}: {100 * tot / n:.1f}% inclusive, called from:")
        for k, v in c.most_common(6):
            print(f"  {100 * v / n:5.1f}%  {k}")

    attr(lambda s: "printf" in s, "printf family")
    attr(lambda s: s in MALLOC, "malloc/free")
    attr(lambda s: s.startswith("rd_kafka_header"), "librdkafka headers")
    attr(lambda s: s == "rd_kafka_producev", "rd_kafka_producev")
    attr(lambda s: s.startswith("protobuf_c_"), "protobuf-c")
    inc = collections.Counter()
    for s in samples:
        seen = set()
        for sym, dso in s["frames"]:
            if own(dso) and sym not in seen:
                seen.add(sym)
                inc[sym] += 1
    print(f"inclusive, {binary}'s functions:")
    for k, v in inc.most_common(25):
        print(f"  {100 * v / n:5.1f}%  {k}")


if __name__ == "__main__":
    main()
