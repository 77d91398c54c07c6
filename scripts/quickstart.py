"""quickstart.py - the demo behind scripts/quickstart.sh (uses the integration test harness)."""

import json
import os
import subprocess
import sys
import time

import pgcdc_test
from pgcdc_test import Broker, PgCluster, TempDir

PGCDC = os.environ["PGCDC_BIN"]


def step(text):
    print(f"\n==> {text}", flush=True)


def pgcdc(*args, check=True):
    print("$ pgcdc " + " ".join(args), flush=True)
    r = subprocess.run([PGCDC, *args], capture_output=True, text=True, timeout=120)
    if r.stdout:
        print(r.stdout, end="" if r.stdout.endswith("\n") else "\n")
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        if check:
            raise SystemExit(f"pgcdc {args[0]} failed with exit status {r.returncode}")
    return r


def show(line):
    """One tail line, shortened: topic, partition/offset, op, key, after or before."""
    m = json.loads(line)
    v = m["value"]
    head = f'{m["topic"]} [{m["partition"]}@{m["offset"]}] {m["headers"].get("pgcdc.op", "?"):9}'
    if v is None:
        return f"{head} key={json.dumps(m['key'])} (tombstone)"
    if v.get("op") == "m":
        return f"{head} message prefix={v['message']['prefix']!r}"
    row = v.get("after") if v.get("after") is not None else v.get("before")
    return f"{head} key={json.dumps(m['key'])} row={json.dumps(row, ensure_ascii=False)}"


def main():
    with TempDir() as tmp, PgCluster(name="quickstart") as pg, Broker(topics={
            "shop.public.customers": 3, "shop.public.orders": 3}) as kafka:
        step(f"PostgreSQL 15 on 127.0.0.1:{pg.port}, Kafka test broker at {kafka.bootstrap}")
        pg.sql("""
            CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text);
            CREATE TABLE orders (id bigserial PRIMARY KEY,
                                 customer_id int REFERENCES customers(id),
                                 total numeric(12,2) NOT NULL, note text);
            INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', NULL);
        """)
        print("  two customers exist before pgcdc: its snapshot reads them (op r)")
        cfg = os.path.join(tmp.path, "pgcdc.conf")
        pgcdc_test.write_config(cfg, {
            "source.dsn": pg.dsn(),
            "slot.name": "shop_cdc",
            "publication.name": "shop_cdc",
            "publication.tables": "public.customers, public.orders",
            "topic.prefix": "shop",
            "checkpoint.path": os.path.join(tmp.path, "shop.checkpoint"),
            "kafka.bootstrap.servers": kafka.bootstrap,
            "snapshot.mode": "initial",  # pgcdc's default, written out for the demo
        })
        print(f"configuration ({cfg}):")
        with open(cfg) as f:
            print("  " + f.read().strip().replace("\n", "\n  "))

        step("pgcdc setup: check the server, create publication and slot")
        pgcdc("setup", "-c", cfg)

        step("pgcdc start: streaming in the background")
        with pgcdc_test.start_pgcdc(["start", "-c", cfg], name="pgcdc start") as daemon:
            daemon.wait_for_output(r"streaming from slot", timeout=30)

            step("changes in PostgreSQL")
            statements = [
                "INSERT INTO customers (name, email) VALUES ('Linus', 'linus@example.com')",
                "INSERT INTO orders (customer_id, total, note) VALUES "
                "(1, 19.99, 'first order'), (2, 1234567.89, 'café ☕ \"quoted\"')",
                "UPDATE customers SET email = 'grace@example.com' WHERE name = 'Grace'",
                "UPDATE orders SET total = total + 1 WHERE id = 1",
                "DELETE FROM customers WHERE name = 'Linus'",
            ]
            for s in statements:
                print(f"  {s};")
                pg.sql(s)
            pg.flush_wal()
            # 2 rows read, 1 + 2 inserts, 2 updates, a delete and its tombstone
            expected = 2 + 3 + 2 + 2

            step("pgcdc tail: what Kafka consumers see")
            deadline = time.time() + 60
            lines = []
            while len(lines) < expected and time.time() < deadline:
                r = subprocess.run(
                    [PGCDC, "tail", "-c", cfg, "--from-beginning", "--max", str(expected)],
                    capture_output=True, text=True, timeout=120)
                lines = [l for l in r.stdout.splitlines() if l.strip()]
                if len(lines) < expected:
                    time.sleep(1)
            print(f"$ pgcdc tail -c {cfg} --from-beginning --max {expected}")
            if len(lines) < expected:
                raise SystemExit(f"only {len(lines)} of {expected} messages arrived in Kafka")
            print("\nsummary (topic [partition@offset] op key row):")
            for line in lines:
                print("  " + show(line))
            print("\none message in full:")
            print(json.dumps(json.loads(lines[0]), indent=2, ensure_ascii=False))

            step("pgcdc status")
            pgcdc("status", "-c", cfg, check=False)

            step("stopping pgcdc (SIGTERM): final checkpoint, clean exit")
            rc = daemon.terminate()
            print(f"pgcdc exited with status {rc}")
        step("done: the throwaway server and broker are removed")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: cleaned up", file=sys.stderr)
        sys.exit(130)
