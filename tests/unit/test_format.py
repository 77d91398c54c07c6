"""test_format.py - every C source and header is formatted as the checked-in .clang-format says."""

import os
import shutil
import subprocess
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DIRS = ("src", "include", "tests")


def c_files():
    out = []
    for top in DIRS:
        for d, subdirs, files in os.walk(os.path.join(ROOT, top)):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            out += [os.path.join(d, f) for f in sorted(files) if f.endswith((".c", ".h"))
                    and not f.endswith((".pb-c.c", ".pb-c.h"))]
    return out


class FormatTest(unittest.TestCase):
    def test_sources_are_clang_formatted(self):
        exe = shutil.which("clang-format")
        self.assertIsNotNone(exe, "clang-format is not installed (scripts/deps.sh installs it)")
        files = c_files()
        self.assertGreater(len(files), 50)
        p = subprocess.run([exe, "--dry-run", "-Werror", f"--style=file:{ROOT}/.clang-format"]
                           + files, capture_output=True, text=True)
        bad = sorted({line.split(":", 1)[0] for line in p.stderr.splitlines()
                      if ": error:" in line})
        self.assertEqual(p.returncode, 0,
                         "not formatted (run clang-format -i on them):\n  "
                         + "\n  ".join(os.path.relpath(f, ROOT) for f in bad) + "\n" + p.stderr[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
