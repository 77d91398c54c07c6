"""test_crash.py - kill -9 at random moments under a steady workload: nothing lost, nothing twice.

A writer thread bumps the version of a few random rows of a 200-row table per
transaction, and every two seconds bumps every row twice in one transaction
(400 changes), while pgcdc streams into Kafka. pgcdc is killed with SIGKILL
at random moments (0.2-3 s after it starts) at least 20 times (or
PGCDC_TEST_CRASH_KILLS), and also made
to kill itself at each checkpoint crash point (between write, fsync, rename
and directory fsync of the checkpoint file, and right after the last
checkpoint of a clean stop); it is restarted after each crash. After every
crash the checkpoint file, if there is one, must be whole (its `lsn` line,
its CRC-32 right), `pgcdc status` must call it ok, it must never move
backwards, and the slot's confirmed position must not be ahead of it.

Finally the writer stops, pgcdc drains to an endpos, and every message is
read back: for every row, each version from 0 to the row's final version in
the database must be in Kafka exactly once, in order, in the row's partition.

PGCDC_TEST_SEED fixes the random choices (the timing still varies).
"""

import json
import os
import random
import signal
import time

import pgcdc_test
from pgcdc_test import TestCase, lsn_int, run_pgcdc, wait_until

import exactly_once as eo

PREFIX = "cr"
TABLE = "vrows"
ROWS = 200
TOPIC = f"{PREFIX}.public.{TABLE}"
# the version suite runs a shorter loop (PGCDC_TEST_CRASH_KILLS) on every other PostgreSQL
PLAIN_KILLS = int(os.environ.get("PGCDC_TEST_CRASH_KILLS") or 20)
CRASHPOINTS = ["checkpoint-after-write", "checkpoint-after-fsync", "checkpoint-after-rename",
               "shutdown-after-checkpoint"]
CRASHPOINT_RUNS = 2  # per crash point


