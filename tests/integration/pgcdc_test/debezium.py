"""debezium.py - Debezium's PostgreSQL connector as a peer in tests: the same WAL, its records.

    with Debezium(pg, slot="dbz", publication="pgcdc", prefix="pgcdc",
                  options={"decimal.handling.mode": "string"}) as dbz:
        dbz.wait_for(lambda recs: any(...), timeout=60)
    recs = dbz.records   # [{"topic", "key", "value", "key_schema", "value_schema", "headers"}]

tests/compat/DebeziumCapture.java runs Debezium's embedded engine (the jars that
tests/deps/fetch.sh put in the cache, the version of tests/compat/pom.xml) with
the connector's own defaults but for the connection, slot, publication, prefix
and the options given, and writes each record as a Kafka Connect worker would
produce it (JsonConverter, schemas.enable false and true; SimpleHeaderConverter).
It is compiled once per source version into the cache. close() stops the engine
(its standard input closes) and keeps what it wrote; it also runs at exit.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from . import cache, util

_SOURCE = os.path.join(cache._COMPAT, "DebeziumCapture.java")
JVM_OPTS = ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true"]


class DebeziumError(Exception):
    pass


def classes_dir():
    """DebeziumCapture compiled against the cached jars (compiled on first use)."""
    libs = cache.debezium_libs()
    with open(_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    d = os.path.join(os.path.dirname(libs), f"classes-{digest}")
    if os.path.exists(os.path.join(d, "DebeziumCapture.class")):
        return d
    tmp = tempfile.mkdtemp(prefix=".classes-", dir=os.path.dirname(libs))
    r = subprocess.run(["javac", "-d", tmp, "-cp", os.path.join(libs, "*"), _SOURCE],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DebeziumError(f"javac {_SOURCE} failed:\n{r.stderr}")
    os.chmod(tmp, 0o755)
    try:
        os.rename(tmp, d)
    except OSError:  # another test compiled it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return d


class Debezium:
    """Debezium's PostgreSQL connector on one slot, writing its records to a file.

    options: connector properties added to (and overriding) the connection, slot,
    publication and prefix given; snapshot.mode defaults to no_data (stream only),
    as the tests' pgcdc configuration does. offsets: a file for the engine's offsets
    (FileOffsetBackingStore), so that a second run resumes; else in memory.
    """

    def __init__(self, pg, slot, publication, prefix, options=None, offsets=None,
                 dbname="postgres", name="debezium"):
        self.pg = pg
        self.name = name
        self.props = {
            "database.hostname": "127.0.0.1",
            "database.port": pg.port,
            "database.user": "postgres",
            "database.password": "unused",
            "database.dbname": dbname,
            "topic.prefix": prefix,
            "slot.name": slot,
            "publication.name": publication,
            "publication.autocreate.mode": "disabled",
            "snapshot.mode": "no_data",
        }
        if offsets:
            self.props["offset.storage"] = "org.apache.kafka.connect.storage.FileOffsetBackingStore"
            self.props["offset.storage.file.filename"] = offsets
        self.props.update(options or {})
        self.dir = None
        self.proc = None
        self.records = []
        self._pos = 0
        self._log = None
        self._ready = threading.Event()

    def __enter__(self):
        util.install_signal_handlers()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def out(self):
        return os.path.join(self.dir, "records.jsonl")

    @property
    def log(self):
        return os.path.join(self.dir, "debezium.log")

    def start(self, timeout=120):
        """Start the engine; return when its task runs (it printed "ready")."""
        classes = classes_dir()
        base = os.environ.get("PGCDC_TEST_TMPDIR") or None
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix=f"pgcdc-{self.name}-", dir=base)
        util.register_cleanup(self)
        argv = (["java"] + JVM_OPTS
                + ["-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                   "-cp", f"{os.path.join(cache.debezium_libs(), '*')}:{classes}",
                   "DebeziumCapture", self.out]
                + [f"{k}={v}" for k, v in self.props.items()])
        self._log = open(self.log, "ab")
        self._ready.clear()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.PIPE, preexec_fn=util.die_with_parent)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        deadline = t0 + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise DebeziumError(f"Debezium did not start (exit {self.proc.poll()}):\n"
                                    + self.log_tail())
        print(f"debezium: Debezium {cache.debezium_version()} on slot "
              f"\"{self.props['slot.name']}\", running in {time.monotonic() - t0:.1f} s",
              file=sys.stderr, flush=True)

    def _pump(self, proc):
        for line in proc.stderr:
            self._log.write(line)
            self._log.flush()
            if line.strip() == b"ready":
                self._ready.set()

    def read(self):
        """Parse the records written since the last read; returns all of them."""
        if self.dir is None or not os.path.exists(self.out):
            return self.records
        with open(self.out, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line is complete once its newline is written
        for line in data[:end].splitlines():
            self.records.append(json.loads(line))
        self._pos += end
        return self.records

    def wait_for(self, pred, timeout=120, message="Debezium's records"):
        """Wait until pred(records) is true; returns the records."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.read()
            if pred(recs):
                return recs
            if self.proc is not None and self.proc.poll() is not None:
                raise DebeziumError(f"Debezium exited ({self.proc.returncode}) while waiting "
                                    f"for {message}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DebeziumError(f"timed out waiting for {message} ({len(recs)} records):\n"
                                    + self.log_tail())
            time.sleep(0.2)

    def stop(self, timeout=60):
        """Stop the engine cleanly (offsets flushed); returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.read()
        return rc

    def log_tail(self, lines=40):
        try:
            with open(self.log, "rb") as f:
                text = f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self):
        util.unregister_cleanup(self)
        if self.proc is not None:
            self.stop(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def remove(self):
        """Delete the working directory (records and log)."""
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __repr__(self):
        return f"Debezium(slot={self.props['slot.name']!r})"
