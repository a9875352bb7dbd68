"""Vector tiles out of PostGIS, read back with GDAL's own MVT driver (the one QGIS uses), over HTTP with a bearer
token: the layers, per-zoom rules, jurisdiction, ETags, and the bad input each refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pyogrio
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from gis.geo.tiles import tile_of
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, http_token
from tests.db.test_events import inner_point, report
from tests.db.test_ogc import gdal_read


@pytest.fixture
def served(divided_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        yield base


def fetch(base: str, token: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)


def read_tile(tmp_path: Path, body: bytes, z: int, x: int, y: int, layer: str):  # type: ignore[no-untyped-def]
    """The tile as GDAL's MVT driver reads it (georeferenced by its z/x/y path)."""
    path = tmp_path / str(z) / str(x) / f"{y}.mvt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return pyogrio.read_dataframe(f"MVT:{path}", layer=layer)


def test_tiles_hold_the_layers_as_gdal_reads_them(served: str, divided_engine: Engine, tmp_path: Path) -> None:
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    token = http_token(served, "tiler")
    code, lon, lat = inner_point(divided_engine)
    x, y = tile_of(lon, lat, 15)
    grids = fetch(served, token, f"/tiles/grids/15/{x}/{y}.mvt")
    assert grids.status_code == 200 and grids.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    frame = read_tile(tmp_path, grids.content, 15, x, y, "grids")
    assert code in set(frame["code"]) and {"households", "buildings", "open", "open_overdue"} <= set(frame.columns)
    assert frame.crs.to_epsg() == 3857
    # the same tile through GDAL's network layer, signed in with the bearer token, as QGIS opens it
    _, remote = gdal_read(f"MVT:/vsicurl/{served}/tiles/grids/15/{x}/{y}.mvt", token, ["grids"])
    assert sorted(r["code"] for r in remote["rows"]) == sorted(frame["code"])
    # streets with their names, buildings only from zoom 14, key places
    streets = read_tile(tmp_path, fetch(served, token, f"/tiles/streets/15/{x}/{y}.mvt").content, 15, x, y,
                        "streets")
    assert len(streets) > 0 and streets["name"].notna().any()
    x13, y13 = tile_of(lon, lat, 13)
    assert fetch(served, token, f"/tiles/buildings/13/{x13}/{y13}.mvt").content == b""
    assert len(read_tile(tmp_path, fetch(served, token, f"/tiles/buildings/15/{x}/{y}.mvt").content, 15, x, y,
                         "buildings")) > 0
    units = read_tile(tmp_path, fetch(served, token, f"/tiles/admin_units/15/{x}/{y}.mvt").content, 15, x, y,
                      "admin_units")
    assert "community" in set(units["level"])


