"""A city's existing grids, all communities at once: assigned by location, checked, repaired when asked, stored.

The city is the Nanjing extract with synthetic official units and a synthetic grids file cut from them
(``gis.demo.registers``): real buildings and streets, made-up codes and names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from shapely.affinity import translate
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.db.engine import writing
from gis.demo.registers import grids_from_communities
from gis.errors import InputError
from gis.geo.crs import WGS84
from gis.planning.store.grid_register import import_city_grids


def communities(engine: Engine) -> gpd.GeoDataFrame:
    return gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE level = 'community' ORDER BY code"),
                            engine, geom_col="geom", crs=WGS84).rename_geometry("geometry")


def run(engine: Engine, frame: gpd.GeoDataFrame, path: Path, **options: Any) -> Any:
    pyogrio.write_dataframe(frame, path)
    return writing(engine, import_city_grids, path, city="nanjing", author="planner", reason="the city's grids",
                   **options)


def test_a_clean_file_is_stored_with_its_codes(official_city: Engine, tmp_path: Path) -> None:
    grids = grids_from_communities(communities(official_city))
    grids.loc[grids.index[::2], "code"] = None  # half come without a code: they get the next ones
    dry = run(official_city, grids, tmp_path / "grids.geojson", dry_run=True)
    assert dry.grids == 36 and dry.communities == 12 and dry.coded == 18
    assert not (dry.crossing or dry.gaps or dry.overlaps or dry.nowhere)
    assert "the grids tile their communities" in dry.lines()[-1]
    with official_city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids")).scalar() == 0
    report = run(official_city, grids, tmp_path / "grids.geojson")
    assert (report.new, report.updated, report.retired) == (36, 0, 0)
    with official_city.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, c.code, g.name, g.version FROM grids g JOIN admin_units c ON c.id = g.community_id "
            "ORDER BY g.code")).all()
        unassigned = conn.execute(text(
            "SELECT count(*) FROM buildings b JOIN admin_units c ON c.level = 'community' "
            "AND ST_Intersects(c.geom, ST_PointOnSurface(b.geom)) WHERE b.grid_id IS NULL")).scalar()
        versions = conn.execute(text("SELECT count(*) FROM grid_versions WHERE change = 'import'")).scalar()
    assert len(rows) == 36 and all(g.startswith(c) and len(g) == 15 for g, c, _, _ in rows)
    assert {g for g, *_ in rows} >= {c for c in grids["code"] if isinstance(c, str)}  # the file's own codes are kept
    assert unassigned == 0 and versions == 36
    # the same file again: nothing changes; the generated codes now stand in the city's own file
    with official_city.connect() as conn:
        stored = gpd.read_postgis(text("SELECT code, name, geom FROM grids ORDER BY code"), conn, geom_col="geom",
                                  crs=WGS84).rename_geometry("geometry")
    again = run(official_city, stored, tmp_path / "stored.geojson")
    assert (again.new, again.updated, again.retired, again.unchanged) == (0, 0, 0, 36)


def test_a_crossing_grid_is_reported_refused_and_repaired(official_city: Engine, tmp_path: Path) -> None:
    grids = grids_from_communities(communities(official_city))
    metric = grids.estimate_utm_crs()
    moved = grids.to_crs(metric)
    # a community's east strip pushed 40 m east, into the next street's community; its west strip 40 m east too,
    # over its neighbour
    for code in ("320102001001003", "320102001001001"):
        i = moved.index[moved["code"] == code][0]
        moved.loc[i, "geometry"] = translate(moved.loc[i, "geometry"], 40, 0)
    moved = moved.to_crs(WGS84)
    dry = run(official_city, moved, tmp_path / "moved.geojson", dry_run=True)
    crossing = {c["grid"]: c["communities"] for c in dry.crossing}
    assert set(crossing) == {"320102001001003"}
    sides = crossing["320102001001003"]
    assert set(sides) == {"320102001001", "320102002001"} and sides["320102002001"] > 1_000
    assert {g["community"] for g in dry.gaps} == {"320102001001"}  # where the two strips were
    assert [o["grids"] for o in dry.overlaps] == [["320102001001001", "320102001001002"]]
    with pytest.raises(InputError, match="cross a community border"):
        run(official_city, moved, tmp_path / "moved.geojson")
    repaired = run(official_city, moved, tmp_path / "moved.geojson", repair=True)
    assert repaired.new == 36 and any("clipped" in r for r in repaired.repairs)
    with official_city.connect() as conn:
        holes = conn.execute(text("""
            SELECT c.code, ST_Area(ST_Difference(c.geom, ST_Union(g.geom))::geography)
            FROM admin_units c JOIN grids g ON g.community_id = c.id GROUP BY c.code, c.geom""")).all()
        # what sticks out is rounding between the metric CRS the repair cut in and WGS-84: under a centimetre
        # wide along the community's border
        outside = conn.execute(text("""
            SELECT max(ST_Area(ST_Difference(g.geom, c.geom)::geography) / ST_Perimeter(c.geom::geography))
            FROM grids g JOIN admin_units c ON c.id = g.community_id""")).scalar()
    assert max(area for _, area in holes) < 10 and outside < 0.01


def test_codes_that_do_not_nest_or_repeat_are_refused(official_city: Engine, tmp_path: Path) -> None:
    grids = grids_from_communities(communities(official_city))
    wrong = grids.copy()
    wrong.loc[0, "code"] = "320104001001009"  # a grid of 320102001001 coded as if it were in 320104001001
    with pytest.raises(InputError, match="lies in community 320102001001, but its code says community "
                                         "320104001001"):
        run(official_city, wrong, tmp_path / "wrong.geojson")
    twice = grids.copy()
    twice.loc[1, "code"] = twice.loc[0, "code"]
    with pytest.raises(InputError, match="repeats row 1"):
        run(official_city, twice, tmp_path / "twice.geojson")
    short = grids.copy()
    short.loc[0, "code"] = "32010200100100"
    with pytest.raises(InputError, match="not 15 digits"):
        run(official_city, short, tmp_path / "short.geojson")
    with official_city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids")).scalar() == 0


def test_the_band_and_buildings_in_no_grid(official_city: Engine, tmp_path: Path) -> None:
    """One grid per community holds far more than 500 households; leaving a grid out strands its buildings."""
    whole = grids_from_communities(communities(official_city), per_community=1)
    report = run(official_city, whole, tmp_path / "whole.geojson", dry_run=True)
    assert len(report.out_of_band) > 0 and all(not 300 <= g["households"] <= 500 for g in report.out_of_band)
    assert "outside 300–500" in "\n".join(report.lines()) or "outside 300-500" in "\n".join(report.lines())
    holed = grids_from_communities(communities(official_city)).iloc[1:]
    dry = run(official_city, holed, tmp_path / "holed.geojson", dry_run=True)
    assert dry.gaps and dry.buildings_in_no_grid > 0


def test_one_community_divided_inside_its_boundary(official_city: Engine, fresh_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A planner asks for grids for one community: the proposal beside the current grids, then stored in their
    place with new codes (the old ones retired, never issued again); the community and its street stay."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from tests.conftest import admin

    comms = communities(official_city)
    run(official_city, grids_from_communities(comms, per_community=1), tmp_path / "one.geojson")
    target = "320102001001"
    with official_city.connect() as conn:
        before = conn.execute(text("SELECT code, version, ST_AsText(geom) FROM admin_units WHERE code IN "
                                   "(:c, left(:c, 9)) ORDER BY code"), {"c": target}).all()
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    from scripts.cli import main
    assert main(["divide", "--community", target, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"({target}):" in out and "it has 1 grid(s) now" in out and "proposed only (--dry-run)" in out
    client = TestClient(create_app(Settings(database_url=fresh_url)))
    with client:
        admin(client)
        proposal = client.post("/divisions", json={"community": target, "dry_run": True})
        assert proposal.status_code == 200, proposal.text
        body = proposal.json()
        assert body["summary"]["current_grids"] == 1 and body["summary"]["grids"] > 1
        assert len(body["current"]["features"]) == 1
        assert body["summary"]["grids_in_band"] >= 0.8 * (body["summary"]["grids"] - 1)
        households = sum(f["properties"]["households"] for f in body["proposal"]["features"])
        assert households == pytest.approx(body["summary"]["households"], abs=1)
        stored = client.post("/divisions", json={"community": target, "dry_run": False,
                                                 "reason": "the community grew"})
        assert stored.status_code == 200, stored.text
        assert stored.json()["summary"]["retired"] == 1
        refused = client.post("/divisions", json={"community": "3201", "dry_run": True})
        assert refused.status_code == 422
    with official_city.connect() as conn:
        codes = list(conn.execute(text("SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                       "WHERE c.code = :c ORDER BY g.code"), {"c": target}).scalars())
        after = conn.execute(text("SELECT code, version, ST_AsText(geom) FROM admin_units WHERE code IN "
                                  "(:c, left(:c, 9)) ORDER BY code"), {"c": target}).all()
        retired = conn.execute(text("SELECT code FROM unit_codes WHERE retired_at IS NOT NULL AND level = 'grid' "
                                    "AND parent_code = :c"), {"c": target}).scalars().all()
        unplaced = conn.execute(text(
            "SELECT count(*) FROM buildings b JOIN admin_units c ON c.code = :c "
            "AND ST_Intersects(c.geom, ST_PointOnSurface(b.geom)) WHERE b.grid_id IS NULL"), {"c": target}).scalar()
    assert len(codes) == body["summary"]["grids"] and retired == [f"{target}001"]
    assert codes[0] == f"{target}002"  # after the retired one: a code is never issued twice
    assert after == before and unplaced == 0  # the official units did not move
