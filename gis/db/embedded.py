"""A private PostgreSQL + PostGIS cluster under the project's data directory, started and stopped by gridpatrol.

Layout under ``root`` (see :func:`cluster_root`)::

    data/           the cluster (initdb on first use)
    run/            its unix socket, in a directory only the server's user may enter (0700)
    postgres.log    the server log

The server listens on that private socket only, never on TCP, with ``trust`` authentication for the single
superuser ``gridpatrol``: only the server's own OS user (and root) can reach the socket, so no other local user
can connect, and two checkouts' servers never collide however their ports are set. The service itself connects
as ``gridpatrol_service``, which owns the databases and everything in them but is no superuser (the superuser only
creates roles, databases and extensions). It is a private development and test server, not a shared one (point
``DATABASE_URL`` at a real server for that).

PostgreSQL refuses to run as root, so when gridpatrol runs as root the cluster belongs to, and runs as, the
unprivileged system user ``gridpatrol`` (created when missing). That user must be able to reach the cluster, and a
checkout in root's home (``/root`` is 0700 on Debian) is out of its reach: as root the cluster therefore lives in
``/var/lib/gridpatrol/<checkout id>``, one per data directory, and the checkout's ``var/`` keeps everything else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from gis.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

SUPERUSER = "gridpatrol"
SERVICE_ROLE = "gridpatrol_service"
"""The role the service and its tools connect as: the owner of the databases, not a superuser."""
OS_USER = "gridpatrol"
DEFAULT_PORT = 54329
PG_MAJOR = "15"
SHARED_ROOT = Path("/var/lib/gridpatrol")
"""Where a root-run checkout's clusters live: reachable by the server's user wherever the checkout is."""
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, with its terminating NUL


def _key(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:12]


def cluster_root(data_dir: Path) -> Path:
    """Where the embedded cluster of the data directory ``data_dir`` (a checkout's ``var/``) lives.

    Run by a normal user: ``data_dir/postgres``, which that user owns. Run as root: ``/var/lib/gridpatrol/<id>``,
    where ``<id>`` is derived from the data directory's absolute path, so each checkout has its own cluster and the
    unprivileged server user can reach it even when the checkout sits in a directory it cannot enter.
    """
    data_dir = data_dir.resolve()
    if os.geteuid() != 0:
        return data_dir / "postgres"
    return SHARED_ROOT / _key(data_dir)


def pg_bindir() -> Path:
    """Where ``initdb``/``pg_ctl`` live: ``$GRIDPATROL_PG_BIN``, Debian's ``/usr/lib/postgresql/15/bin``, or PATH."""
    env = os.environ.get("GRIDPATROL_PG_BIN")
    candidates = [Path(env)] if env else []
    candidates.append(Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"))
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    for directory in candidates:
        if (directory / "pg_ctl").is_file() and (directory / "initdb").is_file():
            return directory
    raise DatabaseUnavailableError(
        f"PostgreSQL {PG_MAJOR} is not installed (no initdb/pg_ctl); run `make setup` "
        f"(apt-get install postgresql-{PG_MAJOR}-postgis-3) or set DATABASE_URL to an existing server"
    )


def postgis_installed(bindir: Path) -> bool:
    sharedir = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False)
    share = Path(sharedir.stdout.strip()) if sharedir.returncode == 0 else Path(f"/usr/share/postgresql/{PG_MAJOR}")
    return (share / "extension" / "postgis.control").is_file()


# Given at every start, so that a cluster made by an earlier version gets them too. The embedded server is a
# single node with no replica and no WAL archive: minimal WAL lets a table made and filled in one transaction (a
# bulk import's archive partition, migration 0012) skip the log, its files synced at commit instead (a 200,000-row
# historic file: a second less). Crash recovery is the same; only replication and point-in-time recovery need
# more, and backups are pg_dump files (gis.db.backup).
SERVER_OPTIONS = "-c wal_level=minimal -c max_wal_senders=0 -c listen_addresses=''"


def create_database_sql(name: str, template: str | None = None) -> sql.Composed:
    """``CREATE DATABASE`` for ``name``, owned by the service's role (a copy of ``template`` when given)."""
    statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(SERVICE_ROLE))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    return statement


