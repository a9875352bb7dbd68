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
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.access.store.users import create_user
from gis.db.embedded import DEFAULT_PORT, EmbeddedPostgres
from gis.db.engine import make_engine, writing
from gis.db.migrate import upgrade
from gis.demo.activity import seed_demo_activity
from gis.demo.staff import seed_demo_staff
from gis.geo.cities import City, city_from_options
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.importer import ImportReport, import_osm

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "test-admin"
PASSWORD = "correct horse battery"
DATA = ROOT / "data"
BEIJING = DATA / "beijing-xueyuanlu.osm"
NANJING = DATA / "nanjing-xinjiekou.osm"
BEIJING_CITY = city_from_options("beijing", code="110000")
"""The fixture's city: 北京市, its name and its districts' codes from GB/T 2260."""
NANJING_CITY = city_from_options("nanjing", code="320100")


@pytest.fixture(autouse=True)
def _no_outside_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use the suite's own server, never whatever DATABASE_URL the shell had."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GRIDPATROL_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres.for_data_dir(ROOT / "var", port=int(os.environ.get("GRIDPATROL_PG_PORT", DEFAULT_PORT)))
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
    writing(engine, create_user, ADMIN, PASSWORD, "admin")  # every clone has an admin bound to every city
    engine.dispose()
    yield name
    pg_server.drop_database(name)


def sign_in(client: TestClient, username: str = ADMIN, password: str = PASSWORD) -> dict[str, str]:
    """The headers of a signed-in request (through ``POST /token``, as any client does)."""
    answer = client.post("/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def admin(client: TestClient) -> TestClient:
    """The client, signed in as the template's admin for every request it sends."""
    client.headers.update(sign_in(client))
    return client


def user_headers(client: TestClient, engine: Engine, role: str, unit: str | None, **extra: object) -> dict[str, str]:
    """A new user with ``role`` bound to ``unit`` (see :func:`gis.access.store.users.create_user`), signed in."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    writing(engine, create_user, name, PASSWORD, role, unit=unit, **extra)  # type: ignore[arg-type]
    return sign_in(client, name)


def staff_headers(client: TestClient, engine: Engine, staff_id: int) -> dict[str, str]:
    """A grid member's account for a staff record, bound to their first grid (else their unit), signed in."""
    with engine.connect() as conn:
        unit = conn.execute(text(
            "SELECT g.code FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id WHERE sg.staff_id = :s "
            "UNION ALL SELECT u.code FROM staff s JOIN admin_units u ON u.id = s.unit_id WHERE s.id = :s LIMIT 1"),
            {"s": staff_id}).scalar_one()
    return user_headers(client, engine, "grid_member", unit, staff_id=staff_id)


def http_token(base: str, username: str = ADMIN, password: str = PASSWORD) -> str:
    """A token from a served app (for tests speaking real HTTP, and the browser's sign-in cookie)."""
    import httpx2 as httpx

    answer = httpx.post(f"{base}/token", data={"username": username, "password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def http_headers(base: str, username: str = ADMIN, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": f"Bearer {http_token(base, username, password)}"}


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
    report = import_osm(engine, BEIJING, city=BEIJING_CITY)
    engine.dispose()
    yield url, report
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def beijing_engine(beijing_db: tuple[str, ImportReport]) -> Iterator[Engine]:
    engine = make_engine(beijing_db[0])
    yield engine
    engine.dispose()


def divided_city(server: EmbeddedPostgres, template: str, osm: Path, city: City) -> tuple[str, Engine, int]:
    """A clone of ``template`` with the OSM file imported as ``city``, divided into grids and given the demo's
    synthetic staff: its database's name, an engine on it (the caller disposes of it) and the city's id."""
    name = _clone(server, template)
    engine = make_engine(server.url(name))
    import_osm(engine, osm, city=city)
    with engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(engine, city_id)
    seed_demo_staff(engine, city_id)
    return name, engine, city_id


@pytest.fixture(scope="session")
def divided_template(pg_server: EmbeddedPostgres, template_db: str) -> Iterator[str]:
    """A template database: the Beijing fixture imported, divided into grids, with the demo's synthetic staff."""
    name, engine, _ = divided_city(pg_server, template_db, BEIJING, BEIJING_CITY)
    engine.dispose()
    yield name
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def nanjing_url(pg_server: EmbeddedPostgres, template_db: str) -> Iterator[str]:
    """Central Nanjing imported, divided, staffed, with the demo's synthetic events and visits: shared by the tests
    that only read it (the leaders' maps, the big screen's figures, the bulletin)."""
    name, engine, city_id = divided_city(pg_server, template_db, NANJING, NANJING_CITY)
    url = pg_server.url(name)
    counts = seed_demo_activity(engine, city_id)
    assert counts["events"] > 100 and counts["visits"] > 10
    engine.dispose()
    yield url
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


@pytest.fixture
def official_city(fresh_engine: Engine, tmp_path: Path) -> Engine:
    """Nanjing with its (synthetic) official streets and communities stored (``gis.demo.registers``)."""
    import geopandas as gpd
    import pyogrio

    from gis.demo.registers import official_units_from_districts
    from gis.geo.crs import WGS84
    from gis.planning.store.official import import_units

    import_osm(fresh_engine, NANJING, city=NANJING_CITY)
    districts = gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE level = 'district' ORDER BY code"),
                                 fresh_engine, geom_col="geom", crs=WGS84).rename_geometry("geometry")
    path = tmp_path / "official-units.geojson"
    pyogrio.write_dataframe(official_units_from_districts(districts), path)
    writing(fresh_engine, import_units, path, city="nanjing", author="planner", reason="register", snap_m=0)
    return fresh_engine
