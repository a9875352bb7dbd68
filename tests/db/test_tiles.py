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
from gis.dispatch import rules
from gis.dispatch.queries import OPEN_STATES_SQL, OVERDUE_SQL
from gis.dispatch.store import events
from gis.dispatch.store.tiles import GRIDS_UP_TO
from gis.geo.tiles import tile_of
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, http_token
from tests.db.test_events import inner_point, report, west_of_every_grid
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


def test_low_zoom_clusters_count_every_open_case_of_the_jurisdiction(served: str, divided_engine: Engine,
                                                                      tmp_path: Path) -> None:
    """Up to zoom 10 the clusters are counted from the grids' rows (their open cases and deadlines), plus the cases
    on no grid one by one; from zoom 11 from the cases. Either way a tile holding the whole city counts every open
    case of the jurisdiction and every overdue one, and none closed."""
    code, _, _ = inner_point(divided_engine)
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    writing(divided_engine, create_user, "local", PASSWORD, "dispatcher", unit=code[:12])
    token, local = http_token(served, "tiler"), http_token(served, "local")
    made = []
    for rank in range(6):
        _, lon, lat = inner_point(divided_engine, rank * 4)  # grids of two communities
        for i in range(rank % 3 + 1):
            answer = httpx.post(f"{served}/events", json=report(lon + i * 0.0001, lat), timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["id"])
    far = west_of_every_grid(divided_engine, 300)  # on no grid: the street's queue
    gridless = events.intake(divided_engine, rules.EventIn(lon=far[0], lat=far[1], category="C01", source="hotline"),
                             radius_m=50).event
    assert gridless["grid"] is None
    with divided_engine.begin() as conn:  # three overdue (one of them on no grid), one closed
        conn.execute(text("UPDATE events SET state = 'dispatched', due_at = now() - interval '1 hour' "
                          "WHERE id = ANY(:ids)"), {"ids": [made[0], made[3], gridless["id"]]})
        conn.execute(text("UPDATE events SET state = 'closed', closed_at = now() WHERE id = :id"), {"id": made[5]})
        extent = conn.execute(text("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT "
                                   "ST_Extent(geom)::geometry b FROM (SELECT geom FROM grids UNION ALL "
                                   "SELECT geom FROM events) u) s")).one()
        expected = {}
        for who, prefix in (("tiler", ""), ("local", code[:12])):
            expected[who] = tuple(conn.execute(text(
                f"SELECT count(*), count(*) FILTER (WHERE {OVERDUE_SQL}) FROM events e WHERE e.archive = 0 "
                f"AND e.state IN {OPEN_STATES_SQL} AND (e.grid_code LIKE :p || '%' OR e.street_id IN "
                "(SELECT id FROM admin_units WHERE level = 'street' AND code LIKE :p || '%'))"), {"p": prefix}).one())
    assert expected["tiler"] == (len(made), 3)  # less the closed one, plus the one on no grid
    assert 0 < expected["local"][0] < expected["tiler"][0]  # the other community's cases, and the one on no grid
    zooms = [z for z in range(8, 13) if tile_of(extent[0], extent[3], z) == tile_of(extent[2], extent[1], z)]
    # the grids' rows counted, and the cases (a department's tile counts its cases at every zoom)
    assert min(zooms) <= GRIDS_UP_TO < max(zooms), zooms
    for z in zooms:
        x, y = tile_of(extent[0], extent[3], z)
        for who, bearer in (("tiler", token), ("local", local)):
            frame = read_tile(tmp_path / who, fetch(served, bearer, f"/tiles/events/{z}/{x}/{y}.mvt").content,
                              z, x, y, "events")
            assert (int(frame["count"].sum()), int(frame["overdue"].sum())) == expected[who], (z, who)
            assert frame["count"].min() >= 1


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
