from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import writing
from gis.errors import InputError
from gis.geo.cities import city_from_options
from gis.planning.exchange import grids_from_file, grids_to_bytes
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.editing import TilingError
from gis.planning.store.exchange import grids_frame, import_grids
from gis.planning.store.importer import import_osm
from scripts.cli import main
from tests.conftest import BEIJING, admin

WHO = {"author": "planner li", "reason": "survey of 2026"}


@pytest.fixture
def divided(fresh_engine: Engine) -> tuple[Engine, int]:
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(fresh_engine, city_id)
    return fresh_engine, city_id


@pytest.fixture
def community(divided) -> tuple[str, gpd.GeoDataFrame]:
    engine, city_id = divided
    with engine.connect() as conn:
        frame = grids_frame(conn, city_id)
    code = frame["community"].iloc[0]
    return code, frame[frame["community"] == code]


@pytest.mark.parametrize("fmt, suffix", [("geojson", ".geojson"), ("gpkg", ".gpkg"), ("shp", ".zip")])
def test_export_round_trips_codes_and_households(divided, tmp_path: Path, fmt: str, suffix: str) -> None:
    engine, city_id = divided
    with engine.connect() as conn:
        frame = grids_frame(conn, city_id)
    path = tmp_path / f"grids{suffix}"
    path.write_bytes(grids_to_bytes(frame, fmt))
    source = f"/vsizip/{path}" if fmt == "shp" else str(path)
    back = pyogrio.read_dataframe(source)
    assert back.crs.to_epsg() == 4326
    assert list(back["code"]) == list(frame["code"])
    assert back["households"].sum() == frame["households"].sum() > 0
    assert set(back.columns) >= {"code", "name", "community", "households", "buildings", "note"}
    assert grids_from_file(path)["code"].tolist() == list(frame["code"])


def test_import_updates_keeps_and_renews_codes(divided, community, tmp_path: Path) -> None:
    engine, _ = divided
    code, grids = community
    edited = grids.copy()
    dropped = edited["code"].iloc[0]
    edited.loc[edited.index[0], "code"] = None  # the same polygon without its code: a new grid
    path = tmp_path / "edited.gpkg"
    path.write_bytes(grids_to_bytes(edited.assign(code=edited["code"].fillna("")), "gpkg"))
    preview = writing(engine, import_grids, path, community_code=code, dry_run=True, **WHO)
    # the dropped grid's buildings move to the new grid that takes its place, and no others
    assert preview.retired == [dropped]
    assert preview.buildings_moved == grids.loc[grids["code"] == dropped, "buildings"].iloc[0]
    assert {m["to"] for m in preview.moves} == {"new 1"}
    result = writing(engine, import_grids, path, community_code=code, **WHO)
    assert result.retired == [dropped] and len(result.created) == 1
    assert result.created[0].startswith(code) and result.created[0] > dropped
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings WHERE grid_id IS NULL")).scalar() == 0


def test_import_refuses_a_gap_and_names_it(divided, community, tmp_path: Path) -> None:
    engine, _ = divided
    code, grids = community
    path = tmp_path / "gap.geojson"
    path.write_bytes(grids_to_bytes(grids.iloc[1:], "geojson"))  # one grid missing
    with pytest.raises(TilingError, match="gap") as caught:
        writing(engine, import_grids, path, community_code=code, **WHO)
    assert caught.value.gaps and caught.value.gaps[0]["type"] in ("Polygon", "MultiPolygon")


def test_import_bad_files(divided, community, tmp_path: Path) -> None:
    engine, _ = divided
    code, grids = community
    unknown = grids.copy()
    unknown.loc[unknown.index[0], "code"] = "110000999999999"
    path = tmp_path / "unknown.geojson"
    path.write_bytes(grids_to_bytes(unknown, "geojson"))
    with pytest.raises(InputError, match="not grids of this community"):
        writing(engine, import_grids, path, community_code=code, **WHO)
    no_crs = tmp_path / "nocrs.geojson"
    data = json.loads(grids_to_bytes(grids, "geojson"))
    data.pop("crs", None)
    no_crs.write_text(json.dumps(data))
    frame = grids_from_file(no_crs)  # GeoJSON is WGS-84 by definition (RFC 7946)
    assert len(frame) == len(grids)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"code": ["x"]}, geometry=gpd.points_from_xy([116.35], [40.0]), crs=4326).to_file(points)
    with pytest.raises(InputError, match="grids are polygons"):
        grids_from_file(points)
    csv = tmp_path / "grids.csv"
    csv.write_text("code\n1\n")
    with pytest.raises(InputError, match="unknown grid file type"):
        grids_from_file(csv)


def test_export_and_import_over_http(divided, community, fresh_url: str) -> None:
    code, grids = community
    with TestClient(create_app(Settings(database_url=fresh_url))) as client:
        admin(client)
        response = client.get("/grids/export", params={"city": "beijing", "format": "shp"})
        assert response.status_code == 200
        assert response.headers["content-disposition"].endswith('.zip"')
        assert {n.rsplit(".", 1)[1] for n in zipfile.ZipFile(io.BytesIO(response.content)).namelist()} >= \
            {"shp", "shx", "dbf", "prj"}
        assert client.get("/grids/export", params={"city": "beijing", "format": "kml"}).status_code == 422
        body = grids_to_bytes(grids, "geojson")
        done = client.post(f"/communities/{code}/grids/import", params={"format": "geojson", "dry_run": True, **WHO},
                           content=body)
        assert done.status_code == 200, done.text
        assert done.json()["retired"] == [] and done.json()["created"] == []
        gap = client.post(f"/communities/{code}/grids/import", params={"format": "geojson", **WHO},
                          content=grids_to_bytes(grids.iloc[1:], "geojson"))
        assert gap.status_code == 422 and gap.json()["gaps"]
        assert client.post(f"/communities/{code}/grids/import", params={"format": "geojson", **WHO},
                           content=b"").status_code == 422
        assert client.post(f"/communities/{code}/grids/import", params={"format": "geojson", **WHO},
                           content=b"not json").status_code == 422
        assert client.post("/communities/000000000000/grids/import", params={"format": "geojson", **WHO},
                           content=body).status_code == 404


def test_cli_export(divided, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    out = tmp_path / "grids.gpkg"
    assert main(["export-grids", "--city", "beijing", "--out", str(out)]) == 0
    assert "grids to" in capsys.readouterr().out
    assert len(pyogrio.read_dataframe(out)) > 10
    assert main(["export-grids", "--city", "beijing", "--out", str(tmp_path / "grids.kml")]) == 2
