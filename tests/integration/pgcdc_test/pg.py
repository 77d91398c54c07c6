"""pg.py - throwaway PostgreSQL clusters for integration tests.

    with PgCluster() as pg:
        pg.sql("CREATE TABLE t (id int PRIMARY KEY)")
        conninfo = pg.dsn()

The server is Debian's PostgreSQL 15 unless a version is asked for
(PgCluster(version=17), or PGCDC_TEST_PG_VERSION=17 for every cluster of a
run): 13, 14, 16, 17 and 18 are the builds tests/deps/fetch.sh put in the
cache. Client programs (psql) are always Debian's (PG_BINDIR), which talk to
every one of them. initdb and the server run as the `postgres` OS user when
the tests run as root. The server listens on 127.0.0.1 on a free port and on a unix socket
inside the cluster's temp dir; it is stopped (immediate) and the dir removed
on exit, also on failure and on SIGTERM/SIGINT.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest

import psycopg2
import psycopg2.extensions
from psycopg2 import sql as _sql

from . import cache, util

# Debian's client programs (psql, pg_recvlogical)
PG_BINDIR = os.environ.get("PGCDC_PG_BINDIR", cache.DEBIAN_PG_BINDIR)


def test_pg_version():
    """The PostgreSQL major the run uses by default: PGCDC_TEST_PG_VERSION, else Debian's 15."""
    return int(os.environ.get("PGCDC_TEST_PG_VERSION") or cache.DEBIAN_PG_MAJOR)

BASE_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_replication_slots": 20,
    "max_wal_senders": 20,
    "fsync": False,
    "synchronous_commit": False,
    "full_page_writes": False,
    "shared_buffers": "32MB",
    "max_connections": 50,
    "log_line_prefix": "%m [%p] %q%a ",
    "log_connections": False,
    # the default from 14 on; 13 stores md5 hashes, which scram-sha-256 in pg_hba refuses
    "password_encryption": "scram-sha-256",
}

# Role with a password, for tests of password authentication over TCP.
APP_USER = "cdc_app"
APP_PASSWORD = "cdc-app-secret"

_HBA = """\
# written by pgcdc_test: trust for the superuser, passwords for everyone else
local all         all                    trust
local replication all                    trust
host  all         postgres 127.0.0.1/32  trust
host  replication postgres 127.0.0.1/32  trust
host  all         all      127.0.0.1/32  scram-sha-256
host  replication all      127.0.0.1/32  scram-sha-256
"""


