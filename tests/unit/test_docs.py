"""test_docs.py - the configuration reference lists every key pgcdc knows, with its real default."""

import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class ConfigDocTest(unittest.TestCase):
    def test_every_key_documented_with_its_default(self):
        out = subprocess.run([os.environ["PGCDC_BIN"], "config", "--list"], capture_output=True,
                             text=True, check=True).stdout
        keys = re.findall(r"^(\S+)\s+default: (.*)$", out, re.M)
        self.assertGreater(len(keys), 20)
        with open(os.path.join(ROOT, "docs", "CONFIGURATION.md")) as f:
            doc = f.read()
        for key, default in keys:
            if key == "kafka.<property>":
                continue
            row = re.search(r"^\| `" + re.escape(key) + r"` \| (.*?) \|", doc, re.M)
            self.assertIsNotNone(row, f"{key} missing from docs/CONFIGURATION.md")
            shown = row.group(1).strip("`")
            self.assertEqual(shown, default, f"default of {key} differs")

    def test_readme_starts_with_the_two_commands(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            head = f.read().split("## ")[0]
        self.assertIn("bash scripts/quickstart.sh", head)
        self.assertIn("bash scripts/test.sh", head)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
