"""A local three-node PostgreSQL cluster with automatic failover: Patroni over etcd, streaming replication with one
synchronous standby. For development, the tests and the failover drill (``gridpatrol cluster up|down|status``);
``docs/DEPLOY.md`` is the same on three machines.

Layout under ``root`` (:func:`cluster_dir`)::

    cluster.json        ports and passwords (0600): made at the first ``up``, kept after
    etcd/               etcd's data; etcd.log, etcd.pid
    n1/ n2/ n3/         patroni.yml, data/ (PGDATA), run/ (the unix socket, 0700), patroni.log, patroni.pid

Everything runs as the embedded server's unprivileged user (``gridpatrol`` when run as root). PostgreSQL and
Patroni's REST API listen on 127.0.0.1 only, on ports chosen free at the first ``up``; connections over TCP need a
password (SCRAM), the unix sockets are the server user's alone. The synchronous standby is Patroni's
``synchronous_mode``: a commit returns once one standby has the WAL, so an acknowledged report survives the
primary's loss; when no standby is left the primary goes on alone (``synchronous_mode_strict`` off: availability
before a second copy, as Patroni's default).

The service reaches the cluster with libpq's multi-host URLs (:meth:`LocalCluster.urls`): writes with
``target_session_attrs=read-write`` (libpq tries each host and keeps the one that takes writes: the primary after
any failover), reads with ``prefer-standby`` (:mod:`gis.db.replicas` splits them per replica and watches the lag).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from gis.db.embedded import (
    PG_MAJOR,
    SERVICE_ROLE,
    SHARED_ROOT,
    SUPERUSER,
    EmbeddedPostgres,
    cluster_root,
    create_database_sql,
    pg_bindir,
    postgis_installed,
)
from gis.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

NODES = ("n1", "n2", "n3")
SCOPE = "gridpatrol"
REPLICATOR = "replicator"
PATRONI = "patroni[etcd3]==4.1.5"
"""The Patroni the tools virtualenv installs (as root); pyproject.toml asks for the same in the project's own."""
FIRST_PORT = 55400
"""Where the search for the cluster's eight free ports starts (PostgreSQL ×3, Patroni's REST API ×3, etcd ×2)."""
TTL_S = 20
"""The leader key's time to live in etcd: a primary that stops renewing it (its machine died, or it lost etcd)
is replaced after at most this long; Patroni's smallest allowed value. With ``loop_wait`` 2 s and
``retry_timeout`` 5 s (loop_wait + 2 × retry_timeout ≤ ttl, as Patroni asks)."""
LOOP_WAIT_S = 2
RETRY_TIMEOUT_S = 5


