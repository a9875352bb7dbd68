"""Engines, who owns a transaction, and the one place where "the database cannot be reached" becomes a clear
error.

Store functions (``gis/<domain>/store``) take a :class:`~sqlalchemy.engine.Connection` and never commit: the
endpoint, CLI command or service that calls them opens the transaction (``with engine.begin() as conn``) and so
can put several of them in one. :func:`writing` and :func:`reading` are that, for a single call handed to a
worker thread (``run_in_threadpool(writing, engine, store.fn, ...)``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg2.errors
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from gis.errors import DatabaseUnavailableError


def make_engine(url: str, *, connections: int | None = None) -> Engine:
    """An engine over ``url``.

    ``connections=None`` (scripts, tests): 5 connections kept plus up to 10 more when needed, each tested with a
    round trip when taken from the pool (SQLAlchemy's pre-ping).

    ``connections=N`` (the service): a fixed pool of N, kept open; callers beyond it wait for one. No pre-ping: it
    is a round trip per request, a tenth of an event intake's cost. Disconnects are handled optimistically
    instead: a connection found broken is dropped (SQLAlchemy invalidates the pool), the request that found it is
    answered 503 "retry" (``api.errors``), and event intake retries by itself (``events.intake``)."""
    if connections is not None:
        engine = create_engine(url, pool_pre_ping=False, pool_size=connections, max_overflow=0, pool_timeout=30)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    event.listen(engine, "handle_error", _read_only_is_lost)
    return engine


def _read_only_is_lost(context: object) -> None:
    """A write refused because the server is read-only (SQLSTATE 25006: a connection kept from before a
    failover now talks to a replica, or a primary that lost etcd went read-only) is handled like a lost
    connection: the pool drops its connections, so the next ones find the primary again (the write URL's
    ``target_session_attrs=read-write``), and the request is answered 503 "retry" (``api.errors``)."""
    if isinstance(getattr(context, "original_exception", None), psycopg2.errors.ReadOnlySqlTransaction):
        context.is_disconnect = True  # type: ignore[attr-defined]


def refused_read_only(exc: BaseException) -> bool:
    """Whether ``exc`` is a write a read-only server refused (nothing was written)."""
    return isinstance(exc, DBAPIError) and isinstance(exc.orig, psycopg2.errors.ReadOnlySqlTransaction)


def url_hosts(url: str) -> list[tuple[str, str | None]]:
    """The (host, port) of each server a SQLAlchemy URL names: libpq's ``?host=a:1&host=b:2`` (a multi-host URL),
    a ``?host=`` socket directory with its ``?port=``, or the URL's own host and port (port None: libpq's
    default)."""
    parsed = make_url(url)
    hosts = parsed.query.get("host")
    ports = parsed.query.get("port")
    default = ports if isinstance(ports, str) else (ports[0] if ports else None)
    if hosts is None:
        return [(parsed.host or "localhost", str(parsed.port) if parsed.port else default)]
    out: list[tuple[str, str | None]] = []
    for host in [hosts] if isinstance(hosts, str) else hosts:
        name, _, port = host.rpartition(":") if ":" in host and not host.startswith("/") else (host, "", "")
        out.append((name, port or default))
    return out


def nodes_of(url: str) -> str:
    """The server(s) a URL names, for messages: ``host:port`` each, a multi-host URL's every node."""
    return ", ".join(f"{host}:{port or 5432}" for host, port in url_hosts(url))


def check_database(engine: Engine) -> str:
    """The PostGIS version of the database, or :class:`DatabaseUnavailableError` saying what to do."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            version = conn.execute(text(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
            )).scalar()
    except OperationalError as exc:
        lines = [line.strip() for line in str(exc.orig or exc).strip().splitlines() if line.strip()]
        if len(url_hosts(engine.url.render_as_string(hide_password=False))) > 1:
            wants = engine.url.query.get("target_session_attrs", "any")
            raise DatabaseUnavailableError(
                f"no node of the cluster ({nodes_of(str(engine.url))}) accepted a connection "
                f"(target_session_attrs={wants}): {'; '.join(lines[:6])}. Is the cluster up (`gridpatrol cluster "
                "status`)? A primary that lost etcd turns read-only until a leader is elected again"
            ) from exc
        reason = lines[0] if lines else str(exc)
        raise DatabaseUnavailableError(
            f"cannot reach the database at {where} ({reason}); start the embedded one with "
            "`gridpatrol db start`, or set DATABASE_URL to a running PostGIS"
        ) from exc
    if version is None:
        raise DatabaseUnavailableError(
            f"the database at {where} has no PostGIS; run `gridpatrol migrate` (needs CREATE EXTENSION rights)"
        )
    return str(version)


P = ParamSpec("P")
R = TypeVar("R")


def writing(engine: Engine, fn: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(conn, ...)`` in a transaction of its own: committed when it returns, rolled back when it raises.
    Refused by a read-only server (a replica, after a failover), it runs once more on a fresh connection, which
    the write URL takes to the primary: nothing was written the first time."""
    try:
        with engine.begin() as conn:
            return fn(conn, *args, **kwargs)
    except DBAPIError as exc:
        if not refused_read_only(exc):
            raise
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


def reading(engine: Engine, fn: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(conn, ...)`` on a connection of its own that commits nothing (rolled back when it is given back)."""
    with engine.connect() as conn:
        return fn(conn, *args, **kwargs)


@contextmanager
def raw_transaction(engine: Engine) -> Iterator[Any]:
    """A psycopg2 cursor in a transaction of its own on one of the pool's connections, for loaders that COPY:
    committed when the block ends, rolled back on any exception (a Ctrl-C too), the connection returned either way."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        yield cur
        cur.close()
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
