"""test_cli.py - the pgcdc binary's command line: help, version, exit codes, configuration errors."""

import os
import subprocess
import sys
import tempfile
import unittest

PGCDC = os.environ["PGCDC_BIN"]


def run(*args):
    return subprocess.run([PGCDC, *args], capture_output=True, text=True, timeout=30)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def conf(self, text):
        path = os.path.join(self.dir.name, "f.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_help_lists_every_command(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("setup", "start", "resume", "status", "teardown", "snapshot", "tail", "config",
                    "version"):
            self.assertIn(cmd, r.stdout)
        for cmd in ("setup", "start", "resume", "status", "teardown", "snapshot", "tail", "config"):
            r = run(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn(f"usage: pgcdc {cmd}", r.stdout)
            self.assertIn("--config", r.stdout)

    def test_version_names_the_libraries(self):
        r = run("version")
        self.assertEqual(r.returncode, 0)
        for lib in ("pgcdc ", "libpq ", "librdkafka ", "jansson ", "protobuf-c "):
            self.assertRegex(r.stdout, r"(?m)^" + lib + r"\d+\.\d+")

    def test_usage_errors_exit_2(self):
        for args in (["frobnicate"], ["start", "--bogus"], ["status", "--dry-run"],
                     ["start", "--endpos", "nonsense"], ["tail", "--max", "-3"], []):
            r = run(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn("pgcdc", r.stderr)

    def test_status_with_unknown_key(self):
        path = self.conf("slot.name = s\n\nslot.nmae = x\n")
        r = run("status", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{path}:3: unknown key "slot.nmae"', r.stderr)
        self.assertIn('did you mean "slot.name"', r.stderr)

    def test_status_with_malformed_line(self):
        path = self.conf("# ok\nthis line has no equals sign\n")
        r = run("status", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:2: malformed line", r.stderr)

    def test_status_with_invalid_kafka_property(self):
        path = self.conf("kafka.bootstrap.servers = 127.0.0.1:9\nkafka.acks = sometimes\n")
        r = run("status", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{path}:2: invalid kafka property "kafka.acks"', r.stderr)
        path = self.conf("kafka.no.such.property = 1\n")
        r = run("status", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{path}:1: invalid kafka property "kafka.no.such.property"', r.stderr)

    def test_status_with_invalid_value(self):
        path = self.conf("format = xml\n")
        r = run("status", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{path}:1: invalid value "xml" for key "format"', r.stderr)
        self.assertIn("json, protobuf", r.stderr)

    def test_override_errors_name_the_option(self):
        r = run("config", "-o", "status.interval=soon")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('-o status.interval: invalid value "soon"', r.stderr)

    def test_backoff_min_above_max_refused_at_load(self):
        path = self.conf("reconnect.backoff.min = 10s\nreconnect.backoff.max = 2s\n")
        r = run("config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:1: reconnect.backoff.min (10000 ms) is greater than "
                      f"reconnect.backoff.max (2000 ms, {path}:2)", r.stderr)
        r = run("config", "-c", path, "-o", "reconnect.backoff.max=20s")
        self.assertEqual(r.returncode, 0, r.stderr)
        # against the default maximum (30s), named as such
        r = run("config", "-o", "reconnect.backoff.min=1m")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("-o reconnect.backoff.min: reconnect.backoff.min (60000 ms) is greater "
                      "than reconnect.backoff.max (30000 ms, the default)", r.stderr)

    def test_malformed_secret_line_does_not_echo_the_secret(self):
        for line in ("kafka.sasl.password hunter2-Secret", "source.dsn postgresql://u:hunter2-Secret@h/d",
                     "source.dsn host=h password=hunter2-Secret"):
            path = self.conf(f"# x\n{line}\n")
            r = run("status", "-c", path)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(f"{path}:2: malformed line", r.stderr)
            self.assertNotIn("hunter2", r.stderr + r.stdout)
            self.assertIn(line.split()[0], r.stderr)

    def test_unparsable_dsn_does_not_print_its_password(self):
        """libpq quotes an unparsable URI whole in its error; pgcdc must mask the password."""
        for cmd in ("status", "setup", "start"):
            r = run(cmd, "-o", "source.dsn=postgresql://u:hunter2-Secret@[::1:5432/d",
                    "-o", "kafka.bootstrap.servers=127.0.0.1:1")
            self.assertNotEqual(r.returncode, 0, r.stderr)
            self.assertIn("IPv6 host address in URI", r.stderr)
            self.assertIn("postgresql://u:********@[::1:5432/d", r.stderr)
            self.assertNotIn("hunter2", r.stderr + r.stdout)

    def test_malformed_line_with_empty_key_is_echoed(self):
        path = self.conf("# x\n = orphan value\n")
        r = run("config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{path}:2: malformed line "= orphan value"', r.stderr)

    def test_nul_byte_in_a_value_refused(self):
        path = self.conf("slot.name = pg\0cdc\n")
        r = run("config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:1: the line holds a NUL byte", r.stderr)

    def test_invalid_slot_name_and_topic_prefix_refused_at_load(self):
        """Both used to pass `pgcdc config`: the slot name failed in setup after the
        publication was made, the prefix at the first event."""
        for text, want in (("slot.name = My-Slot\n", 'invalid slot.name "My-Slot"'),
                           ("slot.name = " + "s" * 64 + "\n", "invalid slot.name"),
                           ("topic.prefix = shop/eu\n", 'invalid topic.prefix "shop/eu"'),
                           ("topic.prefix = " + "p" * 201 + "\n", "invalid topic.prefix")):
            path = self.conf("# x\n" + text)
            for cmd in ("config", "setup"):
                r = run(cmd, "-c", path)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(f"{path}:2: {want}", r.stderr)

    def test_directory_as_config_file_exits_2(self):
        d = os.path.dirname(self.conf("# x\n"))
        r = run("status", "-c", d)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'configuration file "{d}" is a directory', r.stderr)

    def test_missing_config_file(self):
        r = run("status", "-c", os.path.join(self.dir.name, "absent.conf"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("absent.conf", r.stderr)

    def test_show_masks_secrets(self):
        path = self.conf("source.dsn = host=h user=u password=Sup3rSecret\n"
                         "kafka.sasl.password = AlsoSecret\n")
        r = run("config", "-c", path, "--show")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Sup3rSecret", r.stdout)
        self.assertNotIn("AlsoSecret", r.stdout)
        self.assertIn("password=********", r.stdout)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
