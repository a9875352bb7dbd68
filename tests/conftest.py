"""Fixtures: a real PostGIS started by the suite itself, and databases cloned from a migrated template.

The suite starts the same embedded server the app uses (``var/postgres``), creates a migrated template database
once, and gives each test that writes its own copy (``CREATE DATABASE … TEMPLATE``), so tests never see each
other's rows. A server the suite started is stopped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.cities import city_from_name
from gis.db.divisions import divide_and_store
from gis.db.embedded import DEFAULT_PORT, EmbeddedPostgres
from gis.db.engine import make_engine
from gis.db.importer import ImportReport, import_osm
from gis.db.migrate import upgrade
from gis.db.staff import seed_demo_staff

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BEIJING = DATA / "beijing-xueyuanlu.osm"
NANJING = DATA / "nanjing-xinjiekou.osm"


@pytest.fixture(autouse=True)
def _no_outside_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use the suite's own server, never whatever DATABASE_URL the shell had."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GRIDPATROL_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(ROOT / "var" / "postgres", port=int(os.environ.get("GRIDPATROL_PG_PORT", DEFAULT_PORT)))
    started = server.start()
    yield server
    if started:
        server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    name = f"gp_test_template_{os.getpid()}"
    pg_server.drop_database(name)
    pg_server.create_database(name)
    engine = make_engine(pg_server.url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    pg_server.drop_database(name)


def _clone(server: EmbeddedPostgres, template: str) -> str:
    name = f"gp_test_{uuid.uuid4().hex[:10]}"
    server.create_database(name, template=template)
    return name


@pytest.fixture
def fresh_url(pg_server: EmbeddedPostgres, template_db: str) -> Iterator[str]:
    """URL of an empty, migrated database of this test's own."""
    name = _clone(pg_server, template_db)
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def fresh_engine(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def beijing_db(pg_server: EmbeddedPostgres, template_db: str) -> Iterator[tuple[str, ImportReport]]:
    """A database holding the Beijing fixture, shared read-only by the tests that only read."""
    name = _clone(pg_server, template_db)
    url = pg_server.url(name)
    engine = make_engine(url)
    report = import_osm(engine, BEIJING, city=city_from_name("beijing"))
    engine.dispose()
    yield url, report
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def beijing_engine(beijing_db: tuple[str, ImportReport]) -> Iterator[Engine]:
    engine = make_engine(beijing_db[0])
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def divided_template(pg_server: EmbeddedPostgres, template_db: str) -> Iterator[str]:
    """A template database: the Beijing fixture imported, divided into grids, with the demo's synthetic staff."""
    name = _clone(pg_server, template_db)
    engine = make_engine(pg_server.url(name))
    import_osm(engine, BEIJING, city=city_from_name("beijing"))
    with engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(engine, city_id)
    seed_demo_staff(engine, city_id)
    engine.dispose()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def divided_url(pg_server: EmbeddedPostgres, divided_template: str) -> Iterator[str]:
    """A database of this test's own, cloned from :func:`divided_template`."""
    name = _clone(pg_server, divided_template)
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def divided_engine(divided_url: str) -> Iterator[Engine]:
    engine = make_engine(divided_url)
    yield engine
    engine.dispose()
