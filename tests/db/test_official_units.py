"""Official streets and communities from a city's files: checked before storing, repaired, versioned like grids.

The files are synthetic, made from the Nanjing extract's districts (``gis.demo.registers``): real geometry, made-up
street and community names and numbers, in the form a city's register has.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from shapely.affinity import translate
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.db.engine import writing
from gis.demo.registers import official_units_from_districts
from gis.errors import ConflictError, InputError, PayloadTooLargeError
from gis.geo import coords
from gis.geo.crs import WGS84
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.editing import diff, grid_at, history
from gis.planning.store.importer import import_osm
from gis.planning.store.official import import_units
from tests.conftest import NANJING, NANJING_CITY

XUANWU = "320102"


@pytest.fixture
def nanjing(fresh_engine: Engine) -> Engine:
    import_osm(fresh_engine, NANJING, city=NANJING_CITY)
    return fresh_engine


def units_of(engine: Engine) -> gpd.GeoDataFrame:
    districts = gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE level = 'district' ORDER BY code"),
                                 engine, geom_col="geom", crs=WGS84)
    return official_units_from_districts(districts.rename_geometry("geometry"))


def write(frame: gpd.GeoDataFrame, path: Path, **options: Any) -> Path:
    pyogrio.write_dataframe(frame, path, **options)
    return path


def run(engine: Engine, path: Path, **options: Any) -> Any:
    return writing(engine, import_units, path, city="nanjing", author="planner", reason="official register",
                   **options)


def stored(engine: Engine) -> dict[str, tuple[str, str, int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT u.code, u.name, u.level, u.version, p.code FROM admin_units u "
            "LEFT JOIN admin_units p ON p.id = u.parent_id WHERE u.source = 'official' ORDER BY u.code")).all()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_dry_run_then_import_then_versions(nanjing: Engine, tmp_path: Path) -> None:
    units = units_of(nanjing)
    path = write(units, tmp_path / "units.geojson")
    dry = run(nanjing, path, dry_run=True)
    assert dry.dry_run and (dry.streets, dry.communities) == (6, 12) and len(dry.new) == 18
    assert stored(nanjing) == {}
    report = run(nanjing, path)
    assert len(report.new) == 18 and not report.changed and not report.gaps and not report.overlaps
    assert "the units tile their parents" in report.lines()[-1]
    units_now = stored(nanjing)
    assert units_now[f"{XUANWU}001"] == ("第1街道", "street", 1, XUANWU)
    assert units_now[f"{XUANWU}001002"] == ("第1街道第2社区", "community", 1, f"{XUANWU}001")

    again = run(nanjing, path)  # the same file: nothing changes, no new version
    assert (len(again.new), again.changed, again.unchanged) == (0, [], 18)

    # a planner's new register moves the border between two communities 100 m north
    a, b = f"{XUANWU}001001", f"{XUANWU}001002"
    metric = units.estimate_utm_crs()
    m = units.to_crs(metric).set_index("code")
    street = m.loc[f"{XUANWU}001000", "geometry"]
    border_y = m.loc[b, "geometry"].bounds[3]
    north = shapely.box(street.bounds[0] - 1, border_y + 100, street.bounds[2] + 1, street.bounds[3] + 1)
    m.loc[a, "geometry"] = street.intersection(north)
    m.loc[b, "geometry"] = street.difference(north)
    moved = units.copy()  # only the two communities change; the others stay as they were, to the last digit
    for code in (a, b):
        moved.loc[moved["code"] == code, "geometry"] = gpd.GeoSeries([m.loc[code, "geometry"]], crs=metric) \
            .to_crs(WGS84).to_numpy()
    preview = run(nanjing, write(moved, tmp_path / "units-2.geojson"), dry_run=True)
    assert preview.changed == [a, b] and preview.unchanged == 16  # the dry run shows what will change
    before = datetime.now(UTC)
    changed = run(nanjing, tmp_path / "units-2.geojson")
    assert changed.changed == [a, b] and changed.unchanged == 16
    assert stored(nanjing)[b][2] == 2
    with nanjing.connect() as conn:
        versions = history(conn, b, kind="unit")
        assert [(v["version"], v["change"], v["author"]) for v in versions][-2:] == \
            [(1, "official", "planner"), (2, "official", "planner")]
        delta = diff(conn, b, 1, 2, kind="unit")
        assert delta["gained_m2"] > 1_000 and delta["lost_m2"] < 1
        # a point in the strip that changed hands: in a before, in b now
        strip = street.intersection(shapely.box(-1e9, border_y + 10, 1e9, border_y + 90))
        point = gpd.GeoSeries([strip.representative_point()], crs=metric).to_crs(WGS84).iloc[0]
        assert grid_at(conn, point.x, point.y, before, level="community")["code"] == a
        assert grid_at(conn, point.x, point.y, datetime.now(UTC), level="community")["code"] == b


def test_gcj02_and_a_gbk_codes_table(nanjing: Engine, tmp_path: Path) -> None:
    """A file drawn on a Chinese web map (GCJ-02) and names from a GBK table: both read, stored where they are."""
    units = units_of(nanjing)
    shifted = units.copy()
    shifted["geometry"] = [shapely.transform(g, lambda xy: np.array(
        [coords.from_wgs84(float(x), float(y), "gcj02") for x, y in xy])) for g in units.geometry]
    path = write(shifted.drop(columns=["name"]), tmp_path / "units-gcj.geojson")
    table = tmp_path / "names.csv"
    table.write_bytes(("代码,名称\n" + "".join(f"{c},{n}\n" for c, n in zip(units["code"], units["name"],
                                                                             strict=True))).encode("gbk"))
    report = run(nanjing, path, crs="gcj02", codes=table, snap_m=0)
    assert "converted from GCJ-02 to WGS-84" in report.notes
    assert any("read as GBK" in n for n in report.notes)
    assert stored(nanjing)[f"{XUANWU}002"][0] == "第2街道"
    with nanjing.connect() as conn:
        back = gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE source = 'official' ORDER BY code"),
                                conn, geom_col="geom", crs=WGS84)
    metric = units.estimate_utm_crs()
    original = units.set_index("code").to_crs(metric).geometry
    for code, geom in zip(back["code"], back.to_crs(metric).geometry, strict=True):
        key = code if len(code) == 12 else f"{code}000"
        assert geom.hausdorff_distance(original[key]) < 1.0  # GCJ-02's ~500 m offset undone to within a metre


def test_a_boundary_near_a_street_snaps_onto_it(nanjing: Engine, tmp_path: Path) -> None:
    """A community border drawn 3 m off a real street is moved onto it, and the report says so."""
    units = units_of(nanjing)
    metric = units.estimate_utm_crs()
    m = units.to_crs(metric)
    streets = m[m["level"] == "street"].set_index("code").geometry
    with nanjing.connect() as conn:
        roads = gpd.read_postgis(text("SELECT geom FROM road_edges WHERE network = 'drive' AND length_m > 150"),
                                 conn, geom_col="geom", crs=WGS84).to_crs(metric).geometry
    # a street segment lying wholly inside one official street, well away from its border
    line, street_code = next((r, code) for r in roads for code, g in streets.items()
                             if g.buffer(-50).contains(r))
    host = streets[street_code]
    side = translate(line, 3, 0).buffer(2000, single_sided=True)
    one, two = host.intersection(side), host.difference(side)
    comms = m[(m["level"] == "community") & m["code"].str.startswith(street_code[:9])].index
    m.loc[comms[0], "geometry"], m.loc[comms[1], "geometry"] = one, two
    report = run(nanjing, write(m.to_crs(WGS84), tmp_path / "units.geojson"), snap_m=5)
    assert set(m.loc[comms, "code"]) <= set(report.snapped)
    assert any("snapped onto streets within 5 m" in text_ for text_ in report.lines())
    with nanjing.connect() as conn:
        after = gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE code = ANY(:codes) ORDER BY code"),
                                 conn, geom_col="geom", crs=WGS84,
                                 params={"codes": list(m.loc[comms, "code"])}).to_crs(metric).geometry
        assert conn.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM admin_units")).scalar()
    # where the border ran 3 m off the street, both sides of it now lie on the street
    middle = line.interpolate(0.5, normalized=True)
    assert middle.distance(one.boundary) == pytest.approx(3, abs=0.5)
    assert all(g.boundary.distance(middle) < 0.5 for g in after)


def test_bad_files_say_what_to_fix_and_store_nothing(nanjing: Engine, tmp_path: Path) -> None:
    units = units_of(nanjing)
    cases: list[tuple[Path, dict[str, Any], type[Exception], str]] = []
    twice = units.copy()
    twice.loc[1, "code"] = twice.loc[2, "code"]
    cases.append((write(twice, tmp_path / "twice.geojson"), {}, InputError, "repeats row"))
    outside = units.copy()
    i = outside.index[outside["code"] == f"{XUANWU}001001"][0]
    outside.loc[i, "geometry"] = translate(outside.loc[i, "geometry"], 0.02, 0)
    cases.append((write(outside, tmp_path / "outside.geojson"), {}, InputError,
                  f"community {XUANWU}001001 lies"))
    foreign = units.copy()
    foreign.loc[0, "code"] = "110108001000"
    cases.append((write(foreign, tmp_path / "foreign.geojson"), {}, InputError,
                  "street 110108001 lies in district 110108, which this city does not have"))
    orphan = units[units["level"] == "community"]
    cases.append((write(orphan, tmp_path / "orphan.geojson"), {}, InputError,
                  "which is neither in the file nor stored: add the street"))
    badcode = units.copy()
    badcode.loc[0, "code"] = "3201"
    cases.append((write(badcode, tmp_path / "badcode.geojson"), {}, InputError, "has 4 digits"))
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    cases.append((empty, {}, InputError, "holds no features"))
    points = units.copy()
    points["geometry"] = points.geometry.representative_point()
    cases.append((write(points, tmp_path / "points.geojson"), {}, InputError, "a Point, not a polygon"))
    # a shapefile in metres that does not say so (no .prj)
    metres = units.to_crs(units.estimate_utm_crs())
    shp = tmp_path / "metres.shp"
    pyogrio.write_dataframe(metres, shp)
    shp.with_suffix(".prj").unlink()  # what a city's export without its .prj looks like
    with zipfile.ZipFile(tmp_path / "metres.zip", "w") as archive:
        for part in tmp_path.glob("metres.*"):
            if part.suffix != ".zip":
                archive.write(part, part.name)
    cases.append((tmp_path / "metres.zip", {}, InputError, "are not degrees: save it with its CRS"))
    huge = tmp_path / "huge.geojson"
    with huge.open("wb") as handle:
        handle.truncate(3 * 2**30)  # sparse: 3 GiB on paper, nothing on disk
    cases.append((huge, {}, PayloadTooLargeError, "3.0 GiB"))
    from openpyxl import Workbook
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["单位", None])
    sheet.merge_cells("A1:B1")
    sheet.append(["code", "name"])
    merged = tmp_path / "merged.xlsx"
    book.save(merged)
    cases.append((write(units, tmp_path / "plain.geojson"), {"codes": merged}, InputError,
                  "header row has merged cells (A1:B1)"))
    for path, options, error, message in cases:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            run(nanjing, path, **options)
        assert stored(nanjing) == {}, path.name
    # a file that declares another CRS is reprojected from it (a GeoPackage in UTM zone 50N)
    declared = write(units.to_crs(units.estimate_utm_crs()), tmp_path / "utm.gpkg", layer="units")
    assert len(run(nanjing, declared, dry_run=True).new) == 18
    # the metre file imports once its CRS is given
    report = run(nanjing, tmp_path / "metres.zip", crs=str(units.estimate_utm_crs()))
    assert len(report.new) == 18


def test_generated_units_are_replaced_only_when_asked(nanjing: Engine, tmp_path: Path) -> None:
    with nanjing.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(nanjing, city_id, district="玄武区")
    units = units_of(nanjing)
    path = write(units[units["code"].str.startswith(XUANWU)], tmp_path / "xuanwu.geojson")
    with pytest.raises(ConflictError, match="--replace-generated"):
        run(nanjing, path)
    report = run(nanjing, path, replace_generated=True)
    assert report.replaced > 0 and len(report.new) == 6
    with nanjing.connect() as conn:
        left = conn.execute(text(
            "SELECT count(*) FROM admin_units WHERE source = 'generated' AND code LIKE :d || '%'"),
            {"d": XUANWU}).scalar()
        open_versions = conn.execute(text(
            "SELECT count(*) FROM unit_versions v WHERE valid_to IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM admin_units u WHERE u.id = v.unit_id)")).scalar()
    assert left == 0 and open_versions == 0


def test_overlaps_are_reported_as_polygons_by_the_cli(nanjing: Engine, tmp_path: Path, fresh_url: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A community drawn 15 m into its neighbour: the dry run names the overlap, its area, and writes its polygon
    for QGIS; nothing is stored."""
    from scripts.cli import main

    units = units_of(nanjing)
    metric = units.estimate_utm_crs()
    m = units.to_crs(metric).set_index("code")
    a, street = f"{XUANWU}001001", m.loc[f"{XUANWU}001000", "geometry"]
    m.loc[a, "geometry"] = m.loc[a, "geometry"].buffer(15).intersection(street)
    grown = units.copy()
    grown.loc[grown["code"] == a, "geometry"] = gpd.GeoSeries([m.loc[a, "geometry"]], crs=metric).to_crs(WGS84) \
        .to_numpy()
    path = write(grown, tmp_path / "grown.geojson")
    problems = tmp_path / "problems.geojson"
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code = main(["import-units", str(path), "--city", "nanjing", "--author", "planner", "--reason", "register",
                 "--dry-run", "--snap-m", "0", "--problems", str(problems)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "overlap of" in out and f"between {a} and {XUANWU}001002" in out and "dry run: nothing stored" in out
    written = json.loads(problems.read_text(encoding="utf-8"))
    overlap = [f for f in written["features"] if f["properties"]["problem"] == "overlaps"]
    assert len(overlap) == 1 and overlap[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    width = street.bounds[2] - street.bounds[0]
    assert overlap[0]["properties"]["area_m2"] == pytest.approx(15 * width, rel=0.2)
    assert stored(nanjing) == {}


def test_units_over_http_history_lookup_and_import(official_city: Engine, fresh_url: str, tmp_path: Path) -> None:
    """The API's side of official units: history and the as-of lookup answer as their models say; a planner of
    the whole city imports a file (dry run first); one bound to a district may not."""
    from fastapi.testclient import TestClient

    from api import schemas
    from api.app import create_app
    from api.settings import Settings
    from tests.api.test_response_models import conforms
    from tests.conftest import admin, user_headers

    client = TestClient(create_app(Settings(database_url=fresh_url)))
    with client:
        admin(client)
        history_ = client.get(f"/units/{XUANWU}001001/history")
        assert history_.status_code == 200, history_.text
        versions = conforms(list[schemas.GridVersion], history_.json())
        assert [v.change for v in versions] == ["official"]
        with official_city.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM "
                                         "admin_units WHERE code = :c) x"), {"c": f"{XUANWU}001001"}).one()
        at = conforms(schemas.UnitAt, client.get("/unit-at", params={"lon": lon, "lat": lat}).json())
        assert at.unit is not None and at.unit.code == f"{XUANWU}001001"
        street = client.get("/unit-at", params={"lon": lon, "lat": lat, "level": "street"}).json()
        assert street["unit"]["code"] == f"{XUANWU}001"
        assert client.get("/units/32010/history").status_code == 422
        assert client.get("/units/320102999/history").status_code == 404

        units = units_of(official_city)
        path = write(units, tmp_path / "again.geojson")
        dry = client.post("/cities/nanjing/units/import", params={"reason": "the register of 2026"},
                          content=path.read_bytes())
        assert dry.status_code == 200, dry.text
        assert dry.json()["dry_run"] and dry.json()["new"] == []
        broken = client.post("/cities/nanjing/units/import", params={"reason": "r"}, content=b'{"type": "Feat')
        assert broken.status_code == 422 and "could not be read" in broken.json()["detail"]
        district_planner = user_headers(client, official_city, "planner", XUANWU)
        refused = client.post("/cities/nanjing/units/import", params={"reason": "r"}, content=path.read_bytes(),
                              headers=district_planner)
        assert refused.status_code == 403


def test_a_street_without_communities_divided_inside_its_boundary(nanjing: Engine, tmp_path: Path,
                                                                  fresh_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The city's file has streets only: dividing one street makes its communities and grids, coded under the
    street's own code; the street stays as the city drew it. A street with official communities is refused."""
    from scripts.cli import EXIT_INPUT, main

    units = units_of(nanjing)
    run(nanjing, write(units[units["level"] == "street"], tmp_path / "streets.geojson"), snap_m=0)
    street = f"{XUANWU}001"
    with nanjing.connect() as conn:
        before = conn.execute(text("SELECT version, ST_AsText(geom) FROM admin_units WHERE code = :s"),
                              {"s": street}).one()
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    assert main(["divide", "--street", street]) == 0
    out = capsys.readouterr().out
    assert "stored: the street's communities and grids" in out
    with nanjing.connect() as conn:
        rows = conn.execute(text("""
            SELECT c.code, count(g.id), bool_and(g.code LIKE c.code || '%'), c.source
            FROM admin_units c JOIN grids g ON g.community_id = c.id
            WHERE c.parent_id = (SELECT id FROM admin_units WHERE code = :s) GROUP BY c.code, c.source"""),
            {"s": street}).all()
        after = conn.execute(text("SELECT version, ST_AsText(geom) FROM admin_units WHERE code = :s"),
                             {"s": street}).one()
    assert rows and all(c.startswith(street) and len(c) == 12 and n > 0 and nested and src == "generated"
                        for c, n, nested, src in rows)
    assert tuple(after) == tuple(before)
    # with its communities given officially, the street is the city's to keep
    run(nanjing, write(units[units["code"].str.startswith(f"{XUANWU}002")], tmp_path / "s2.geojson"), snap_m=0)
    assert main(["divide", "--street", f"{XUANWU}002"]) == EXIT_INPUT
    assert "has 2 communities of its own" in capsys.readouterr().err
