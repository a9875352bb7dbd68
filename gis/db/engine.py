"""Engines and the one place where "the database cannot be reached" becomes a clear error."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gis.errors import DatabaseUnavailableError


def make_engine(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def check_database(engine: Engine) -> str:
    """The PostGIS version of the database, or :class:`DatabaseUnavailableError` saying what to do."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            version = conn.execute(text(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
            )).scalar()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot reach the database at {where} ({reason}); start the embedded one with "
            "`gridpatrol db start`, or set DATABASE_URL to a running PostGIS"
        ) from exc
    if version is None:
        raise DatabaseUnavailableError(
            f"the database at {where} has no PostGIS; run `gridpatrol migrate` (needs CREATE EXTENSION rights)"
        )
    return str(version)
