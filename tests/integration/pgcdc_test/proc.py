"""proc.py - running the real pgcdc binary (PGCDC_BIN) from tests, and writing its config.

    write_config(path, {"source.dsn": pg.dsn(), "kafka.bootstrap.servers": kafka.bootstrap})
    r = run_pgcdc(["setup", "-c", path])            # finished process, output captured
    with start_pgcdc(["start", "-c", path]) as p:   # long-running daemon
        p.wait_for_output("streaming", timeout=20)
        ...
        rc = p.terminate()                          # SIGTERM, wait, exit code
"""

import os
import re
import signal
import subprocess
import time

from . import util


def pgcdc_bin():
    b = os.environ.get("PGCDC_BIN")
    if not b:
        raise RuntimeError("PGCDC_BIN is not set (run the tests through meson)")
    return b


def _config_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_config(path, settings):
    """Write settings as `key = value` lines (dict order); returns path.

    Tests that do not test snapshots stream only: snapshot.mode = no_data is added (last,
    so that the line numbers of the other keys stay) unless settings name it. A value of
    None leaves a key out (and, for snapshot.mode, keeps pgcdc's default)."""
    with open(path, "w") as f:
        for k, v in settings.items():
            if v is None:
                continue
            f.write(f"{k} = {_config_value(v)}\n")
        if "snapshot.mode" not in settings:
            f.write("snapshot.mode = no_data\n")
    return os.fspath(path)


class PgcdcResult:
    """A finished pgcdc run: returncode, stdout, stderr (text)."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return (f"PgcdcResult({self.args!r}, rc={self.returncode})\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def run_pgcdc(args, timeout=60.0, env=None, input=None, cwd=None, check=None):
    """Run pgcdc ARGS to completion and return a PgcdcResult.

    env is merged into os.environ. check=True raises AssertionError unless the
    exit code is 0; check=N expects exit code N. A run longer than timeout is
    killed and reported as AssertionError with its output.
    """
    argv = [pgcdc_bin()] + [os.fspath(a) for a in args]
    e = dict(os.environ)
    e.update(env or {})
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                           env=e, cwd=cwd, preexec_fn=util.die_with_parent)
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout.decode(errors="replace") if isinstance(ex.stdout, bytes) else ex.stdout
        err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else ex.stderr
        raise AssertionError(f"pgcdc {' '.join(map(str, args))} did not finish in {timeout}s\n"
                             f"--- stdout ---\n{out}\n--- stderr ---\n{err}") from None
    r = PgcdcResult(argv[1:], p.returncode, p.stdout, p.stderr)
    want = 0 if check is True else check
    if want is not None and want is not False and r.returncode != want:
        raise AssertionError(f"expected exit code {want}: {r!r}")
    return r


class PgcdcProcess:
    """A pgcdc process running in the background; a context manager.

    stdout and stderr go to files in a private temp dir (no pipe can fill up);
    read them with .stdout() / .stderr() at any time.
    """

    def __init__(self, args, env=None, cwd=None, name="pgcdc"):
        self.args = [os.fspath(a) for a in args]
        self.name = name
        self._tmp = util.TempDir(prefix="pgcdc-proc-")
        self.stdout_path = os.path.join(self._tmp.path, "stdout")
        self.stderr_path = os.path.join(self._tmp.path, "stderr")
        e = dict(os.environ)
        e.update(env or {})
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([pgcdc_bin()] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, env=e, cwd=cwd,
                                     preexec_fn=util.die_with_parent)
        self.pid = self.proc.pid
        self.returncode = None
        self.saved_output = None  # (stdout, stderr) saved at close()
        util.register_cleanup(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.report()
        self.close()
        return False

    def _read(self, path, saved_index):
        if self.saved_output is not None:
            return self.saved_output[saved_index]
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        return self._read(self.stdout_path, 0)

    def stderr(self):
        return self._read(self.stderr_path, 1)

    def alive(self):
        return self.proc.poll() is None

    def poll(self):
        self.returncode = self.proc.poll()
        return self.returncode

    def wait(self, timeout=30.0):
        """Wait for exit; returns the exit code (negative: killed by that signal).

        Raises AssertionError if still running after timeout seconds.
        """
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s\n"
                                 f"{util.tail(self.stderr_path, 40)}") from None
        return self.returncode

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def terminate(self, timeout=15.0):
        """SIGTERM and wait for exit; SIGKILL after timeout. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s, killed\n"
                                 f"{util.tail(self.stderr_path, 40)}") from None
        return self.returncode

    def kill(self):
        """SIGKILL (a crash) and reap; returns the exit code."""
        self.signal(signal.SIGKILL)
        self.returncode = self.proc.wait()
        return self.returncode

    def wait_for_output(self, pattern, timeout=30.0, stream="stderr"):
        """Wait until regex pattern matches the stream's text; returns the match.

        Fails early if the process exits without printing it.
        """
        rx = re.compile(pattern)
        read = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(read())
            if m:
                return m
            if not self.alive():
                m = rx.search(read())
                if m:
                    return m
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before "
                                     f"printing /{pattern}/\n{self.report_text()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} did not print /{pattern}/ in {timeout}s\n"
                                     f"{self.report_text()}")
            time.sleep(0.1)

    def report_text(self):
        return (f"--- {self.name} stdout ---\n{util.tail(self.stdout_path, 40)}\n"
                f"--- {self.name} stderr ---\n{util.tail(self.stderr_path, 60)}")

    def report(self):
        if self.saved_output is None:
            util.print_block(f"{self.name} {' '.join(self.args)}", self.report_text())
        else:
            util.print_block(f"{self.name} {' '.join(self.args)}",
                             f"--- stdout ---\n{self.saved_output[0][-4000:]}\n"
                             f"--- stderr ---\n{self.saved_output[1][-8000:]}")

    def close(self):
        """Kill the process if still running, keep its output in memory, remove files."""
        util.unregister_cleanup(self)
        if self.saved_output is not None:
            return
        if self.alive():
            self.proc.kill()
        self.returncode = self.proc.wait()
        self._out.close()
        self._err.close()
        self.saved_output = (self._read(self.stdout_path, 0), self._read(self.stderr_path, 1))
        self._tmp.close()

    def __repr__(self):
        return f"PgcdcProcess({self.args!r}, pid={self.pid})"


def start_pgcdc(args, env=None, cwd=None, name="pgcdc"):
    """Start pgcdc ARGS in the background; returns a PgcdcProcess."""
    return PgcdcProcess(args, env=env, cwd=cwd, name=name)
