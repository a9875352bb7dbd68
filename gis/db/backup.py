"""``gridpatrol db backup`` / ``restore``: the whole database in one pg_dump custom-format file, and back.

A restore runs in one transaction (``--single-transaction --exit-on-error``): a broken or foreign file leaves the
database as it was. It replaces what the file holds (``--clean --if-exists``): every table's rows, the users and
their passwords, the token-signing key (so every sign-in made since the backup ends), the audit log, and the events
and edits made since the backup are gone; the PostGIS extension stays.

The connection's password never appears on a command line (``ps`` shows those to every local user): it goes to
pg_dump and pg_restore in their environment. A backup file is readable by its owner only (0600), from its first
byte.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from gis.db.embedded import pg_bindir
from gis.db.engine import url_hosts
from gis.errors import DatabaseUnavailableError, InputError

MAGIC = b"PGDMP"
"""What a pg_dump custom-format file starts with."""


def libpq_env(url: str) -> dict[str, str]:
    """The connection of a SQLAlchemy URL as libpq's environment variables (a unix socket's directory as host;
    a multi-host URL's hosts and ports as libpq's comma-separated lists, with its ``target_session_attrs``)."""
    parsed = make_url(url)
    query = dict(parsed.query)
    hosts = query.get("host")
    values: dict[str, object] = {"PGUSER": parsed.username, "PGPASSWORD": parsed.password,
                                 "PGDATABASE": parsed.database,
                                 "PGTARGETSESSIONATTRS": query.get("target_session_attrs"),
                                 "PGCONNECT_TIMEOUT": query.get("connect_timeout")}
    servers = url_hosts(url)
    if len(servers) > 1:
        values["PGHOST"] = ",".join(host for host, _ in servers)
        values["PGPORT"] = ",".join(port or "5432" for _, port in servers)
    elif hosts is not None or parsed.host is not None:
        values["PGHOST"], values["PGPORT"] = servers[0]
    return {k: str(v) for k, v in values.items() if v is not None}


def _run(args: list[str], what: str, url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | libpq_env(url)
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env, umask=0o077)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = next((line for line in detail if "error" in line.lower()), detail[0] if detail else "")
        if "connection" in reason.lower() or "could not connect" in reason.lower():
            raise DatabaseUnavailableError(f"{what} failed: {reason}")
        raise InputError(f"{what} failed: {reason}")


def backup(url: str, path: Path) -> int:
    """Write the database to ``path`` (pg_dump custom format, compressed); returns the file's size in bytes."""
    path = path.resolve()
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a file name, e.g. gridpatrol.dump")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    _run([str(pg_bindir() / "pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
          "--exclude-table-data=spatial_ref_sys", f"--file={partial}"], "the backup", url)
    partial.chmod(0o600)
    partial.replace(path)  # a backup that stopped half-way never takes the name of a good one
    return path.stat().st_size


def restore(url: str, path: Path) -> None:
    """Replace the database's contents with the backup at ``path``, all or nothing."""
    path = path.resolve()
    if not path.is_file():
        raise InputError(f"no backup file {path}")
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise InputError(f"{path} is not a gridpatrol backup (a pg_dump custom-format file)")
    listing = subprocess.run([str(pg_bindir() / "pg_restore"), "--list", str(path)], capture_output=True, text=True,
                             check=False)
    if listing.returncode != 0:
        raise InputError(f"{path} is not a readable backup: {listing.stderr.strip().splitlines()[:1]}")
    # the extensions stay as the database has them (with PostGIS's own table of coordinate systems): the
    # service's role owns the data, not the extensions
    kept = [line for line in listing.stdout.splitlines()
            if not _EXTENSION.search(line) and " spatial_ref_sys " not in line]
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as entries:
        entries.write("\n".join(kept) + "\n")
    try:
        _run([str(pg_bindir() / "pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", f"--use-list={entries.name}",
              f"--dbname={libpq_env(url)['PGDATABASE']}", str(path)], "the restore", url)
    finally:
        os.unlink(entries.name)


_EXTENSION = re.compile(r"^\d+;\s*\d+ \d+ (EXTENSION|COMMENT - EXTENSION) ")
