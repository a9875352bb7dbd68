"""The offline basemap in PostGIS: built at import from the city's own OSM extract, rebuilt by the CLI, served as
vector tiles (read back with GDAL's MVT driver) that hold per zoom only what reads at that scale, the same for every
signed-in user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from gis.geo.tiles import tile_of
from maps.browser import serve_in_thread
from scripts.cli import EXIT_INPUT
from tests.conftest import BEIJING, PASSWORD, http_token
from tests.db.test_events import inner_point
from tests.db.test_tiles import fetch, read_tile
from tests.test_cli import run


@pytest.fixture
def served(divided_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        yield base


def layer_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT layer, count(*) FROM basemap_features GROUP BY layer")).all())


def test_the_import_builds_the_basemap(divided_engine: Engine) -> None:
    counts = layer_counts(divided_engine)
    assert counts["roads"] > 20 and counts["green"] > 0 and counts["pois"] > 0
    with divided_engine.connect() as conn:
        # stored in the tiles' own system, inside the city's extent, named streets merged into whole lines
        srid, outside = conn.execute(text(
            "SELECT min(ST_SRID(b.geom)), count(*) FILTER (WHERE NOT ST_DWithin(ST_Transform(b.geom, 4326), c.geom, "
            "1e-6)) FROM basemap_features b JOIN admin_units c ON c.id = b.city_id")).one()
        assert srid == 3857 and outside == 0
        pieces = conn.execute(text("SELECT count(*) FROM basemap_features WHERE layer = 'roads' AND name = "
                                   "'学清路'")).scalar_one()
        assert 1 <= pieces < 17 // 2  # the file splits 学清路 into 17 ways


def test_a_tile_holds_per_zoom_what_reads_at_that_scale(served: str, divided_engine: Engine,
                                                        tmp_path: Path) -> None:
    writing(divided_engine, create_user, "mapper", PASSWORD, "admin", unit=None)
    token = http_token(served, "mapper")
    _, lon, lat = inner_point(divided_engine)
    x, y = tile_of(lon, lat, 16)
    close = fetch(served, token, f"/tiles/basemap/16/{x}/{y}.mvt")
    assert close.status_code == 200 and close.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in close.headers["cache-control"]
    assert len(read_tile(tmp_path, close.content, 16, x, y, "buildings")) > 0
    x14, y14 = tile_of(lon, lat, 14)
    roads = read_tile(tmp_path, fetch(served, token, f"/tiles/basemap/14/{x14}/{y14}.mvt").content, 14, x14, y14,
                      "roads")
    assert {"学清路", "清华东路", "学院路"} & set(roads["name"].dropna()) and "minor" in set(roads["kind"])
    # zoom 11: main roads only, no buildings, no paths
    x11, y11 = tile_of(lon, lat, 11)
    far = fetch(served, token, f"/tiles/basemap/11/{x11}/{y11}.mvt").content
    far_roads = read_tile(tmp_path, far, 11, x11, y11, "roads")
    assert set(far_roads["kind"]) <= {"motorway", "trunk", "primary", "secondary", "tertiary"}
    assert not set(far_roads["kind"]) & {"minor", "path", "service"}
    assert b"\x0a\x09buildings" not in far and b"\x0a\x09buildings" in close.content  # the layer name, encoded
    # a 512-pixel tile (MapLibre GL) holds what the 256-pixel tile of the next zoom does
    x15, y15 = tile_of(lon, lat, 15)
    gl = fetch(served, token, f"/tiles/basemap/15/{x15}/{y15}.mvt?tile_size=512").content
    assert len(read_tile(tmp_path, gl, 15, x15, y15, "buildings")) > 0
    plain = fetch(served, token, f"/tiles/basemap/15/{x15}/{y15}.mvt").content
    assert set(read_tile(tmp_path, gl, 15, x15, y15, "roads")["kind"]) >= \
        set(read_tile(tmp_path, plain, 15, x15, y15, "roads")["kind"])


def test_the_basemap_is_everyones_and_bad_requests_are_refused(served: str, divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine)
    writing(divided_engine, create_user, "mapper", PASSWORD, "admin", unit=None)
    writing(divided_engine, create_user, "walker", PASSWORD, "grid_member", unit=code)
    x, y = tile_of(lon, lat, 14)
    everyone = fetch(served, http_token(served, "mapper"), f"/tiles/basemap/14/{x}/{y}.mvt")
    member = fetch(served, http_token(served, "walker"), f"/tiles/basemap/14/{x}/{y}.mvt")
    assert everyone.content == member.content and len(member.content) > 0
    assert fetch(served, "not-a-token", f"/tiles/basemap/14/{x}/{y}.mvt").status_code == 401
    token = http_token(served, "walker")
    bad = fetch(served, token, f"/tiles/basemap/14/{x}/{y}.mvt?tile_size=300")
    assert bad.status_code == 400 and "tile_size 300 is not one of 256, 512" in bad.json()["detail"]
    assert fetch(served, token, "/tiles/basemap/23/0/0.mvt").status_code == 400
    doc = fetch(served, token, "/tiles/basemap/tilejson.json").json()
    assert {v["id"] for v in doc["vector_layers"]} >= {"roads", "water", "green", "buildings", "places", "pois"}
    assert fetch(served, token, "/basemap.json").json()["vector"] is True


def test_the_cli_rebuilds_it_and_refuses_bad_input(divided_url: str, divided_engine: Engine,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", divided_url)
    before = layer_counts(divided_engine)
    code, out, err = run(capsys, "basemap", "build", str(BEIJING), "--city", "beijing")
    assert code == 0, err
    assert "basemap of" in out and f"roads {before['roads']:,}" in out
    assert layer_counts(divided_engine) == before  # rebuilt, not added twice
    for args, words in [(["basemap", "build", str(BEIJING), "--city", "atlantis"], "no city 'atlantis'"),
                        (["basemap", "build", str(tmp_path / "none.osm"), "--city", "beijing"], "no such file")]:
        code, _, err = run(capsys, *args)
        assert code == EXIT_INPUT and words in err and "Traceback" not in err
    elsewhere = Path(__file__).resolve().parents[2] / "data" / "nanjing-xinjiekou.osm"
    code, _, err = run(capsys, "basemap", "build", str(elsewhere), "--city", "beijing")
    assert code == EXIT_INPUT and "lies inside the city's extent" in err and "this city's extract" in err
    cut = tmp_path / "cut.osm"
    cut.write_bytes(BEIJING.read_bytes()[:300_000])
    code, _, err = run(capsys, "basemap", "build", str(cut), "--city", "beijing")
    assert code == EXIT_INPUT and "not a readable OSM file" in err
    assert layer_counts(divided_engine) == before  # a bad file leaves the basemap as it was
