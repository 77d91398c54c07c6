"""test_kafka_real_errors.py - what a real Apache Kafka refuses: each a clear stop that loses nothing.

On a real KRaft node (the test broker cannot refuse these):

- a message over the broker's message.max.bytes;
- a topic that does not exist while auto.create.topics.enable=false;
- a table whose name is not a valid Kafka topic name (sanitised, as Debezium does);
- SASL/SCRAM with a wrong password (and the right one: accepted, or with a
  librdkafka older than 2.6.1, which cannot do SCRAM with Kafka 4 brokers,
  refused with a message that says so);
- a TLS listener whose certificate does not match the configured CA
  (refused), and the same listener with the right CA (accepted).

Each refusal must stop pgcdc with an error that names the topic or setting
and what to do, leave the checkpoint and the slot before the refused change,
and once the cause is fixed the next run delivers every change exactly once.
"""

import os
import re
import subprocess
import time

import pgcdc_test
from pgcdc_test import run_pgcdc, wait_until

import kafka_check as kc
import test_kafka_errors as ke

TOPIC = "pgcdc.public.t"
SCRAM_USER = "pgcdc"
SCRAM_PASSWORD = "Right-Scram-Secret-1"
WRONG_PASSWORD = "Wrong-Scram-Secret-2"


def librdkafka_version():
    """The librdkafka pgcdc runs with, from `pgcdc version`, as a tuple of ints."""
    out = run_pgcdc(["version"]).stdout
    m = re.search(r"librdkafka\D*(\d+)\.(\d+)\.(\d+)", out)
    if m is None:
        raise AssertionError(f"pgcdc version names no librdkafka version:\n{out}")
    return tuple(int(x) for x in m.groups())


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{r.stderr}")