def _conf_value(v):
    """Render a Python value as a postgresql.conf value."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def conninfo(**params):
    """A libpq conninfo string from keyword parameters (None values are left out)."""
    parts = []
    for k, v in params.items():
        if v is None:
            continue
        v = str(v)
        if v == "" or any(c in v for c in " '\\"):
            v = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{k}={v}")
    return " ".join(parts)


class PgError(Exception):
    pass


class PgCluster:
    """A throwaway PostgreSQL cluster; a context manager.

    settings: extra postgresql.conf settings overriding the defaults, e.g.
    {"wal_level": "replica", "wal_sender_timeout": "3s"}.
    version: the major version (default test_pg_version()).
    """

    def __init__(self, settings=None, start=True, name="pg", version=None):
        self.settings = dict(BASE_SETTINGS)
        self.settings.update(settings or {})
        self.name = name
        self.version = int(version or test_pg_version())
        self.bindir = cache.pg_bindir(self.version)  # initdb, pg_ctl, postgres
        self.dir = None  # temp dir holding data/, the socket and server.log
        self.datadir = None
        self.logfile = None
        self.port = None
        self.running = False
        self.last_log_tail = None  # server log tail saved at close()
        self.app_user = APP_USER
        self.app_password = APP_PASSWORD
        self._autostart = start
        self._as_postgres = util.is_root()

    # ------------------------------------------------------------ lifecycle

    def __enter__(self):
        util.install_signal_handlers()
        util.become_subreaper()
        try:
            self.init()
            if self._autostart:
                self.start()
                self._create_app_role()
        except BaseException:
            self._report_failure()
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, unittest.SkipTest):
            self._report_failure()
        self.close()
        return False

    def _run(self, argv, check=True, timeout=120):
        """Run a PostgreSQL program, as the postgres user when we are root."""
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           cwd=self.dir or "/")
        if check and p.returncode != 0:
            raise PgError(f"{' '.join(argv)} failed with exit code {p.returncode}:\n{p.stdout}")
        return p

    def init(self):
        """Create the temp dir and run initdb; the server is not started."""
        base = os.environ.get("PGCDC_TEST_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix=f"pgcdc-{self.name}-", dir=base)
        util.register_cleanup(self)
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "server.log")
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
                  + (["--no-instructions"] if self.version >= 14 else []))
        # the files exist and belong to postgres: rewrite them in place
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write(_HBA)
        self._write_settings()

    def _write_settings(self):
        """(Re)write pgcdc_test.conf, included at the end of postgresql.conf."""
        s = dict(self.settings)
        s["unix_socket_directories"] = self.dir
        if self.port is not None:
            s["port"] = self.port
        path = os.path.join(self.datadir, "pgcdc_test.conf")
        first = not os.path.exists(path)
        with open(path, "w") as f:
            f.write("# written by pgcdc_test\n")
            for k, v in s.items():
                f.write(f"{k} = {_conf_value(v)}\n")
        if first:
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(path, pw.pw_uid, pw.pw_gid)
            with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
                f.write("\ninclude 'pgcdc_test.conf'\n")

    def start(self):
        """Start the server and wait until it accepts connections.

        On the first start a free port is chosen; if it was taken in the
        meantime (parallel tests) another port is tried.
        """
        if self.running:
            return
        for attempt in range(5):
            fresh_port = self.port is None
            if fresh_port:
                self.port = util.free_port()
                self._write_settings()
            p = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-l",
                           self.logfile, "-w", "-t", "60", "start"], check=False)
            if p.returncode == 0:
                self.running = True
                if fresh_port:
                    print(f"postgresql: {self.name}: PostgreSQL {self.version} ({self.bindir}) on "
                          f"127.0.0.1:{self.port}", file=sys.stderr, flush=True)
                return
            log = util.tail(self.logfile, 20)
            if fresh_port and "could not" in log and "bind" in log and attempt < 4:
                self.port = None
                continue
            raise PgError(f"pg_ctl start failed ({p.returncode}):\n{p.stdout}\n{log}")

    def postmaster_pid(self):
        """The running postmaster's pid, or None."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError, TypeError):
            return None

    def stop(self, mode="fast"):
        """Stop the server (mode: smart, fast or immediate) and wait until the postmaster is gone."""
        if not self.running:
            return
        pid = self.postmaster_pid()
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m", mode, "-w",
                   "-t", "60", "stop"])
        self.running = False
        if pid is not None:
            util.reap(pid)

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def reload(self):
        self.sql("SELECT pg_reload_conf()")

    def set_config(self, name, value, restart=False):
        """ALTER SYSTEM SET name = value, then reload (or restart when asked)."""
        self.sql(_sql.SQL("ALTER SYSTEM SET {} = {}").format(
            _sql.Identifier(name), _sql.Literal(str(value) if not isinstance(value, bool)
                                                else ("on" if value else "off"))))
        if restart:
            self.restart()
        else:
            self.reload()

    def close(self):
        """Stop immediately and remove the cluster dir; safe to call twice."""
        util.unregister_cleanup(self)
        if self.dir is None:
            return
        pid = self.postmaster_pid()
        if pid is not None and util.pid_running(pid):
            try:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m",
                           "immediate", "-w", "-t", "30", "stop"], timeout=60)
            except (PgError, subprocess.TimeoutExpired):
                pass
            if not util.reap(pid, 10.0):
                try:
                    os.kill(pid, 9)  # last resort
                except OSError:
                    pass
                util.reap(pid, 5.0)
        self.running = False
        if self.logfile:
            self.last_log_tail = util.tail(self.logfile)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _report_failure(self):
        if self.logfile and os.path.exists(self.logfile):
            util.print_block(f"{self.name} server log tail ({self.logfile})",
                             util.tail(self.logfile))

    def log_tail(self, lines=60):
        if self.logfile and os.path.exists(self.logfile):
            return util.tail(self.logfile, lines)
        return self.last_log_tail or ""

    def __repr__(self):
        return (f"PgCluster({self.name!r}, PostgreSQL {self.version}, dir={self.dir!r}, "
                f"port={self.port})")

    # ----------------------------------------------------------- connecting

    def dsn(self, dbname="postgres", user="postgres", **kw):
        """A libpq conninfo for this server over TCP (host=127.0.0.1)."""
        return conninfo(host="127.0.0.1", port=self.port, dbname=dbname, user=user, **kw)

    def app_dsn(self, dbname="postgres", **kw):
        """conninfo for the password-authenticated role (scram-sha-256 over TCP)."""
        return self.dsn(dbname=dbname, user=self.app_user, password=self.app_password, **kw)

    def connect(self, dbname="postgres", user="postgres", autocommit=True, **kw):
        """A new psycopg2 connection (autocommit by default); the caller closes it."""
        conn = psycopg2.connect(self.dsn(dbname=dbname, user=user, **kw))
        conn.autocommit = autocommit
        return conn

    def sql(self, query, params=None, dbname="postgres", user="postgres", **kw):
        """Run one statement in autocommit mode; returns its rows ([] if none)."""
        conn = self.connect(dbname=dbname, user=user, **kw)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description is not None else []
        finally:
            conn.close()

    def sql_one(self, query, params=None, **kw):
        """The first column of the first row of query, or None."""
        rows = self.sql(query, params, **kw)
        return rows[0][0] if rows else None

    def _create_app_role(self):
        self.sql(_sql.SQL("CREATE ROLE {} LOGIN SUPERUSER REPLICATION PASSWORD {}").format(
            _sql.Identifier(self.app_user), _sql.Literal(self.app_password)))

    def create_role(self, name, password=None, superuser=False, replication=True):
        """Create a LOGIN role; password auth applies to it over TCP."""
        opts = ["LOGIN", "SUPERUSER" if superuser else "NOSUPERUSER",
                "REPLICATION" if replication else "NOREPLICATION"]
        q = _sql.SQL("CREATE ROLE {} " + " ".join(opts)).format(_sql.Identifier(name))
        if password is not None:
            q = q + _sql.SQL(" PASSWORD {}").format(_sql.Literal(password))
        self.sql(q)

    # ---------------------------------------------------------- inspecting

    def flush_wal(self):
        """Flush all WAL written so far to disk (a CHECKPOINT).

        With synchronous_commit=off a commit reaches disk only when the WAL
        writer gets to it (up to ~3 x wal_writer_delay): a walsender or
        pg_logical_slot_get_changes() cannot see it before, and an immediate
        stop loses it. A synchronous commit of an empty transaction does not
        help (it flushes nothing); CHECKPOINT produces no decodable change.
        """
        self.sql("CHECKPOINT")

    def current_lsn(self):
        return self.sql_one("SELECT pg_current_wal_lsn()::text")

    def slot(self, name):
        """The pg_replication_slots row of slot name as a dict, or None."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT * FROM pg_replication_slots WHERE slot_name = %s", (name,))
                row = cur.fetchone()
                if row is None:
                    return None
                return {d.name: v for d, v in zip(cur.description, row)}
        finally:
            conn.close()


def lsn_int(lsn):
    """'16/B374D848' -> int."""
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)
