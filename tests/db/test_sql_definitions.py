"""The database's functions and views are what the ``.sql`` files beside their domain say they are.

Migrations keep the SQL of their day (frozen copies); the files in ``gis/<domain>/sql/`` hold the current
definitions. A database built by the migrations must already hold exactly those: running the files over it changes
no function and no view.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Connection, Engine

from tests.conftest import ROOT

FILES = sorted(ROOT.glob("gis/*/sql/*.sql"))
_OURS = "n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"


def _definitions(conn: Connection) -> dict[str, str]:
    """Every function and view of the public schema that no extension (PostGIS) owns, by name, as PostgreSQL
    prints it."""
    functions = conn.exec_driver_sql(
        "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p "
        f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_OURS.format(oid='p.oid')}").all()
    views = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind = 'v' AND {_OURS.format(oid='c.oid')}").all()
    return dict(functions) | {f"view {name}": body for name, body in views}


def test_there_are_current_definitions() -> None:
    assert {p.relative_to(ROOT).as_posix() for p in FILES} >= {"gis/dispatch/sql/intake.sql",
                                                               "gis/dispatch/sql/event_rows.sql"}


def test_the_migrated_database_holds_the_current_definitions(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        migrated = _definitions(conn)
        cursor = conn.connection.cursor()  # the driver's own: no parameters, so a % in the SQL stays as it is
        for path in FILES:  # in the same transaction, rolled back: the test's database is left as it was
            cursor.execute(path.read_text())
        current = _definitions(conn)
        conn.rollback()
    assert set(current) == set(migrated), "a .sql file defines something the migrations never made"
    changed = [name for name in current if current[name] != migrated[name]]
    assert changed == [], f"the migrations leave these different from their .sql file: {changed}"
    named = {m.lower() for p in FILES for m in re.findall(r"(?:FUNCTION|VIEW)\s+(\w+)", p.read_text())}
    in_database = {re.sub(r"\(.*", "", name).removeprefix("view ") for name in migrated}
    assert in_database <= named, f"defined in the database but in no .sql file: {in_database - named}"
