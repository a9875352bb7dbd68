"""Real household counts from a city's register (by OSM id, building id or point) and footprints OSM lacks.

The register is synthetic (made-up counts) over the Beijing fixture's real buildings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.db.engine import writing
from gis.errors import InputError
from gis.geo import coords
from gis.planning.store.households import apply_households, import_buildings
from gis.planning.store.importer import import_osm
from tests.conftest import BEIJING, BEIJING_CITY


@pytest.fixture
def beijing(fresh_engine: Engine) -> Engine:
    import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)
    return fresh_engine


def buildings(engine: Engine, n: int) -> list[tuple[int, str, int, float, float]]:
    """``n`` residential-sized buildings: id, OSM type, OSM id, and a point inside each."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, osm_type, osm_id, ST_X(p), ST_Y(p) FROM (SELECT id, osm_type, osm_id, "
            "ST_PointOnSurface(geom) p, area_m2 FROM buildings) b WHERE area_m2 > 300 ORDER BY id LIMIT :n"),
            {"n": n}).all()]


def counts(engine: Engine) -> dict[int, tuple[int | None, int | None]]:
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT id, households_override, residents FROM buildings WHERE households_override IS NOT NULL"))}


def test_counts_by_osm_id_point_and_gcj02_point(beijing: Engine, tmp_path: Path) -> None:
    (a, ta, oa, *_), (b, _, _, xb, yb), (c, _, _, xc, yc), (_, _, _, xd, yd) = buildings(beijing, 4)
    gx, gy = coords.from_wgs84(xc, yc, "gcj02")  # a phone's point, ~500 m off in WGS-84
    register = tmp_path / "households.csv"
    register.write_text("osm_id,经度,纬度,户数,人口\n"
                        f"{ta}/{oa},,,120,300\n"           # by OSM id
                        f",{xb},{yb},40,90\n"              # a point inside a building
                        f",{xb},{yb},2,5\n"                # a second entrance of the same building: adds up
                        f",{xd + 0.0001},{yd},7,\n"        # ~8 m east of a point inside: inside or nearest
                        ",116.0,39.0,9,9\n", encoding="utf-8")  # in no building, far away
    report = writing(beijing, apply_households, register, city="beijing")
    assert report.by_osm_id == 1 and report.inside + report.nearest == 3 and report.unmatched == [6]
    assert report.summed == 1 and "6" in report.lines()[-1]
    stored = counts(beijing)
    assert stored[a] == (120, 300) and stored[b] == (42, 95)
    gcj = tmp_path / "gcj.csv"
    gcj.write_text(f"lon,lat,households\n{gx},{gy},33\n", encoding="utf-8")
    report = writing(beijing, apply_households, gcj, city="beijing", crs="gcj02")
    assert (report.inside, report.unmatched) == (1, []) and counts(beijing)[c][0] == 33


def test_bad_register_rows_refuse_the_file(beijing: Engine, tmp_path: Path) -> None:
    register = tmp_path / "bad.csv"
    register.write_text("osm_id,households\nway/1,-3\nnode/5,4\nway/2,\n", encoding="utf-8")
    with pytest.raises(InputError, match="3 problem"):
        writing(beijing, apply_households, register, city="beijing")
    assert counts(beijing) == {}


def test_footprints_the_city_adds_survive_an_osm_reimport(beijing: Engine, tmp_path: Path) -> None:
    with beijing.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM admin_units "
                                 "WHERE level = 'city'")).one()
    features = [{"type": "Feature", "properties": {"楼栋编码": f"HD-{i}", "户数": 24 if i == 0 else None,
                                                   "层数": 6},
                 "geometry": mapping(box(x + i * 0.0005, y, x + i * 0.0005 + 0.0002, y + 0.0002))}
                for i in range(3)]
    path = tmp_path / "buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    report = writing(beijing, import_buildings, path, city="beijing")
    assert (report.new, report.with_households, report.estimated) == (3, 1, 2)
    again = writing(beijing, import_buildings, path, city="beijing")
    assert (again.new, again.updated) == (0, 3)
    import_osm(beijing, BEIJING, city=BEIJING_CITY)  # OSM again: the city's own buildings stay
    register = tmp_path / "by-ref.csv"
    register.write_text("building_id,households\nHD-1,18\nHD-9,5\n", encoding="utf-8")
    matched = writing(beijing, apply_households, register, city="beijing")
    assert matched.by_ref == 1 and matched.unmatched == [3]
    with beijing.connect() as conn:
        rows = conn.execute(text("SELECT ref, households, households_source FROM buildings WHERE osm_type = 'city' "
                                 "ORDER BY ref")).all()
    assert [r[0] for r in rows] == ["HD-0", "HD-1", "HD-2"]
    assert rows[0][1:] == (24, "confirmed") and rows[1][1:] == (18, "confirmed") and rows[2][2] == "estimate"
    assert rows[2][1] > 0  # ~500 m² × 6 storeys ÷ 90 m²