@dataclass(frozen=True)
class EmbeddedPostgres:
    root: Path
    port: int = DEFAULT_PORT

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, port: int = DEFAULT_PORT) -> EmbeddedPostgres:
        """The cluster of a checkout's data directory (:func:`cluster_root`)."""
        return cls(cluster_root(data_dir), port=port)

    @property
    def socket_dir(self) -> Path:
        """The private directory of the server's socket: ``root/run``, or a short one under /tmp when that path is
        too long for a unix socket (a deep checkout)."""
        run = self.root.resolve() / "run"
        if len(str(run)) + len(f"/.s.PGSQL.{self.port}.lock") <= SOCKET_PATH_MAX:
            return run
        return Path("/tmp") / f"gridpatrol-{os.geteuid()}-{_key(self.root.resolve())}"

    def _connect(self, database: str) -> psycopg2.extensions.connection:
        return psycopg2.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=database)

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "gridpatrol", *, superuser: bool = False) -> str:
        """A SQLAlchemy URL of ``database`` through the private socket (libpq's ``host`` names its directory), as
        the service's role (or, for the server's own upkeep, its superuser)."""
        return (f"postgresql+psycopg2://{SUPERUSER if superuser else SERVICE_ROLE}@/{database}"
                f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}")

    # -- running commands as the right user -------------------------------------------------------------

    def _account(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as, or None to run as the current user (not root)."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(OS_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", OS_USER],
                check=True, capture_output=True,
            )
            entry = pwd.getpwnam(OS_USER)
        return entry.pw_uid, entry.pw_gid

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        account = self._account()
        kwargs: dict[str, object] = {}
        if account is not None:
            kwargs = {"user": account[0], "group": account[1], "extra_groups": []}
        env = {**os.environ, "HOME": str(self.root), "LC_ALL": "C.UTF-8"}
        result = subprocess.run(args, capture_output=True, text=True, cwd=self.root, env=env, check=False,
                                **kwargs)  # type: ignore[call-overload]
        if check and result.returncode != 0:
            raise DatabaseUnavailableError(
                f"`{Path(args[0]).name} {' '.join(args[1:3])}` failed: {(result.stderr or result.stdout).strip()}"
                f"{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 8) -> str:
        if not self.log_file.is_file():
            return ""
        tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return "\nserver log (" + str(self.log_file) + "):\n  " + "\n  ".join(tail)

    def _prepare_dirs(self) -> None:
        if self.root.resolve().is_relative_to(SHARED_ROOT):
            SHARED_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket_dir.chmod(0o700)  # only the server's user reaches the socket: trust auth is safe behind it
        account = self._account()
        if account is not None:
            for path in (self.root, self.socket_dir, *( [self.pgdata] if self.pgdata.exists() else [])):
                os.chown(path, *account)
            if self.log_file.exists():
                os.chown(self.log_file, *account)
            # The server user must be able to walk down to the data directory.
            for parent in self.root.resolve().parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise DatabaseUnavailableError(
                        f"{parent} is not traversable by the `{OS_USER}` user that runs PostgreSQL; "
                        f"chmod o+x {parent}, or set GRIDPATROL_DATA_DIR to a directory under /var or /srv"
                    )

    # -- lifecycle --------------------------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def status(self) -> str:
        """``running``, ``stopped`` or ``absent`` (no cluster yet)."""
        if not self.initialised():
            return "absent"
        result = self._run([str(pg_bindir() / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False)
        # pg_ctl only asks whether the pid exists; a killed postmaster can linger as a zombie.
        return "running" if result.returncode == 0 and self._postmaster_alive() else "stopped"

    def _postmaster_alive(self) -> bool:
        """Whether postmaster.pid names a live (not zombie) postgres process."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return False
        name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split(" ", 1)[0]
        return name.startswith("postgres") and state not in ("Z", "X")

    def init(self) -> None:
        bindir = pg_bindir()
        if not postgis_installed(bindir):
            raise DatabaseUnavailableError(
                f"PostGIS is not installed for PostgreSQL {PG_MAJOR}; run `make setup` "
                f"(apt-get install postgresql-{PG_MAJOR}-postgis-3)"
            )
        self._prepare_dirs()
        if self.initialised():
            return
        log.info("initdb %s", self.pgdata)
        self._run([str(bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8"])
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# gridpatrol embedded server\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "shared_buffers = 256MB\n"
                "work_mem = 32MB\n"
                "maintenance_work_mem = 256MB\n"
                "max_wal_size = 2GB\n"
            )

    def _recover_stale_pid(self) -> None:
        """Remove a postmaster.pid (and socket lock) left by a server that is no longer running."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        alive = self._postmaster_alive()
        if not alive:
            log.warning("removing stale %s: its process is not a running postgres", pid_file)
            pid_file.unlink()
            for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
                lock.unlink()

    def start(self) -> bool:
        """Start the server (initialising the cluster first if needed). Returns False if it was already running."""
        self.init()
        if self.status() == "running":
            return False
        self._recover_stale_pid()
        self._prepare_dirs()
        self._run([str(pg_bindir() / "pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_file), "-w",
                   "-t", "60", "-o", f"-p {self.port} -k {self.socket_dir} {SERVER_OPTIONS}"])
        self._wait_ready()
        return True

    def stop(self) -> bool:
        """Stop the server. Returns False if it was not running."""
        if self.status() != "running":
            return False
        self._run([str(pg_bindir() / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60"])
        return True

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._connect("postgres").close()
                return
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailableError(f"PostgreSQL did not accept connections: {exc}"
                                                   f"{self._log_tail()}") from exc
                time.sleep(0.2)

    # -- databases --------------------------------------------------------------------------------------

    def _admin_connection(self) -> psycopg2.extensions.connection:
        conn = self._connect("postgres")
        conn.autocommit = True
        return conn

    def _ensure_service_role(self, cur: Any) -> None:
        """The role the service connects as: it owns its databases and their objects, and is no superuser (no
        ``COPY … TO PROGRAM``, no reading other databases, no minting of a server-side file). It may set
        ``session_replication_role`` (a bulk import's foreign keys are checked set-based instead of row by row) and
        CHECKPOINT (the benchmarks)."""
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SERVICE_ROLE,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION").format(
                sql.Identifier(SERVICE_ROLE)))
        cur.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(
            sql.Identifier(SERVICE_ROLE)))
        cur.execute(sql.SQL("GRANT pg_checkpoint TO {}").format(sql.Identifier(SERVICE_ROLE)))

    def create_database(self, name: str, *, template: str | None = None,
                        extensions: tuple[str, ...] = ("postgis",)) -> bool:
        """Create database ``name``, owned by the service's role, with ``extensions`` created by the superuser
        (or as a copy of ``template``) unless it exists; a database an earlier version made as the superuser's is
        handed to the service's role. Returns True if it was created."""
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                self._ensure_service_role(cur)
                cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,))
                found = cur.fetchone()
                if found is None:
                    cur.execute(create_database_sql(name, template))
        finally:
            conn.close()
        if found is not None and found[0] == SERVICE_ROLE:
            return False
        conn = self._connect(name)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                if found is None and template is None:
                    for extension in extensions:
                        cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
                else:
                    self._hand_over(cur, name)
        finally:
            conn.close()
        return found is None

    def create_extension(self, database: str, extension: str) -> bool:
        """Create ``extension`` in ``database`` as the superuser (an untrusted one, such as pgRouting for the
        benchmarks); False when the server has no such extension installed."""
        conn = self._connect(database)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (extension,))
                if cur.fetchone() is None:
                    return False
                cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
                return True
        finally:
            conn.close()

    def _hand_over(self, cur: Any, name: str) -> None:
        """Give the service's role what the superuser owns in database ``name`` (an earlier version's database, or
        a clone of one), extensions' objects left as they are."""
        cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name),
                                                                    sql.Identifier(SERVICE_ROLE)))
        cur.execute("""
            SELECT format('ALTER %%s %%s OWNER TO %%I', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm'
                   THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, %(role)s)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
              AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND pg_get_userbyid(c.relowner) <> %(role)s
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
              AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                                                    AND d.deptype IN ('a', 'i')))
            UNION ALL
            SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(role)s)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %(role)s
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
            UNION ALL
            SELECT format('ALTER SCHEMA %%I OWNER TO %%I', n.nspname, %(role)s) FROM pg_namespace n
            WHERE n.nspname LIKE 'gridpatrol_import_%%' AND pg_get_userbyid(n.nspowner) <> %(role)s
        """, {"role": SERVICE_ROLE})
        for (statement,) in cur.fetchall():
            cur.execute(statement)

    def drop_database(self, name: str) -> None:
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()