def cluster_dir(data_dir: Path) -> Path:
    """Where the local cluster of a checkout's data directory lives: beside its embedded server's directory
    (``var/postgres-cluster`` for a normal user, ``/var/lib/gridpatrol/<id>-cluster`` as root)."""
    single = cluster_root(data_dir)
    return single.with_name(single.name + "-cluster")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the servers bind: a port that only closed connections linger on (TIME_WAIT) is free for them
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports(start: int = FIRST_PORT, count: int = 8) -> list[int]:
    """``count`` consecutive ports free on 127.0.0.1 (another checkout's cluster holds its own range)."""
    for base in range(start, 65000 - count, 10):
        if all(_free(base + i) for i in range(count)):
            return list(range(base, base + count))
    raise DatabaseUnavailableError(f"no {count} consecutive free TCP ports on 127.0.0.1 above {start}")


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader, sync_standby, replica (Patroni's names)
    state: str  # running, streaming, stopped, starting, ...
    host: str
    port: int
    lag_bytes: int | None


@dataclass(frozen=True)
class LocalCluster:
    root: Path
    separate_hosts: bool = False
    """Each node in a network namespace of its own (``ip netns``, veth pairs on a bridge, 10.77.N.0/24), so that
    one can be cut off the network (:meth:`partition`): the failure a kill does not show. Needs root."""

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, separate_hosts: bool = False) -> LocalCluster:
        return cls(cluster_dir(data_dir), separate_hosts=separate_hosts)

    # -- addresses ------------------------------------------------------------------------------------------

    @property
    def _subnet(self) -> int:
        """The third octet of this cluster's 10.77.N.0/24 (from its directory, so two checkouts differ)."""
        return 20 + int(hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:4], 16) % 200

    def address(self, name: str) -> str:
        """Where node ``name`` listens: 127.0.0.1, or its namespace's own address."""
        return f"10.77.{self._subnet}.{11 + NODES.index(name)}" if self.separate_hosts else "127.0.0.1"

    @property
    def gateway(self) -> str:
        """The host's address as the nodes see it (etcd listens there): 127.0.0.1, or the bridge's."""
        return f"10.77.{self._subnet}.1" if self.separate_hosts else "127.0.0.1"

    def namespace(self, name: str) -> str:
        return f"gp{self._subnet}-{name}"

    def _link(self, name: str) -> str:
        return f"gp{self._subnet}{name}h"  # the host's end of the node's veth pair (15 characters at most)

    @property
    def _bridge(self) -> str:
        return f"gp{self._subnet}br"

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise DatabaseUnavailableError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
        return done

    def _ensure_network(self) -> None:
        """The bridge and one namespace per node, each with its veth pair and address (made once; kept)."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise DatabaseUnavailableError("separate hosts need root and iproute2 (`ip netns`)")
        if self._ip("link", "show", self._bridge, check=False).returncode != 0:
            self._ip("link", "add", self._bridge, "type", "bridge")
            self._ip("addr", "add", f"{self.gateway}/24", "dev", self._bridge)
        self._ip("link", "set", self._bridge, "up")
        have = self._ip("netns", "list").stdout
        for name in NODES:
            ns = self.namespace(name)
            if ns not in have:
                self._ip("netns", "add", ns)
                self._ip("link", "add", self._link(name), "type", "veth", "peer", "name", "eth0", "netns", ns)
                self._ip("link", "set", self._link(name), "master", self._bridge)
                self._ip("-n", ns, "addr", "add", f"{self.address(name)}/24", "dev", "eth0")
                self._ip("-n", ns, "link", "set", "lo", "up")
                self._ip("-n", ns, "link", "set", "eth0", "up")
                self._ip("-n", ns, "route", "add", "default", "via", self.gateway)
            self._ip("link", "set", self._link(name), "up")

    def remove_network(self) -> None:
        if not self.separate_hosts:
            return
        for name in NODES:
            self._ip("netns", "del", self.namespace(name), check=False)
        self._ip("link", "del", self._bridge, check=False)

    def partition(self, name: str) -> None:
        """Cut node ``name`` off the network (its veth's host end down): it reaches neither etcd, nor the other
        nodes, nor the service; it keeps running."""
        self._ip("link", "set", self._link(name), "down")

    def heal(self, name: str) -> None:
        self._ip("link", "set", self._link(name), "up")

    # -- settings kept on disk ----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    def state(self) -> dict[str, Any]:
        """Ports and passwords, made on the first call and kept (0600)."""
        if self.state_file.is_file():
            return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        ports = _pick_ports()
        state = {"pg": ports[0:3], "rest": ports[3:6], "etcd": ports[6:8],
                 "passwords": {who: secrets.token_urlsafe(24) for who in (SUPERUSER, REPLICATOR, SERVICE_ROLE)}}
        fd = os.open(self.state_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, indent=1)
        return state

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def pg_port(self, name: str) -> int:
        return int(self.state()["pg"][NODES.index(name)])

    def rest_url(self, name: str) -> str:
        return f"http://{self.address(name)}:{self.state()['rest'][NODES.index(name)]}"

    # -- who runs what ------------------------------------------------------------------------------------

    def _server(self) -> EmbeddedPostgres:
        """The embedded server's helpers, for the account and for running commands as it."""
        return EmbeddedPostgres(self.root)

    def _account(self) -> tuple[int, int] | None:
        return self._server()._account()

    def _chown(self, *paths: Path) -> None:
        account = self._account()
        if account is not None:
            for path in paths:
                os.chown(path, *account)

    def _patroni_bin(self) -> Path:
        """Patroni for the server's user: the project's own when it runs as itself; as root, a virtualenv of
        Debian's python3 in ``/var/lib/gridpatrol/tools/patroni-<version>``, made once and shared by every checkout
        (the checkout, and the Python its virtualenv was made from, may sit where the server's user cannot go,
        like /root)."""
        if self._account() is None:
            return Path(sys.executable).parent / "patroni"
        tools = SHARED_ROOT / "tools" / PATRONI.replace("[etcd3]==", "-")
        patroni = tools / "bin" / "patroni"
        tools.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        with (tools.parent / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's `up` may be making it right now
            if patroni.is_file():
                return patroni
            python = shutil.which("python3", path="/usr/bin:/bin")
            if python is None:
                raise DatabaseUnavailableError("the cluster needs Debian's python3 (apt-get install python3-venv)")
            log.warning("installing Patroni for the cluster's user in %s (once)", tools)
            steps = [[python, "-m", "venv", str(tools)],
                     [str(tools / "bin" / "pip"), "install", "--quiet", PATRONI, "psycopg2-binary>=2.9,<3"]]
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    shutil.rmtree(tools, ignore_errors=True)
                    raise DatabaseUnavailableError(
                        f"could not install Patroni for the cluster ({' '.join(step[:3])}): "
                        f"{(done.stderr or done.stdout).strip()[-400:]} (python3-venv missing? run `make cluster`)")
        return patroni

    def _spawn(self, args: list[str], *, log_file: Path, pid_file: Path, env: dict[str, str] | None = None,
               namespace: str | None = None) -> None:
        """Start ``args`` in the background as the server's user, in a session of its own (so the CLI's exit does
        not stop it), its output appended to ``log_file``; in network namespace ``namespace`` when given (entered
        as root, then the user is taken by ``runuser``)."""
        account = self._account()
        kwargs: dict[str, Any] = {"user": account[0], "group": account[1], "extra_groups": []} if account else {}
        if namespace is not None:
            # setpriv execs (runuser would fork, and the pid kept would not be Patroni's)
            who = ["setpriv", f"--reuid={account[0]}", f"--regid={account[1]}", "--clear-groups", "--"] if account \
                else []
            args = ["ip", "netns", "exec", namespace, *who, *args]
            kwargs = {}
        out = log_file.open("ab")
        self._chown(log_file)
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=log_file.parent, start_new_session=True,
                                   env={**os.environ, "HOME": str(log_file.parent), "LC_ALL": "C.UTF-8", **(env or {})},
                                   **kwargs)
        out.close()
        pid_file.write_text(str(process.pid))
        _CHILDREN.append(process)

    @staticmethod
    def _alive(pid_file: Path, name: str) -> int | None:
        """The pid in ``pid_file`` when it is a live process whose command line mentions ``name``."""
        _reap()
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        if stat[stat.rindex(")") + 2:].startswith(("Z", "X")):
            return None
        return pid if name in cmdline else None

    # -- etcd -----------------------------------------------------------------------------------------------

    def etcd_url(self) -> str:
        return f"http://{self.gateway}:{self.state()['etcd'][0]}"

    def _start_etcd(self) -> None:
        directory = self.root / "etcd"
        directory.mkdir(mode=0o700, exist_ok=True)
        self._chown(directory)
        if self._alive(directory / "etcd.pid", "etcd"):
            return
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        if not Path(etcd).is_file():
            raise DatabaseUnavailableError("the cluster needs etcd: run `make cluster` (apt-get install etcd-server)")
        client, peer = self.state()["etcd"]
        self._spawn([etcd, "--name", "etcd1", "--data-dir", str(directory / "data"),
                     "--listen-client-urls", f"http://{self.gateway}:{client}",
                     "--advertise-client-urls", f"http://{self.gateway}:{client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", f"etcd1=http://127.0.0.1:{peer}", "--log-level", "warn"],
                    log_file=directory / "etcd.log", pid_file=directory / "etcd.pid")
        self._wait(lambda: _get_json(f"{self.etcd_url()}/health") is not None, 30, "etcd did not start",
                   directory / "etcd.log")

    def etcd_running(self) -> bool:
        return self._alive(self.root / "etcd" / "etcd.pid", "etcd") is not None

    def stop_etcd(self, *, kill: bool = False) -> None:
        pid = self._alive(self.root / "etcd" / "etcd.pid", "etcd")
        if pid:
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
            self._wait(lambda: not self.etcd_running(), 30, "etcd did not stop", self.root / "etcd" / "etcd.log")

    def start_etcd(self) -> None:
        self._start_etcd()

    # -- Patroni's configuration ----------------------------------------------------------------------------

    def patroni_config(self, name: str) -> dict[str, Any]:
        """One node's Patroni configuration (YAML; written as JSON, which YAML reads)."""
        state = self.state()
        node = self.node_dir(name)
        passwords = state["passwords"]
        port, rest = self.pg_port(name), state["rest"][NODES.index(name)]
        net = f"10.77.{self._subnet}.0/24" if self.separate_hosts else "127.0.0.1/32"
        return {
            "scope": SCOPE, "name": name,
            "log": {"level": "WARNING"},
            "restapi": {"listen": f"{self.address(name)}:{rest}", "connect_address": f"{self.address(name)}:{rest}"},
            "etcd3": {"hosts": f"{self.gateway}:{state['etcd'][0]}"},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_S, "loop_wait": LOOP_WAIT_S, "retry_timeout": RETRY_TIMEOUT_S,
                    "maximum_lag_on_failover": 16 * 2**20,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True, "use_slots": True,
                        "parameters": {"wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                                       "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "512MB",
                                       "max_connections": 200, "hot_standby_feedback": "on"},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                "pg_hba": ["local all all trust",
                           f"host replication {REPLICATOR} {net} scram-sha-256",
                           f"host all all {net} scram-sha-256"],
            },
            "postgresql": {
                "listen": f"{self.address(name)}:{port}", "connect_address": f"{self.address(name)}:{port}",
                "data_dir": str(node / "data"), "bin_dir": str(pg_bindir()), "pgpass": str(node / "pgpass"),
                "authentication": {
                    "superuser": {"username": SUPERUSER, "password": passwords[SUPERUSER]},
                    "replication": {"username": REPLICATOR, "password": passwords[REPLICATOR]},
                    "rewind": {"username": SUPERUSER, "password": passwords[SUPERUSER]},
                },
                "parameters": {"unix_socket_directories": str(node / "run"), "shared_buffers": "128MB",
                               "work_mem": "32MB", "maintenance_work_mem": "128MB", "max_wal_size": "1GB",
                               "password_encryption": "scram-sha-256"},
            },
        }

    def _write_config(self, name: str) -> Path:
        node = self.node_dir(name)
        for path in (node, node / "run"):
            path.mkdir(mode=0o700, exist_ok=True)
            self._chown(path)
        config = node / "patroni.yml"
        config.write_text(json.dumps(self.patroni_config(name), indent=1))
        config.chmod(0o600)  # it holds the passwords
        self._chown(config)
        return config

    # -- nodes ----------------------------------------------------------------------------------------------

    def node_pid(self, name: str) -> int | None:
        return self._alive(self.node_dir(name) / "patroni.pid", "patroni")

    def postgres_pid(self, name: str) -> int | None:
        pid_file = self.node_dir(name) / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        return pid if "postgres" in stat and not stat[stat.rindex(")") + 2:].startswith(("Z", "X")) else None

    def start_node(self, name: str) -> None:
        """Start one node's Patroni (which starts, or clones and starts, its PostgreSQL)."""
        if self.node_pid(name):
            return
        config = self._write_config(name)
        if self.separate_hosts:
            self._ensure_network()
        self._spawn([str(self._patroni_bin()), str(config)], log_file=self.node_dir(name) / "patroni.log",
                    pid_file=self.node_dir(name) / "patroni.pid",
                    namespace=self.namespace(name) if self.separate_hosts else None)

    def kill_node(self, name: str) -> None:
        """SIGKILL the node's Patroni and its PostgreSQL (the postmaster; its children die with it): a machine
        lost, not a clean stop."""
        for pid in (self.node_pid(name), self.postgres_pid(name)):
            if pid:
                os.kill(pid, signal.SIGKILL)
        self._wait(lambda: self.node_pid(name) is None and self.postgres_pid(name) is None, 30,
                   f"{name} did not die", self.node_dir(name) / "patroni.log")
        # a postmaster killed with -9 leaves its backends running for a moment: wait for the port to close
        self._wait(lambda: _free(self.pg_port(name)), 30, f"{name}'s port stayed busy",
                   self.node_dir(name) / "patroni.log")

    def stop_node(self, name: str) -> None:
        """A clean stop: Patroni stops its PostgreSQL (fast shutdown) and hands leadership on."""
        pid = self.node_pid(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
            self._wait(lambda: self.node_pid(name) is None and self.postgres_pid(name) is None, 90,
                       f"{name} did not stop", self.node_dir(name) / "patroni.log")

    # -- the whole cluster --------------------------------------------------------------------------------

    def up(self, *, timeout_s: float = 180.0, say: Callable[[str], None] = lambda _: None) -> list[Member]:
        """Start etcd and the three nodes (initialising the cluster on the first run), wait for a primary and two
        streaming replicas, and make sure the service's role exists. Returns the members."""
        bindir = pg_bindir()
        if not postgis_installed(bindir):
            raise DatabaseUnavailableError(f"PostGIS is not installed for PostgreSQL {PG_MAJOR}; run `make setup`")
        if self.root.resolve().is_relative_to(SHARED_ROOT):
            SHARED_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state()
        self._chown(self.root, self.state_file)
        self._patroni_bin()
        if self.separate_hosts:
            say("network namespaces")
            self._ensure_network()
        say("etcd")
        self._start_etcd()
        for name in NODES:
            say(f"node {name}")
            self.start_node(name)
        self.wait_healthy(timeout_s=timeout_s, replicas=2)
        self.ensure_service_role()
        return self.members()

    def down(self) -> None:
        """Stop the replicas, then the primary (so it does not fail over to a node about to stop), then etcd."""
        members = {m.name: m for m in self.members()} if self.etcd_running() else {}
        order = sorted(NODES, key=lambda n: members[n].role == "leader" if n in members else False)
        for name in order:
            self.stop_node(name)
        self.stop_etcd()
        self.remove_network()

    def members(self) -> list[Member]:
        """The members as Patroni sees them (from the first REST API that answers; [] when none does)."""
        for name in NODES:
            found = _get_json(f"{self.rest_url(name)}/cluster")
            if found is not None:
                out = []
                for m in found.get("members", []):
                    lag = m.get("lag")
                    out.append(Member(name=m["name"], role=m["role"], state=m["state"], host=m["host"],
                                      port=int(m["port"]), lag_bytes=lag if isinstance(lag, int) else None))
                return sorted(out, key=lambda m: m.name)
        return []

    def maintenance(self, on: bool) -> None:
        """Patroni's maintenance mode (``patronictl pause``): Patroni stops managing PostgreSQL (no failover, no
        restarts, and it leaves a paused replay paused). For the tests that hold a replica back on purpose."""
        body = json.dumps({"pause": on}).encode()
        for name in NODES:
            request = urllib.request.Request(f"{self.rest_url(name)}/config", data=body, method="PATCH",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                continue
        else:
            raise DatabaseUnavailableError("no Patroni REST API answered")
        self._wait(lambda: (_get_json(f"{self.rest_url(self.leader() or 'n1')}/cluster") or {}).get("pause", False)
                   == on, 30, "Patroni did not switch maintenance mode")

    def leader(self) -> str | None:
        return next((m.name for m in self.members() if m.role == "leader" and m.state == "running"), None)

    def wait_healthy(self, *, timeout_s: float = 120.0, replicas: int = 2) -> None:
        """Until one node leads and ``replicas`` stream from it."""
        def healthy() -> bool:
            members = self.members()
            leaders = [m for m in members if m.role == "leader" and m.state == "running"]
            streaming = [m for m in members if m.role != "leader" and m.state == "streaming"]
            return len(leaders) == 1 and len(streaming) >= replicas and self._writable(leaders[0].name)
        self._wait(healthy, timeout_s, f"the cluster did not come up with a primary and {replicas} replicas",
                   *(self.node_dir(n) / "patroni.log" for n in NODES))

    def _writable(self, name: str) -> bool:
        try:
            conn = self.connect(name)
        except psycopg2.OperationalError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT NOT pg_is_in_recovery()")
                return bool(cur.fetchone()[0])
        finally:
            conn.close()

    def connect(self, name: str, database: str = "postgres") -> Any:
        """A superuser connection to one node (its unix socket; root and the server's user reach it)."""
        conn = psycopg2.connect(host=str(self.node_dir(name) / "run"), port=self.pg_port(name), user=SUPERUSER,
                                dbname=database, connect_timeout=3)
        conn.autocommit = True
        return conn

    def _primary(self) -> str:
        leader = self.leader()
        if leader is None:
            raise DatabaseUnavailableError("the cluster has no primary (`gridpatrol cluster status`)")
        return leader

    def ensure_service_role(self) -> None:
        """The service's role (with its password: it connects over TCP) on the primary; replicas get it by
        replication."""
        password = self.state()["passwords"][SERVICE_ROLE]
        conn = self.connect(self._primary())
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SERVICE_ROLE,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                    "PASSWORD {}").format(sql.Identifier(SERVICE_ROLE), sql.Literal(password)))
                cur.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(
                    sql.Identifier(SERVICE_ROLE)))
                cur.execute(sql.SQL("GRANT pg_checkpoint TO {}").format(sql.Identifier(SERVICE_ROLE)))
        finally:
            conn.close()

    def create_database(self, name: str, *, template: str | None = None) -> bool:
        """Database ``name`` on the primary, owned by the service's role, with PostGIS (replicated to the
        others). Returns True when it was created."""
        leader = self._primary()
        conn = self.connect(leader)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone():
                    return False
                cur.execute(create_database_sql(name, template))
        finally:
            conn.close()
        if template is None:
            conn = self.connect(leader, name)
            try:
                with conn.cursor() as cur:
                    cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            finally:
                conn.close()
        return True

    def drop_database(self, name: str) -> None:
        conn = self.connect(self._primary())
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()

    def urls(self, database: str = "gridpatrol", *, superuser: bool = False) -> tuple[str, str]:
        """(write URL, read URL) of ``database`` for SQLAlchemy: libpq multi-host, every node, with a short
        connect timeout so a dead node costs seconds, not minutes."""
        role = SUPERUSER if superuser else SERVICE_ROLE
        password = quote(self.state()["passwords"][role], safe="")
        hosts = "&".join(f"host={self.address(n)}:{self.pg_port(n)}" for n in NODES)
        # keepalives and a TCP user timeout: a connection to a node cut off the network fails in seconds instead
        # of waiting for the kernel's retransmissions (minutes)
        base = (f"postgresql+psycopg2://{role}:{password}@/{database}?{hosts}&connect_timeout=3&keepalives=1"
                "&keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=10000")
        return f"{base}&target_session_attrs=read-write", f"{base}&target_session_attrs=prefer-standby"

    def _wait(self, ready: Callable[[], bool], timeout_s: float, what: str, *logs: Path) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                tails = []
                for path in logs:
                    if path.is_file():
                        lines = path.read_text(errors="replace").splitlines()[-6:]
                        tails.append(f"{path}:\n  " + "\n  ".join(lines))
                raise DatabaseUnavailableError(f"{what} within {timeout_s:.0f} s" + ("\n" + "\n".join(tails)
                                                                                    if tails else ""))
            time.sleep(0.5)


_CHILDREN: list[subprocess.Popen[bytes]] = []
"""The processes this one started (kept so that they are reaped when they end, not left as zombies)."""


def _reap() -> None:
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)


def _get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` (a local etcd or Patroni REST API) as JSON, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