def make_ca(d, name):
    """A self-signed CA in d/name.key, d/name.pem."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)


def make_server_cert(d, ca):
    """A key and certificate for 127.0.0.1 signed by ca; returns the broker's PEM keystore
    (PKCS#8 key followed by the certificate)."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.p8", cwd=d)
    keystore = os.path.join(d, "keystore.pem")
    with open(keystore, "w") as out:
        for part in ("server.p8", "server.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    return keystore


class RealKafkaErrorsTest(ke.KafkaErrorsBase):
    def refused_then_delivered(self, pg, cfg, ckpt, patterns, fix=None, timeout=90):
        """pgcdc --endpos must stop non-zero with every regex of patterns in its stderr, and
        the checkpoint and slot not past the refused transaction; then fix() (if given)
        removes the cause. Returns the refused run."""
        end = kc.end_lsn(pg)
        r = run_pgcdc(["start", "-c", cfg, "--endpos", end], timeout=timeout)
        print(f"\n{self._testMethodName}: exit {r.returncode}; last lines:\n"
              + "\n".join(r.stderr.splitlines()[-4:]), flush=True)
        self.assertNotEqual(r.returncode, 0, r)
        for p in patterns:
            self.assertRegex(r.stderr, p)
        self.assertLess(len(r.stderr), 20000, "the error output is flooded")
        self.assert_not_past(pg, ckpt, self.before_refused)
        if fix is not None:
            fix()
        return r

    def make_rows(self, pg, value="v", third=True):
        """Row 1 committed alone, then row 2 (the one to be refused, value), then row 3."""
        pg.sql("INSERT INTO t VALUES (1, 'first')")
        pg.flush_wal()
        conn = pg.connect(autocommit=False)
        cur = conn.cursor()
        cur.execute("INSERT INTO t VALUES (2, %s)", (value,))
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        self.before_refused = pgcdc_test.lsn_int(cur.fetchone()[0])
        conn.commit()
        conn.close()
        if third:
            pg.sql("INSERT INTO t VALUES (3, 'after')")
        pg.flush_wal()

    def test_message_over_the_brokers_message_max_bytes(self):
        kafka = self.kafka_cluster(config={"message.max.bytes": 100_000})
        kafka.create_topic(TOPIC, 1)
        pg = self.make_source()
        # one message per request, so that row 3 is in flight, in its own request, while
        # the broker refuses row 2: Kafka must not take row 3 after refusing row 2, or the
        # restart would take row 3 for the end of what Kafka holds and skip row 2
        cfg, ckpt = self.config(pg, kafka.bootstrap, **{"kafka.batch.num.messages": "1",
                                                        "kafka.linger.ms": "0"})
        # under the producer's 1 MB, over the broker's limit
        self.make_rows(pg, "x" * 300_000)
        self.refused_then_delivered(
            pg, cfg, ckpt, [r"(?i)too large", f'"{TOPIC}"', r"message\.max\.bytes"],
            lambda: kafka.set_broker_config({"message.max.bytes": 2_000_000}))
        self.deliver_later(pg, cfg, kafka.bootstrap, [1, 2, 3])

    def test_missing_topic_without_auto_create(self):
        kafka = self.kafka_cluster(config={"auto.create.topics.enable": "false"})
        pg = self.make_source()
        cfg, ckpt = self.config(pg, kafka.bootstrap)
        self.make_rows(pg)
        self.before_refused = kc.slot_confirmed(pg, "pgcdc") + 1  # nothing may be delivered
        self.refused_then_delivered(
            pg, cfg, ckpt,
            [f'"{TOPIC}"', r"(?i)does not exist|unknown topic", r"auto\.create\.topics\.enable"],
            lambda: kafka.create_topic(TOPIC, 2))
        self.deliver_later(pg, cfg, kafka.bootstrap, [1, 2, 3])

    def test_table_name_not_a_valid_topic_name(self):
        """A table whose name has characters Kafka refuses in topic names ("order items")
        goes to a sanitised topic, as Debezium names it ("order_items"), with a warning
        that names the table; the restart's scan reads that topic too."""
        kafka = self.kafka_cluster()
        pg = self.pg_cluster()
        pg.sql('CREATE TABLE "order items" (id int PRIMARY KEY, v text)')
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)")
        pg.sql("CREATE PUBLICATION pgcdc FOR ALL TABLES")
        pg.sql("SELECT pg_create_logical_replication_slot('pgcdc', 'pgoutput')")
        cfg, ckpt = self.config(pg, kafka.bootstrap)
        pg.sql("INSERT INTO t VALUES (1, 'first')")
        pg.sql("""INSERT INTO "order items" VALUES (2, 'sanitised topic')""")
        pg.sql("INSERT INTO t VALUES (3, 'after')")
        sanitised = "pgcdc.public.order_items"
        # killed before any checkpoint: the restart replays all three rows, and must find
        # row 2 in the sanitised topic (not the one the table's name would give)
        p = self.start_pgcdc(["start", "-c", cfg, "-o", "checkpoint.interval=1h"])
        def delivered():
            try:
                return sum(high for t in (TOPIC, sanitised)
                           for _, high in kc.watermarks(kafka.bootstrap, t).values())
            except Exception:  # the sanitised topic not created yet
                return 0
        wait_until(lambda: delivered() >= 3, timeout=60, message="three rows in Kafka")
        self.assertEqual(p.kill(), -9)
        err1 = p.stderr()
        self.assertIn('table "public.order items" goes to topic "pgcdc.public.order_items"',
                      err1)
        self.assertEqual(err1.count("goes to topic"), 1, "warned more than once")
        r = run_pgcdc(["start", "-c", cfg, "--endpos", kc.end_lsn(pg)], timeout=90)
        self.assertEqual(r.returncode, 0, r)
        msgs, _ = kc.read_topics(kafka.bootstrap, [TOPIC, sanitised], "json")
        got = sorted((m["topic"], m["event"]["after"]["id"]) for m in msgs)
        self.assertEqual(got, sorted([(TOPIC, "1"), (TOPIC, "3"), (sanitised, "2")]))

    def scram_cluster(self):
        return self.kafka_cluster(
            listeners={"SASL": "SASL_PLAINTEXT"},
            scram_users=[("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASSWORD)],
            config={
                "sasl.enabled.mechanisms": "SCRAM-SHA-256",
                "listener.name.sasl.scram-sha-256.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            })

    def test_sasl_scram_wrong_password(self):
        kafka = self.scram_cluster()
        kafka.create_topic(TOPIC, 2)
        pg = self.make_source()
        sasl = {"kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanisms": "SCRAM-SHA-256",
                "kafka_sasl_username": SCRAM_USER}
        cfg, ckpt = self.config(pg, kafka.bootstrap_of("SASL"), kafka_sasl_password=WRONG_PASSWORD,
                                **sasl)
        self.make_rows(pg)
        self.before_refused = kc.slot_confirmed(pg, "pgcdc") + 1
        t0 = time.monotonic()
        r = self.refused_then_delivered(
            pg, cfg, ckpt, [r"(?i)refused pgcdc's credentials", r"kafka\.sasl\.username",
                            f'"{SCRAM_USER}"', "SCRAM-SHA-256", r"kafka\.sasl\.password"],
            timeout=120)
        self.assertLess(time.monotonic() - t0, 60,
                        "a wrong password must stop pgcdc, not leave it retrying")
        self.assertNotIn(WRONG_PASSWORD, r.stderr + r.stdout)

        good, _ = self.config(pg, kafka.bootstrap_of("SASL"), kafka_sasl_password=SCRAM_PASSWORD,
                              checkpoint_path=ckpt, **sasl)
        r = run_pgcdc(["start", "-c", good, "--endpos", kc.end_lsn(pg)], timeout=90)
        self.assertNotIn(SCRAM_PASSWORD, r.stderr + r.stdout)
        if librdkafka_version() < (2, 6, 1):
            # librdkafka before 2.6.1 repeats the client nonce in SCRAM's final message, which
            # Kafka 4 brokers refuse whatever the password: pgcdc must say so
            self.assertEqual(r.returncode, 1, r)
            self.assertIn("older than 2.6.1", r.stderr)
            self.assert_not_past(pg, ckpt, self.before_refused)
            print(f"\nthe right password: refused, as librdkafka {librdkafka_version()} cannot do "
                  "SCRAM with Kafka 4; pgcdc says so", flush=True)
            return
        self.assertEqual(r.returncode, 0, r)
        msgs, _ = kc.read_topics(kafka.bootstrap, [TOPIC], "json")
        self.assertEqual(sorted(int(m["event"]["after"]["id"]) for m in msgs), [1, 2, 3])

    def test_tls_certificate_of_another_ca_refused_right_ca_accepted(self):
        d = self.tmpdir()
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        keystore = make_server_cert(d, "ca")
        kafka = self.kafka_cluster(listeners={"SSL": "SSL"}, config={
            "ssl.keystore.type": "PEM", "ssl.keystore.location": keystore})
        kafka.create_topic(TOPIC, 2)
        pg = self.make_source()
        tls = {"kafka_security_protocol": "SSL"}
        cfg, ckpt = self.config(pg, kafka.bootstrap_of("SSL"),
                                kafka_ssl_ca_location=os.path.join(d, "other-ca.pem"), **tls)
        self.make_rows(pg)
        self.before_refused = kc.slot_confirmed(pg, "pgcdc") + 1
        t0 = time.monotonic()
        self.refused_then_delivered(
            pg, cfg, ckpt, [r"(?i)certificate verify failed", r"kafka\.ssl\.ca\.location",
                            "other-ca.pem"], timeout=120)
        self.assertLess(time.monotonic() - t0, 60, "a certificate from another CA must stop "
                        "pgcdc, not leave it retrying")
        good, _ = self.config(pg, kafka.bootstrap_of("SSL"),
                              kafka_ssl_ca_location=os.path.join(d, "ca.pem"),
                              checkpoint_path=ckpt, **tls)
        r = run_pgcdc(["start", "-c", good, "--endpos", kc.end_lsn(pg)], timeout=90)
        self.assertEqual(r.returncode, 0, r)
        msgs, _ = kc.read_topics(kafka.bootstrap, [TOPIC], "json")
        self.assertEqual(sorted(int(m["event"]["after"]["id"]) for m in msgs), [1, 2, 3])


if __name__ == "__main__":
    pgcdc_test.main()
