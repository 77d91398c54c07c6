"""util.py - shared plumbing for the integration harness: cleanup registry, signals, ports, waiting.

Every resource the harness starts (PostgreSQL cluster, test broker, pgcdc
process, temp dir) registers itself here and unregisters when closed. Whatever
is still registered when the interpreter exits (normal end, uncaught
exception, SIGTERM/SIGINT/SIGHUP turned into KeyboardInterrupt) is closed by
an atexit hook, so no server outlives the test that started it.
"""

import atexit
import ctypes
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

_registry = {}  # id(obj) -> obj with a close() method, in registration order
_registry_lock = threading.Lock()
_handlers_installed = False
_caught_signal = None  # first stop signal received, or None


def register_cleanup(obj):
    """Remember obj so that obj.close() runs at exit if nobody closed it."""
    with _registry_lock:
        _registry[id(obj)] = obj


def unregister_cleanup(obj):
    with _registry_lock:
        _registry.pop(id(obj), None)


def cleanup_all():
    """Close every registered resource, newest first; errors are printed, not raised."""
    while True:
        with _registry_lock:
            if not _registry:
                return
            key = next(reversed(_registry))
            obj = _registry.pop(key)
        try:
            obj.close()
        except BaseException as e:  # keep going: the next server must stop too
            print(f"pgcdc_test: cleanup of {obj!r} failed: {e!r}", file=sys.stderr)


atexit.register(cleanup_all)


def _on_stop_signal(signum, frame):
    global _caught_signal
    if _caught_signal is not None:
        return  # already unwinding: let the cleanup finish
    _caught_signal = signum
    # KeyboardInterrupt, not SystemExit: unittest records SystemExit raised in
    # a test as an error and runs on, but re-raises KeyboardInterrupt.
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_signal_handlers():
    """Turn SIGTERM/SIGINT/SIGHUP into KeyboardInterrupt so `with` blocks unwind."""
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_stop_signal)
    _handlers_installed = True


def caught_signal():
    """The stop signal that interrupted the run, or None."""
    return _caught_signal


_libc = None


def die_with_parent():
    """preexec_fn for subprocesses: get SIGTERM when the test process dies, even by SIGKILL."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def become_subreaper():
    """Adopt orphaned descendants (the postmaster that pg_ctl leaves behind),
    so that a stopped server is reaped by us at once, not left a zombie."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


def pid_running(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def reap(pid, timeout=10.0):
    """Wait until pid is gone: reap it if it is our child, else poll /proc.

    Returns True when it is gone, False after timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            if not pid_running(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_handed_out = set()


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (callers retry if it is taken meanwhile).

    The port is drawn below the kernel's ephemeral range: a port from that range
    can be taken at any moment as the local end of an outgoing connection (every
    client in a parallel test makes them), which once made a Kafka node fail to
    bind its listener in CI. Only another test's free_port can collide here.
    """
    lo, _ = _ephemeral_range()
    first = 20000 if lo > 21000 else 1024
    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(first, lo) if lo - first > 100 else 0
        if p in _handed_out:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                           socket.SOCK_STREAM) as s:
            try:
                s.bind((host, p))
            except OSError:
                continue
            p = s.getsockname()[1]
        _handed_out.add(p)
        return p
    raise OSError(f"no free TCP port found on {host} below {lo}")


def wait_until(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Call predicate() until it returns a true value, and return that value.

    Raises AssertionError naming message after timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


def tail(path, lines=60):
    """The last lines of a text file, or a note that it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def print_block(title, text):
    """Print a titled block to stderr (shown by meson in the test log)."""
    print(f"\n----- {title} -----\n{text}\n----- end of {title} -----", file=sys.stderr)


def is_root():
    return os.geteuid() == 0


class TempDir:
    """A temp directory removed on close() (and at exit); .path is its name."""

    def __init__(self, prefix="pgcdc-test-"):
        base = os.environ.get("PGCDC_TEST_TMPDIR") or None
        self.path = tempfile.mkdtemp(prefix=prefix, dir=base)
        register_cleanup(self)

    def close(self):
        unregister_cleanup(self)
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"TempDir({self.path!r})"
