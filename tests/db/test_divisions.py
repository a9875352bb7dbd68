from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.geo.cities import city_from_options
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.importer import import_osm
from tests.conftest import BEIJING, NANJING, admin


@pytest.fixture
def nanjing(fresh_engine: Engine) -> tuple[Engine, int]:
    import_osm(fresh_engine, NANJING, city=city_from_options("nanjing", code="320100"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    return fresh_engine, city_id


def test_stored_division_has_15_digit_codes_in_reading_order(nanjing) -> None:
    engine, city_id = nanjing
    summaries = divide_and_store(engine, city_id)
    assert [s.code for s in summaries] == ["320102", "320104", "320106"]
    assert sum(s.grids_in_band for s in summaries) / sum(s.grids - s.single_building_grids for s in summaries) >= 0.95
    with engine.connect() as conn:
        grids = conn.execute(text("""
            SELECT g.code, c.code AS community, s.code AS street, d.code AS district
            FROM grids g JOIN admin_units c ON c.id = g.community_id JOIN admin_units s ON s.id = c.parent_id
            JOIN admin_units d ON d.id = s.parent_id ORDER BY g.code""")).all()
        unassigned = conn.execute(text("SELECT count(*) FROM buildings WHERE grid_id IS NULL")).scalar()
        invalid = conn.execute(text("SELECT count(*) FROM grids WHERE NOT ST_IsValid(geom)")).scalar()
        invalid += conn.execute(text("SELECT count(*) FROM admin_units WHERE NOT ST_IsValid(geom)")).scalar()
        outside = conn.execute(text("""
            SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id
            WHERE NOT ST_DWithin(g.geom::geography, ST_PointOnSurface(b.geom)::geography, 0.01)""")).scalar()
        first = conn.execute(text("""
            SELECT g.code, ST_X(ST_Centroid(g.geom)), ST_Y(ST_Centroid(g.geom)) FROM grids g
            JOIN admin_units c ON c.id = g.community_id WHERE c.code = '320106001001' ORDER BY g.code""")).all()
    assert len(grids) == sum(s.grids for s in summaries)
    for code, community, street, district in grids:
        assert len(code) == 15 and code.isdigit()
        assert code.startswith(community) and community.startswith(street) and street.startswith(district)
    # every building in exactly one grid, the one its point on surface lies in (to 1 cm of reprojection)
    assert unassigned == 0 and outside == 0 and invalid == 0
    # 001 is the north-westmost grid of its community
    assert first[0][0].endswith("001")
    assert first[0][2] >= sorted(y for _, _, y in first)[len(first) // 2]


def test_dividing_again_retires_codes_and_never_reuses_them(nanjing) -> None:
    engine, city_id = nanjing
    divide_and_store(engine, city_id, district="鼓楼区")
    with engine.connect() as conn:
        before = {r[0] for r in conn.execute(text("SELECT code FROM grids"))}
    divide_and_store(engine, city_id, district="鼓楼区")
    with engine.connect() as conn:
        after = {r[0] for r in conn.execute(text("SELECT code FROM grids"))}
        retired = {r[0] for r in conn.execute(text("SELECT code FROM unit_codes WHERE retired_at IS NOT NULL"))}
        live = conn.execute(text(
            "SELECT count(*) FROM unit_codes WHERE retired_at IS NULL AND level = 'grid'")).scalar()
    assert before and after and not (before & after)
    assert before <= retired
    assert live == len(after)


def test_dry_run_stores_nothing(nanjing) -> None:
    engine, city_id = nanjing
    summaries = divide_and_store(engine, city_id, dry_run=True)
    assert sum(s.grids for s in summaries) > 50
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM unit_codes")).scalar() == 0


def test_a_city_without_districts_gets_a_synthetic_district_code(fresh_engine: Engine) -> None:
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    (summary,) = divide_and_store(fresh_engine, city_id)
    assert summary.code == "990001"
    assert summary.share_in_band >= 0.95


def test_division_api(nanjing, fresh_url: str) -> None:
    with TestClient(create_app(Settings(database_url=fresh_url))) as client:
        admin(client)
        proposal = client.post("/divisions", json={"city": "nanjing", "district": "玄武区"})
        assert proposal.status_code == 200, proposal.text
        body = proposal.json()
        assert body["stored"] is False and len(body["divisions"]) == 1
        assert len(body["grids"]["features"]) == body["divisions"][0]["grids"]
        assert client.get("/grids").json()["numberMatched"] == 0
        stored = client.post("/divisions", json={"city": "nanjing", "dry_run": False}).json()
        assert stored["stored"] is True
        grids = client.get("/grids", params={"limit": 10000}).json()
        assert grids["numberMatched"] == sum(d["grids"] for d in stored["divisions"])
        assert sum(f["properties"]["households"] for f in grids["features"]) == 34295
        for bad in ({"city": "nanjing", "grid_band": [500, 300]}, {"city": "nanjing", "grid_band": [300]},
                    {"city": "nanjing", "grid_band": [300, 5000]}, {"grid_band": [300, 500]}):
            response = client.post("/divisions", json=bad)
            assert response.status_code == 422, bad
        assert client.post("/divisions", json={"city": "atlantis"}).status_code == 404
        assert client.post("/divisions", json={"city": "nanjing", "district": "朝阳区"}).status_code == 404
