"""What every command shares: the settings, the database (embedded or ``DATABASE_URL``), progress bars, CSV out."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from api.settings import Settings
from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import check_database, make_engine
from gis.db.migrate import upgrade
from gis.errors import DatabaseUnavailableError, InputError
from gis.exports import write_rows

EXIT_INPUT = 2
EXIT_DATABASE = 3


class Command(Protocol):
    def __call__(self, args: argparse.Namespace, settings: Settings) -> int: ...


Subparsers = argparse._SubParsersAction  # what each command group's ``register`` adds its commands to


def embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres.for_data_dir(settings.data_dir, port=settings.pg_port)


def database_url(settings: Settings, *, say: Callable[[str], None] = print) -> str:
    """``DATABASE_URL`` when set; otherwise the embedded server, started (and its database created) if needed."""
    if settings.database_url:
        return settings.database_url
    server = embedded(settings)
    if server.start():
        say(f"started embedded PostgreSQL on its private socket in {server.socket_dir} ({server.pgdata})")
    server.create_database(settings.db_name)
    return server.url(settings.db_name)


def ready_engine(settings: Settings) -> Engine:
    """An engine on a reachable, migrated database."""
    engine = make_engine(database_url(settings))
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        check_database(engine)  # raises the clear DatabaseUnavailableError
        raise DatabaseUnavailableError(str(exc)) from exc
    upgrade(engine)
    return engine


@contextmanager
def engine_for(settings: Settings) -> Iterator[Engine]:
    """A command's database: reachable and migrated on entry, its connections closed on exit."""
    engine = ready_engine(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def check_port_free(host: str, port: int) -> None:
    """Refuse at once, before any loading, when another server (another checkout's ``make run``) holds the port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise InputError(f"{host}:{port} is already in use (another gridpatrol, or another service): stop it, "
                             f"or serve on another port, e.g. GRIDPATROL_PORT={port + 1} make run") from None


def when(text: str | None, default: datetime) -> datetime:
    """An ISO 8601 date or time from the command line (UTC when it names no zone), or ``default``."""
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def write_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str], path: str | None, *, what: str,
              after: str = "") -> None:
    """Rows as CSV to ``path``, or to the terminal when there is none (then nothing else goes to stdout)."""
    out = open(path, "w", newline="") if path else sys.stdout  # noqa: SIM115
    try:
        write_rows(out, rows, fields)
    finally:
        if path:
            out.close()
    if path:
        print(f"wrote {len(rows)} {what} to {path}{after}")


def read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


class StepBar:
    """A tqdm progress bar over the importer's named steps."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr,
                        bar_format="{desc}: {n_fmt}/{total_fmt} {bar} {postfix} [{elapsed}]")
        self.started = False

    def __call__(self, name: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_postfix_str(name)

    def close(self, ok: bool) -> None:
        if ok and self.started:
            self.bar.update(1)
            self.bar.set_postfix_str("done")
        self.bar.close()
