"""kafka.py - a real Apache Kafka cluster (KRaft, no ZooKeeper) on loopback for one test.

    with KafkaCluster(nodes=3, config={"min.insync.replicas": 2}) as kafka:
        kafka.create_topic("t", partitions=6, replication_factor=3)
        leader = kafka.leader("t", 0)
        kafka.kill(leader); ...; kafka.start_node(leader)
        msgs = consume_all(kafka.bootstrap, ["t"])

Every node is a combined broker + controller (process.roles=broker,controller)
running the jars tests/deps/fetch.sh put in the cache, with its own free
ports, config and data directory under one temporary directory, its storage
formatted with one cluster id. start() returns when the cluster answers
metadata with every running node registered. Nodes can be killed (SIGKILL),
stopped (SIGTERM: controlled shutdown) and started again with their data.
close() kills every node and removes the directory; it also runs at exit, on
SIGTERM/SIGINT, and the JVMs die with the test process (PR_SET_PDEATHSIG).
reset() makes a running cluster look freshly started again (no topics, no groups,
no produce quota), so that one cluster can serve several test cases (pgcdc_test.broker
pools the plain one-node cluster of PGCDC_TEST_KAFKA=kraft that way).

Extra listeners (SASL, TLS) are given as {name: protocol}; the harness itself
always talks to the PLAINTEXT listener.
"""

import base64
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import KafkaError as _RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from . import cache, util

JVM_OPTS = ["-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true"]

