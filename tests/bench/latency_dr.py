"""latency_dr.py - commit-to-delivery-report latency at a steady rate, as pgcdc itself measures it.

pgcdc logs, when it stops, the distribution of the time from each
transaction's commit (the commit timestamp in the WAL) to the Kafka delivery
report of each of its messages. This script runs pgbench's one-UPDATE
transaction at --rate tx/s for --seconds against a throwaway server with
pgcdc streaming into the test broker and nothing else reading, then prints
that line. (bench.py's latency mode adds a consumer, whose fetches load the
single-threaded test broker and measure it more than pgcdc.)

    tests/bench/run.sh builds the binaries; then
    PGCDC_BIN=build-bench/src/pgcdc PGCDC_TESTBROKER_BIN=build-bench/tests/tools/pgcdc-testbroker \\
        PYTHONPATH=tests/integration /usr/bin/python3 tests/bench/latency_dr.py --rate 5000 --seconds 60
"""

import argparse
import os
import subprocess
import tempfile
import time

from pgcdc_test import Broker, PgCluster, start_pgcdc, write_config

PGBIN = "/usr/lib/postgresql/15/bin"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            PgCluster(settings={"synchronous_commit": "on"}) as pg, \
            Broker(topics={"lat.public.pgbench_accounts": 16}) as kafka:
        subprocess.run([f"{PGBIN}/pgbench", "-i", "-s", "10", "-q", pg.dsn()], check=True,
                       capture_output=True)
        pg.sql("CREATE PUBLICATION pgcdc FOR TABLE pgbench_accounts")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        cfg = write_config(os.path.join(tmp, "pgcdc.conf"), {
            "source.dsn": pg.dsn(), "topic.prefix": "lat",
            "checkpoint.path": os.path.join(tmp, "pgcdc.checkpoint"),
            "kafka.bootstrap.servers": kafka.bootstrap})
        script = os.path.join(tmp, "update.sql")
        with open(script, "w") as f:
            f.write("\\set aid random(1, 1000000)\n"
                    "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n")
        with start_pgcdc(["start", "-c", cfg]) as p:
            p.wait_for_output("streaming from slot")
            r = subprocess.run([f"{PGBIN}/pgbench", "-n", "-f", script, "-R", str(args.rate),
                                "-T", str(args.seconds), "-c", "4", "-j", "2", pg.dsn()],
                               capture_output=True, text=True, check=True)
            print("\n".join(l for l in r.stdout.splitlines() if "tps" in l or "latency" in l))
            time.sleep(2)
            p.terminate()
            print("\n".join(l for l in p.stderr().splitlines() if "delivery report" in l))


if __name__ == "__main__":
    main()