class CrashTest(TestCase):
    def test_sigkill_at_random_moments_loses_and_repeats_nothing(self):
        t_start = time.monotonic()
        seed = int(os.environ.get("PGCDC_TEST_SEED") or random.randrange(1 << 30))
        print(f"\nseed {seed} (set PGCDC_TEST_SEED to repeat the choices)", flush=True)
        rng = random.Random(seed)

        pg = self.pg_cluster()
        eo.make_versioned_table(pg, TABLE, ROWS)
        # 16 partitions: the test broker keeps only ~5 MB per partition
        kafka = self.broker(topics={TOPIC: 16})
        ckpt = os.path.join(self.tmpdir(), "pgcdc.checkpoint")
        cfg = self.write_config({
            "source.dsn": pg.dsn(),
            "topic.prefix": PREFIX,
            "checkpoint.path": ckpt,
            "checkpoint.interval": "200ms",  # many checkpoint writes: many crash point passes
            "status.interval": "1s",
            "kafka.bootstrap.servers": kafka.bootstrap,
        })

        writer = eo.Workload(pg.dsn(), TABLE, ROWS, seed=rng.random(), pause=0.01,
                             bulk_every=2.0)
        writer.start()
        self.addCleanup(writer.stop_event.set)

        plan = ["kill"] * PLAIN_KILLS + CRASHPOINTS * CRASHPOINT_RUNS
        rng.shuffle(plan)
        plan.insert(0, "kill")  # the first run starts without a checkpoint
        last_lsn = None
        ckpt_lsns = []
        summary = []
        waited = 0  # kills that came only after the run had moved the checkpoint
        for i, kind in enumerate(plan, 1):
            env = {}
            if kind == "shutdown-after-checkpoint":
                env["PGCDC_CRASHPOINT"] = kind  # passed once, at the stop
            elif kind != "kill":
                env["PGCDC_CRASHPOINT"] = f"{kind}:{rng.randint(1, 3)}"
            p = pgcdc_test.start_pgcdc(["start", "-c", cfg], env=env, name=f"pgcdc#{i}")
            self.addCleanup(p.close)
            try:
                if kind == "kill":
                    # half the kills may land during start-up (on three nodes, often in the
                    # wait after an unclean stop); the others come only once this run has
                    # moved the checkpoint, so that it moves between crashes however slow
                    # the machine is: each restart must make progress within a minute
                    if i % 2 == 0:
                        p.wait_for_output(r"streaming from slot", timeout=60)
                        before = last_lsn or 0
                        wait_until(lambda: os.path.exists(ckpt)
                                   and eo.parse_checkpoint(ckpt) > before, timeout=60,
                                   interval=0.1,
                                   message=f"run {i} moving the checkpoint past "
                                           f"{eo.fmt_lsn(before) if before else 'none'}")
                        waited += 1
                    time.sleep(rng.uniform(0.2, 3.0))
                    self.assertTrue(p.alive(), f"run {i} exited by itself ({p.poll()}) before "
                                               f"its kill:\n{p.stderr()[-3000:]}")
                    rc = p.kill()
                elif kind == "shutdown-after-checkpoint":
                    time.sleep(rng.uniform(0.5, 2.5))
                    self.assertTrue(p.alive(), f"run {i} exited by itself ({p.poll()}):\n"
                                               f"{p.stderr()[-3000:]}")
                    p.signal(signal.SIGTERM)
                    rc = p.wait(60)
                else:
                    rc = p.wait(60)  # the crash point kills it
                self.assertEqual(rc, -signal.SIGKILL,
                                 f"run {i} ({kind} {env}) ended with {rc}, not SIGKILL:\n"
                                 f"{p.stderr()[-3000:]}")
            finally:
                p.close()
            self.assertIsNone(writer.error, f"workload failed: {writer.error!r}")

            # the checkpoint is the old one or the new one, never a mix
            tmp = ckpt + ".tmp"
            if kind in ("checkpoint-after-write", "checkpoint-after-fsync"):
                # killed between writing the new file and renaming it over the old one
                self.assertTrue(os.path.exists(tmp), f"run {i} ({kind}): no {tmp}")
                newer = eo.parse_checkpoint(tmp)
                if os.path.exists(ckpt):
                    # newer, or the same LSN when the write only cleared stopped_cleanly
                    # (the first write of a run after a clean stop)
                    self.assertLessEqual(eo.parse_checkpoint(ckpt), newer)
            elif kind == "checkpoint-after-rename":
                self.assertFalse(os.path.exists(tmp), f"run {i} ({kind}): {tmp} left behind")
            state = "absent"
            if os.path.exists(ckpt):
                lsn = eo.parse_checkpoint(ckpt)
                state = "ok"
                if last_lsn is not None:
                    self.assertGreaterEqual(lsn, last_lsn,
                                            f"run {i} ({kind}): checkpoint moved back from "
                                            f"{eo.fmt_lsn(last_lsn)} to {eo.fmt_lsn(lsn)}")
                last_lsn = lsn
                ckpt_lsns.append(lsn)
                # flush reported to the server is never ahead of the durable checkpoint
                confirmed = lsn_int(pg.slot("pgcdc")["confirmed_flush_lsn"])
                self.assertLessEqual(confirmed, lsn,
                                     f"run {i} ({kind}): slot confirmed {eo.fmt_lsn(confirmed)} "
                                     f"is ahead of the checkpoint {eo.fmt_lsn(lsn)}")
            else:
                self.assertIsNone(last_lsn, f"run {i} ({kind}): the checkpoint file vanished")
            st = run_pgcdc(["status", "-c", cfg, "--json"], timeout=30)
            self.assertIn(st.returncode, (0, 5), st)
            got = json.loads(st.stdout)["checkpoint"]
            self.assertEqual(got["state"], state, f"run {i} ({kind}): status says {got}")
            if state == "ok":
                self.assertEqual(lsn_int(got["lsn"]), last_lsn, got)
            summary.append((kind, env.get("PGCDC_CRASHPOINT", ""), state,
                            eo.fmt_lsn(last_lsn) if last_lsn else "-"))

        writer.finish()
        # every waited kill's run moved the checkpoint past all earlier ones
        self.assertGreaterEqual(len(set(ckpt_lsns)), waited,
                                "the checkpoint hardly moved between crashes")
        end = eo.end_lsn(pg)
        r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=120)
        self.assertEqual(r.returncode, 0, r)
        skipped = [ln for ln in r.stderr.splitlines() if "skipped" in ln]

        msgs = eo.read_all(kafka.bootstrap, [TOPIC])
        counts = eo.count_versions(msgs, eo.final_versions(pg, TABLE))
        kills = sum(1 for k in plan if k == "kill")
        print(f"{len(plan)} crashes: {kills} SIGKILL at random moments, "
              f"{len(plan) - kills} at crash points ({', '.join(CRASHPOINTS)}); "
              f"{writer.commits} transactions ({writer.bulk_commits} of {2 * ROWS} changes); "
              f"{len(set(ckpt_lsns))} distinct checkpoints; drain: {'; '.join(skipped) or '-'}",
              flush=True)
        for n, (kind, cp, state, lsn) in enumerate(summary, 1):
            print(f"  crash {n:2}: {kind:26} {cp:30} checkpoint {state} {lsn}")
        print(counts.line(), flush=True)
        print(f"test took {time.monotonic() - t_start:.0f} s", flush=True)
        counts.assert_exact(self)
        self.assertGreaterEqual(kills, PLAIN_KILLS)
        self.assertEqual(counts.messages, counts.expected)


if __name__ == "__main__":
    pgcdc_test.main()