_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.noisy.name = org.apache.kafka.clients
logger.noisy.level = warn
"""


class KafkaError(Exception):
    pass


def _last_lines(text, lines):
    return "\n".join(text.splitlines()[-lines:])


class KafkaCluster:
    """A KRaft cluster of nodes combined broker+controller nodes (ids 1..nodes).

    config: broker settings added to (and overriding) the defaults below.
    listeners: extra {name: security protocol}, e.g. {"SASL": "SASL_PLAINTEXT"}.
    scram_users: [(mechanism, user, password)] created once the cluster is up.
    """

    def __init__(self, nodes=1, config=None, listeners=None, scram_users=None, name="kafka"):
        self.nodes = nodes
        self.name = name
        self.extra_config = dict(config or {})
        self.extra_listeners = dict(listeners or {})
        self.scram_users = list(scram_users or [])
        self.version = cache.kafka_version()
        self.dir = None
        self.procs = {}  # node id -> Popen of a running node
        self.ports = {}  # node id -> {listener name: port}
        self.started_in = None  # seconds the first start took
        self._last_tails = {}  # node id -> log tail saved at close()
        self._log_from = {}  # node id -> offset in server.log where log_tail() starts
        self._held_tails = None  # node id -> log tail kept by hold_log_tails()
        self._quota_changed = False  # set_produce_quota() left a quota (or may have)
        self._config_changed = False  # set_broker_config() changed the dynamic config
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    # ------------------------------------------------------------ lifecycle

    def __enter__(self):
        util.install_signal_handlers()
        try:
            self.start()
        except BaseException:
            self.report()
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _node_dir(self, n):
        return os.path.join(self.dir, f"node{n}")

    def _settings(self, n):
        rf = min(self.nodes, 3)
        voters = ",".join(f"{i}@127.0.0.1:{self.ports[i]['CONTROLLER']}"
                          for i in range(1, self.nodes + 1))
        names = ["PLAINTEXT", "CONTROLLER"] + list(self.extra_listeners)
        protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT", **self.extra_listeners}
        s = {
            "process.roles": "broker,controller",
            "node.id": n,
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(f"{name}://127.0.0.1:{self.ports[n][name]}" for name in names),
            "advertised.listeners": ",".join(f"{name}://127.0.0.1:{self.ports[n][name]}"
                                             for name in names if name != "CONTROLLER"),
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "log.dirs": os.path.join(self._node_dir(n), "data"),
            # as the test broker does: auto-created topics get 4 partitions
            "num.partitions": 4,
            "default.replication.factor": rf,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            # a killed node is noticed in seconds, not the 9 s default
            "broker.session.timeout.ms": 6000,
            "broker.heartbeat.interval.ms": 1000,
            "controller.quorum.election.timeout.ms": 1000,
            "controller.quorum.fetch.timeout.ms": 2000,
            # a follower that stops fetching leaves the ISR within 4 s, not the 30 s default:
            # pgcdc's wait after a crash (crash.recovery.wait=auto, 1.5 x this + 2 s) stays
            # at 8 s, and the tests that restart pgcdc after kill -9 stay short
            "replica.lag.time.max.ms": 4000,
        }
        s.update(self.extra_config)
        return s

    def _write_node(self, n):
        d = self._node_dir(n)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "server.properties"), "w") as f:
            for k, v in self._settings(n).items():
                if v is not None:
                    f.write(f"{k}={v}\n")
        with open(os.path.join(d, "log4j2.properties"), "w") as f:
            f.write(_LOG4J.format(log=os.path.join(d, "server.log")))

    def _java(self, n, main, args, **kw):
        d = self._node_dir(n)
        argv = (["java"] + JVM_OPTS
                + [f"-Dlog4j2.configurationFile=file:{os.path.join(d, 'log4j2.properties')}",
                   f"-Dkafka.logs.dir={d}", "-cp", os.path.join(cache.kafka_libs(), "*"), main]
                + args)
        return argv

    def start(self):
        """Create the directory, format every node's storage, start all nodes, wait until ready.

        A node that cannot bind a listener (another parallel test took the port
        between free_port() and the bind) is retried on fresh ports, as
        PgCluster.start does; any other start failure is raised at once.
        """
        libs = cache.kafka_libs()  # fails early with the fetch hint
        del libs
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                self._start_once()
                break
            except KafkaError:
                tails = "".join(self.log_tail(n, 60) + self._stdout_tail(n) for n in self.ports)
                if attempt == 2 or "Address already in use" not in tails:
                    raise
                print("kafka: a listener port was taken meanwhile; retrying on fresh ports",
                      file=sys.stderr, flush=True)
                self.close()
                self.ports = {}
                self._last_tails = {}
        for mech, user, password in self.scram_users:
            self._config_command(["--entity-type", "users", "--entity-name", user,
                                  "--add-config", f"{mech}=[iterations=4096,password={password}]"])
        self.started_in = time.monotonic() - t0
        print(f"kafka: Apache Kafka {self.version} (KRaft, {self.nodes} node"
              f"{'s' if self.nodes > 1 else ''}) at {self.bootstrap}, ready in "
              f"{self.started_in:.1f} s", file=sys.stderr, flush=True)

    def _start_once(self):
        base = os.environ.get("PGCDC_TEST_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix=f"pgcdc-{self.name}-", dir=base)
        util.register_cleanup(self)
        names = ["PLAINTEXT", "CONTROLLER"] + list(self.extra_listeners)
        taken = set()
        for n in range(1, self.nodes + 1):
            self.ports[n] = {}
            for name in names:
                p = util.free_port()
                while p in taken:
                    p = util.free_port()
                taken.add(p)
                self.ports[n][name] = p
        for n in range(1, self.nodes + 1):
            self._write_node(n)
            # --cluster-id=: an id may start with "-"
            args = ["format", f"--cluster-id={self.cluster_id}", "-c",
                    os.path.join(self._node_dir(n), "server.properties"), "--ignore-formatted"]
            r = subprocess.run(self._java(n, "kafka.tools.StorageTool", args),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0:
                raise KafkaError(f"formatting node {n}'s storage failed ({r.returncode}):\n"
                                 f"{r.stdout}{r.stderr}")
        for n in range(1, self.nodes + 1):
            self._spawn(n)
        self.wait_ready(timeout=120)

    def _spawn(self, n):
        d = self._node_dir(n)
        out = open(os.path.join(d, "stdout.log"), "ab")
        try:
            self.procs[n] = subprocess.Popen(
                self._java(n, "kafka.Kafka", [os.path.join(d, "server.properties")]),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=util.die_with_parent)
        finally:
            out.close()

    @property
    def bootstrap(self):
        """bootstrap.servers of the PLAINTEXT listeners of all nodes."""
        return self.bootstrap_of("PLAINTEXT")

    def bootstrap_of(self, listener, nodes=None):
        return ",".join(f"127.0.0.1:{self.ports[n][listener]}"
                        for n in (nodes or range(1, self.nodes + 1)))

    def running_nodes(self):
        return sorted(n for n, p in self.procs.items() if p.poll() is None)

    def _admin(self):
        """A new AdminClient on the running nodes (keep it referenced until its futures are done)."""
        return AdminClient({"bootstrap.servers": self.bootstrap_of(
            "PLAINTEXT", self.running_nodes() or None), "socket.timeout.ms": 5000,
            "log_level": 2})

    def _listening(self, n):
        try:
            with socket.create_connection(("127.0.0.1", self.ports[n]["PLAINTEXT"]), 0.5):
                return True
        except OSError:
            return False

    def registered_brokers(self, timeout=2.0):
        """Broker ids in the cluster's metadata (empty when nobody answers)."""
        if not any(self._listening(n) for n in self.running_nodes()):
            return set()
        try:
            md = self._admin().list_topics(timeout=timeout)
        except KafkaException:
            return set()
        return set(md.brokers)

    def wait_ready(self, nodes=None, timeout=60.0):
        """Wait until the metadata lists every node in nodes (default: the running ones)."""
        want = set(nodes or self.running_nodes())
        deadline = time.monotonic() + timeout
        while True:
            for n, p in self.procs.items():
                if p.poll() is not None and n in want:
                    raise KafkaError(f"Kafka node {n} exited with status {p.returncode} "
                                     f"while starting:\n{self.log_tail(n, 30)}")
            if want <= self.registered_brokers():
                return
            if time.monotonic() >= deadline:
                raise KafkaError(f"Kafka nodes {sorted(want)} not all registered within "
                                 f"{timeout:.0f} s (have {sorted(self.registered_brokers())})")
            time.sleep(0.2)

    # ------------------------------------------------------------ faults

    def kill(self, n):
        """SIGKILL node n and wait until it is gone."""
        p = self.procs.get(n)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGKILL)
        p.wait(30)

    def stop(self, n, timeout=60):
        """SIGTERM node n (controlled shutdown) and wait until it exited."""
        p = self.procs.get(n)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(30)

    def start_node(self, n, wait=True, timeout=120):
        """Start node n again with its data; wait until it is registered."""
        if self.procs.get(n) is not None and self.procs[n].poll() is None:
            return
        self._spawn(n)
        if wait:
            self.wait_ready(nodes=[n], timeout=timeout)

    def pause(self, n=None):
        """SIGSTOP node n (every node when None): it keeps its connections but answers nothing."""
        for i in ([n] if n else self.running_nodes()):
            self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, n=None):
        for i in ([n] if n else list(self.procs)):
            if self.procs[i].poll() is None:
                self.procs[i].send_signal(signal.SIGCONT)

    # ------------------------------------------------------------ topics

    def create_topic(self, name, partitions=1, replication_factor=None, config=None,
                     timeout=60.0, replica_assignment=None):
        """Create a topic and wait until every partition has a leader. replica_assignment: one
        list of node ids per partition, the preferred leader first."""
        rf = replication_factor or min(self.nodes, 3)
        admin = self._admin()
        conf = {k: str(v) for k, v in (config or {}).items()}
        if replica_assignment:
            topic = NewTopic(name, len(replica_assignment), replica_assignment=replica_assignment,
                             config=conf)
        else:
            topic = NewTopic(name, partitions, rf, config=conf)
        fut = admin.create_topics([topic], operation_timeout=timeout)[name]
        try:
            fut.result(timeout)
        except KafkaException as e:
            raise KafkaError(f"creating topic \"{name}\" failed: {e}") from None
        util.wait_until(lambda: self._leaders(name, partitions), timeout=timeout,
                        message=f"leaders for every partition of \"{name}\"")

    def _leaders(self, topic, partitions):
        try:
            md = self._admin().list_topics(topic, timeout=2)
        except KafkaException:
            return False
        t = md.topics.get(topic)
        if t is None or t.error is not None or len(t.partitions) != partitions:
            return False
        return all(p.leader >= 0 for p in t.partitions.values())

    def leader(self, topic, partition):
        """The node id leading topic/partition now, or -1."""
        md = self._admin().list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader

    def _config_command(self, args):
        """kafka.admin.ConfigCommand --alter ... against the running nodes."""
        n = self.running_nodes()[0]
        r = subprocess.run(self._java(n, "kafka.admin.ConfigCommand", [
            "--bootstrap-server", self.bootstrap_of("PLAINTEXT", self.running_nodes()),
            "--alter"] + args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120)
        if r.returncode != 0:
            raise KafkaError(f"kafka-configs {' '.join(args)} failed ({r.returncode}):\n"
                             f"{r.stdout}{r.stderr}")

    def set_produce_quota(self, bytes_per_s):
        """A default produce quota for every client (None removes it): the brokers
        throttle producers above bytes_per_s, which is how a real cluster is made slow."""
        change = (["--delete-config", "producer_byte_rate"] if bytes_per_s is None
                  else ["--add-config", f"producer_byte_rate={int(bytes_per_s)}"])
        self._quota_changed = True  # until the command says otherwise
        self._config_command(["--entity-type", "clients", "--entity-default"] + change)
        self._quota_changed = bytes_per_s is not None

    def set_broker_config(self, settings):
        """Change cluster-wide dynamic broker settings (e.g. message.max.bytes)."""
        self._config_changed = True  # reset() does not undo it
        self._config_command(["--entity-type", "brokers", "--entity-default", "--add-config",
                              ",".join(f"{k}={v}" for k, v in settings.items())])

    # ------------------------------------------------------------ reuse

    def user_topics(self, timeout=10.0):
        """Names of the topics that are not Kafka's own (those start with "__")."""
        md = self._admin().list_topics(timeout=timeout)
        return sorted(t for t in md.topics if not t.startswith("__"))

    def groups(self, timeout=10.0):
        """Ids of the consumer groups the cluster knows."""
        return sorted(g.id for g in self._admin().list_groups(timeout=timeout))

    def reset(self, timeout=60.0):
        """Make the cluster look as a fresh one does to the next test case: every node
        running and registered, no produce quota, no topic but Kafka's internal ones
        (gone from the metadata, not just asked to go), no consumer group.

        Raises (KafkaError, or whatever a client or wait raised) when that cannot be done
        within timeout seconds: the cluster may then be half reset and should be closed.
        """
        deadline = time.monotonic() + timeout

        def left(cap):
            return max(0.5, min(cap, deadline - time.monotonic()))

        stopped = [n for n in range(1, self.nodes + 1) if n not in self.running_nodes()]
        if stopped:
            raise KafkaError(f"node{'s' if len(stopped) > 1 else ''} "
                             f"{', '.join(map(str, stopped))} not running")
        self.resume()  # a paused node answers again
        self.wait_ready(timeout=left(30))
        if self._config_changed:
            raise KafkaError("its dynamic broker settings were changed (set_broker_config)")
        if self._quota_changed:
            self.set_produce_quota(None)
        self._clear("topics", lambda: self.user_topics(timeout=left(10)),
                    lambda names: self._delete_topics(names, left), deadline)
        self._clear("consumer groups", lambda: self.groups(timeout=left(10)),
                    lambda names: self._delete_groups(names, left(10)), deadline)

    @staticmethod
    def _clear(what, listed, delete, deadline):
        """delete(listed()) until listed() is empty; asked again every 2 s (a client left
        running may create a topic or join a group again)."""
        next_ask = 0.0
        while True:
            names = listed()
            if not names:
                return
            now = time.monotonic()
            if now >= deadline:
                raise KafkaError(f"{what} {names} still there")
            if now >= next_ask:
                delete(names)
                next_ask = time.monotonic() + 2.0
            time.sleep(0.1)

    def _delete_topics(self, names, left):
        admin = self._admin()
        futs = admin.delete_topics(names, operation_timeout=left(30))
        for t, fut in futs.items():
            try:
                fut.result(left(60))
            except KafkaException as e:
                if e.args[0].code() != _RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaError(f"deleting topic \"{t}\" failed: {e}") from None

    def _delete_groups(self, names, timeout):
        """DeleteGroups (v1) on every running node, by hand: the confluent_kafka of Debian 12
        (1.7) has no delete_consumer_groups. A node that is not a group's coordinator says
        NOT_COORDINATOR; some node must say NONE or GROUP_ID_NOT_FOUND for every group."""
        body = struct.pack(">i", len(names))
        for g in names:
            b = g.encode()
            body += struct.pack(">h", len(b)) + b
        done = set()
        errors = {}
        for n in self.running_nodes():
            resp = self._request(n, 42, 1, body, timeout)
            (count,) = struct.unpack_from(">i", resp, 4)  # after throttle_time_ms
            i = 8
            for _ in range(count):
                (size,) = struct.unpack_from(">h", resp, i)
                g = resp[i + 2:i + 2 + size].decode()
                (code,) = struct.unpack_from(">h", resp, i + 2 + size)
                i += 4 + size
                if code in (0, 69):  # NONE, GROUP_ID_NOT_FOUND
                    done.add(g)
                else:
                    errors[g] = code
        failed = {g: c for g, c in errors.items() if g not in done}
        if failed:
            raise KafkaError(f"deleting consumer groups failed (group: error code): {failed}")

    def _request(self, n, api_key, version, body, timeout):
        """One Kafka protocol request (header v1) to node n's PLAINTEXT listener; returns the
        response body after its correlation id."""
        corr = random.randrange(1 << 31)
        client = b"pgcdc-test"
        msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
        with socket.create_connection(("127.0.0.1", self.ports[n]["PLAINTEXT"]),
                                      timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(msg)) + msg)

            def recv(size):
                buf = b""
                while len(buf) < size:
                    chunk = sock.recv(size - len(buf))
                    if not chunk:
                        raise KafkaError(f"node {n} closed the connection (API {api_key} "
                                         f"v{version} unsupported?)")
                    buf += chunk
                return buf

            (size,) = struct.unpack(">i", recv(4))
            resp = recv(size)
        if struct.unpack_from(">i", resp)[0] != corr:
            raise KafkaError(f"node {n} answered another request")
        return resp[4:]

    # ------------------------------------------------------------ clean-up

    def log_tail(self, n, lines=60, held=True):
        """The last lines of node n's server.log: only what it logged since
        begin_log_window(), and as it was at hold_log_tails(), when those were called
        (held=False: as it is now)."""
        if held and self._held_tails is not None:
            return _last_lines(self._held_tails.get(n, ""), lines)
        return self._live_tail(n, lines)

    def _live_tail(self, n, lines=60):
        if self.dir is None:
            return _last_lines(self._last_tails.get(n, ""), lines)
        path = os.path.join(self._node_dir(n), "server.log")
        start = self._log_from.get(n, 0)
        if not start:
            return util.tail(path, lines)
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(start, size - 64 * 1024))
                data = f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(cannot read {path}: {e})"
        if not data.strip():
            return f"(node {n} logged nothing since this test case took it over from earlier ones)"
        return _last_lines(data, lines)

    def begin_log_window(self):
        """From now on log_tail() shows only what the nodes log after this point (a reused
        cluster: the lines of the test case that uses it, not those of the cases before)."""
        self._held_tails = None
        self._log_from = {}
        if self.dir is None:
            return
        for n in self.ports:
            try:
                self._log_from[n] = os.path.getsize(os.path.join(self._node_dir(n), "server.log"))
            except OSError:
                pass

    def hold_log_tails(self, lines=60):
        """Keep the log tails of now for log_tail() and report() until begin_log_window(), so
        that what reset() logs afterwards does not push a test case's last lines out."""
        self._held_tails = {n: self._live_tail(n, lines) for n in self.ports}

    def _stdout_tail(self, n, lines=30):
        if self.dir is None:
            return ""
        return util.tail(os.path.join(self._node_dir(n), "stdout.log"), lines)

    def report(self):
        for n in sorted(self.ports):
            util.print_block(f"{self.name} node {n} log tail", self.log_tail(n, 40))

    def close(self):
        """Kill every node and remove the directory; safe to call twice."""
        util.unregister_cleanup(self)
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except OSError:
                    pass
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.procs = {}
        if self.dir is not None:
            self._last_tails = {n: self.log_tail(n) for n in self.ports}  # held ones if held
            self._held_tails = None
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __repr__(self):
        return f"KafkaCluster({self.nodes} nodes, dir={self.dir!r})"