def test_event_tiles_cluster_then_point_and_never_carry_personal_data(served: str, divided_engine: Engine,
                                                                       tmp_path: Path) -> None:
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    token = http_token(served, "tiler")
    _, lon, lat = inner_point(divided_engine)
    for i in range(3):
        made = httpx.post(f"{served}/events", json=report(lon + i * 0.0002, lat, category="E0" + str(i + 1)),
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert made.status_code == 201
    x, y = tile_of(lon, lat, 16)
    body = fetch(served, token, f"/tiles/events/16/{x}/{y}.mvt").content
    points = read_tile(tmp_path, body, 16, x, y, "events")
    assert len(points) == 3 and set(points["count"]) == {1} and points["id"].notna().all()
    assert b"138 0000 0000" not in body and "reporter_contact" not in points.columns
    x9, y9 = tile_of(lon, lat, 9)
    clusters = read_tile(tmp_path, fetch(served, token, f"/tiles/events/9/{x9}/{y9}.mvt").content, 9, x9, y9,
                         "events")
    assert clusters["count"].sum() == 3 and len(clusters) < 3


def test_a_tile_is_cut_to_the_jurisdiction_and_cached_by_its_etag(served: str, divided_engine: Engine,
                                                                   tmp_path: Path) -> None:
    code, lon, lat = inner_point(divided_engine)
    with divided_engine.connect() as conn:
        other = conn.execute(text("SELECT code FROM admin_units WHERE level = 'community' AND code <> left(:g, 12) "
                                  "AND EXISTS (SELECT 1 FROM grids g WHERE g.community_id = admin_units.id) "
                                  "ORDER BY code LIMIT 1"), {"g": code}).scalar()
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    writing(divided_engine, create_user, "next-door", PASSWORD, "dispatcher", unit=other)
    token, theirs = http_token(served, "tiler"), http_token(served, "next-door")
    x, y = tile_of(lon, lat, 17)
    full = fetch(served, token, f"/tiles/grids/17/{x}/{y}.mvt")
    assert code in set(read_tile(tmp_path, full.content, 17, x, y, "grids")["code"])
    cut = fetch(served, theirs, f"/tiles/grids/17/{x}/{y}.mvt")
    assert cut.status_code == 200
    assert cut.content == b"" or code not in set(read_tile(tmp_path / "cut", cut.content, 17, x, y, "grids")["code"])
    again = fetch(served, token, f"/tiles/grids/17/{x}/{y}.mvt", **{"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    before = fetch(served, token, f"/tiles/events/17/{x}/{y}.mvt").headers["etag"]
    assert httpx.post(f"{served}/events", json=report(lon, lat), timeout=10,
                      headers={"Authorization": f"Bearer {token}"}).status_code == 201
    assert fetch(served, token, f"/tiles/events/17/{x}/{y}.mvt", **{"If-None-Match": before}).status_code == 200


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/tiles/grids/23/0/0.mvt", 400, "zoom 23 is out of range"),
    ("/tiles/grids/3/8/0.mvt", 400, "x and y run from 0 to 7"),
    ("/tiles/grids/3/0/-1.mvt", 400, "does not exist"),
    ("/tiles/rivers/3/0/0.mvt", 404, "no tile layer 'rivers'"),
    ("/tiles/rivers/tilejson.json", 404, "no tile layer"),
])
def test_bad_tiles_are_refused_plainly(served: str, divided_engine: Engine, path: str, status: int,
                                       words: str) -> None:
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    answer = fetch(served, http_token(served, "tiler"), path)
    assert answer.status_code == status and words in answer.json()["detail"]


def test_tilejson_describes_each_layer(served: str, divided_engine: Engine) -> None:
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    token = http_token(served, "tiler")
    listed = fetch(served, token, "/tiles").json()
    assert {t["name"] for t in listed} == {"basemap", "admin_units", "grids", "buildings", "streets", "key_places",
                                          "events"}
    doc = fetch(served, token, "/tiles/grids/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0" and doc["tiles"][0].endswith("/tiles/grids/{z}/{x}/{y}.mvt")
    assert doc["vector_layers"][0]["id"] == "grids" and "open_overdue" in doc["vector_layers"][0]["fields"]
    assert fetch(served, "not-a-token", "/tiles/grids/1/0/0.mvt").status_code == 401


def test_below_zoom_12_a_grid_is_one_point_with_its_figures(served: str, divided_engine: Engine,
                                                            tmp_path: Path) -> None:
    """A province's overview: one point per grid (its stored centroid), the figures a map colours by, no code or
    name; every grid of the city once."""
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    token = http_token(served, "tiler")
    _, lon, lat = inner_point(divided_engine)
    x, y = tile_of(lon, lat, 10)
    frame = read_tile(tmp_path, fetch(served, token, f"/tiles/grids/10/{x}/{y}.mvt").content, 10, x, y, "grids")
    with divided_engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar_one()
        stored = conn.execute(text("SELECT count(*) FILTER (WHERE ST_DWithin(centroid, ST_Transform(ST_Centroid(geom), "
                                   "3857), 0.01) AND ST_SRID(centroid) = 3857) FROM grids")).scalar_one()
    assert len(frame) == grids and set(frame.geom_type) == {"Point"}
    assert {"households", "open", "open_overdue"} <= set(frame.columns)
    assert not {"code", "name", "buildings"} & set(frame.columns)
    assert stored == grids  # every grid's centroid stored in the tiles' system, and true (migrations 0026, 0027)
    assert fetch(served, token, f"/tiles/grids/7/{x >> 3}/{y >> 3}.mvt").content == b""  # below the layer's zoom
