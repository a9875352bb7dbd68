"""Grid edits end to end through the API, on the divided Beijing fixture."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, mapping, shape
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.geo.cities import city_from_options
from gis.planning.editing import check_tiling
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.importer import import_osm
from tests.conftest import ADMIN, BEIJING, admin

WHO = {"author": "planner wang", "reason": "the new road is the real border"}


@pytest.fixture
def client(fresh_engine: Engine, fresh_url: str) -> Iterator[TestClient]:
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(fresh_engine, city_id)
    with TestClient(create_app(Settings(database_url=fresh_url))) as c:
        yield admin(c)


def grids(client: TestClient) -> dict[str, dict]:
    body = client.get("/grids", params={"limit": 10000}).json()
    return {f["properties"]["code"]: f for f in body["features"]}


def neighbours(client: TestClient) -> tuple[dict, dict]:
    """Two grids of one community that share a long border."""
    all_ = list(grids(client).values())
    best = None
    for a in all_:
        for b in all_:
            if a["properties"]["code"] < b["properties"]["code"] and \
                    a["properties"]["community_id"] == b["properties"]["community_id"]:
                shared = shape(a["geometry"]).boundary.intersection(shape(b["geometry"]).boundary).length
                if best is None or shared > best[0]:
                    best = (shared, a, b)
    assert best is not None and best[0] > 0.0005
    return best[1], best[2]


def version(client: TestClient, code: str) -> int:
    return client.get(f"/grids/{code}/history").json()[-1]["version"]


def tiled(engine: Engine) -> bool:
    """Every community tiled by its grids, and every grid a valid polygon."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM grids WHERE NOT ST_IsValid(geom)")).scalar():
            return False
        community_ids = [r[0] for r in conn.execute(text("SELECT DISTINCT community_id FROM grids"))]
        for cid in community_ids:
            rows = conn.execute(text("SELECT code, ST_AsBinary(ST_Transform(geom, 32650)) FROM grids "
                                     "WHERE community_id = :c"), {"c": cid}).all()
            community = conn.execute(text("SELECT ST_AsBinary(ST_Transform(geom, 32650)) FROM admin_units "
                                          "WHERE id = :c"), {"c": cid}).scalar_one()
            check = check_tiling({c: shapely.from_wkb(bytes(g)) for c, g in rows}, shapely.from_wkb(bytes(community)))
            if not check.ok:
                return False
    return True


def test_reshape_moves_a_boundary_keeps_codes_and_records_a_version(client: TestClient, fresh_engine: Engine) -> None:
    a, b = neighbours(client)
    code_a, code_b = a["properties"]["code"], b["properties"]["code"]
    before_change = datetime.now(UTC)
    time.sleep(0.05)
    grown = shape(a["geometry"]).union(shape(b["geometry"]).intersection(shape(a["geometry"]).buffer(0.0004)))
    body = {"version": 1, "geometry": mapping(grown), **WHO}
    preview = client.post(f"/grids/{code_a}/reshape", json={**body, "dry_run": True}).json()
    assert preview["dry_run"] is True and preview["buildings_moved"] >= 0
    assert version(client, code_a) == 1  # nothing stored by the dry run
    done = client.post(f"/grids/{code_a}/reshape", json=body)
    assert done.status_code == 200, done.text
    assert done.json()["buildings_moved"] == preview["buildings_moved"]
    assert {g["code"] for g in done.json()["grids"]} == {code_a, code_b}
    assert version(client, code_a) == 2 and version(client, code_b) == 2
    assert tiled(fresh_engine)
    history = client.get(f"/grids/{code_a}/history").json()
    assert [(h["version"], h["change"], h["author"]) for h in history] == [(1, "division", "gridpatrol"),
                                                                          (2, "reshape", ADMIN)]  # the signed-in user
    assert history[0]["valid_to"] == history[1]["valid_from"]
    # a point that moved from B to A: B's before the change, A's now
    moved = shape(b["geometry"]).intersection(shape(history[1]["geometry"]))
    point = moved.representative_point()
    then = client.get("/grid-at", params={"lon": point.x, "lat": point.y, "at": before_change.isoformat()}).json()
    now = client.get("/grid-at", params={"lon": point.x, "lat": point.y}).json()
    assert then["grid"]["code"] == code_b and now["grid"]["code"] == code_a
    # every building still lies in the grid it is assigned to
    with fresh_engine.connect() as conn:
        assert conn.execute(text("""SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id
            WHERE NOT ST_DWithin(g.geom::geography, ST_PointOnSurface(b.geom)::geography, 0.01)""")).scalar() == 0


def test_a_stale_version_is_409_and_changes_nothing(client: TestClient) -> None:
    a, b = neighbours(client)
    code = a["properties"]["code"]
    grown = shape(a["geometry"]).union(shape(b["geometry"]).intersection(shape(a["geometry"]).buffer(0.0003)))
    first = client.post(f"/grids/{code}/reshape", json={"version": 1, "geometry": mapping(grown), **WHO})
    assert first.status_code == 200
    second = client.post(f"/grids/{code}/reshape", json={"version": 1, "geometry": a["geometry"], **WHO})
    assert second.status_code == 409 and "version 2" in second.json()["detail"]
    assert version(client, code) == 2


def test_split_and_merge_issue_new_codes_and_retire_old_ones(client: TestClient, fresh_engine: Engine) -> None:
    a, _ = neighbours(client)
    code_a = a["properties"]["code"]
    shape_a = shape(a["geometry"])
    minx, _, maxx, _ = shape_a.bounds
    cy = shape_a.representative_point().y
    line = LineString([(minx - 0.001, cy), (maxx + 0.001, cy)])
    split = client.post(f"/grids/{code_a}/split", json={"version": 1, "line": mapping(line), **WHO})
    assert split.status_code == 200, split.text
    created = split.json()["created"]
    assert len(created) >= 2 and split.json()["retired"] == [code_a]
    saved_text = str(split.json()["warnings"]) + str(split.json()["moves"])
    assert "new 1" not in saved_text and "new 2" not in saved_text  # stored grids go by their codes
    assert code_a not in grids(client) and all(c in grids(client) for c in created)
    assert all(c[:12] == code_a[:12] and c > code_a for c in created)  # numbered on after every code ever issued
    assert tiled(fresh_engine)
    merged = client.post("/grids/merge", json={"codes": created[:2], "versions": [1, 1], **WHO})
    if merged.status_code == 422:  # the two largest pieces may not touch; the split result still stands
        assert "share a border" in merged.json()["detail"]
    else:
        assert merged.status_code == 200, merged.text
        (new,) = merged.json()["created"]
        assert new not in created and new != code_a
    with fresh_engine.connect() as conn:
        retired = {r[0] for r in conn.execute(text("SELECT code FROM unit_codes WHERE retired_at IS NOT NULL"))}
    assert code_a in retired
    assert client.get(f"/grids/{code_a}/history").json()[-1]["valid_to"] is not None


def test_delete_hands_the_area_to_neighbours(client: TestClient, fresh_engine: Engine) -> None:
    a, _ = neighbours(client)
    code = a["properties"]["code"]
    response = client.delete(f"/grids/{code}", params={"version": 1, **WHO})
    assert response.status_code == 200, response.text
    assert code not in grids(client)
    assert tiled(fresh_engine)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings WHERE grid_id IS NULL")).scalar() == 0


def test_bad_edits_are_4xx_and_store_nothing(client: TestClient) -> None:
    a, _ = neighbours(client)
    code = a["properties"]["code"]
    far = {"type": "Polygon", "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.0]]]}
    cases = [
        (f"/grids/{code}/reshape", {"version": 1, "geometry": far, **WHO}, 422, "outside"),
        (f"/grids/{code}/reshape", {"version": 1, "geometry": {"type": "Point", "coordinates": [1, 2]}, **WHO},
         422, "Polygon"),
        (f"/grids/{code}/reshape", {"version": 1, "geometry": a["geometry"], "reason": ""}, 422, ""),
        ("/grids/000000000000000/reshape", {"version": 1, "geometry": a["geometry"], **WHO}, 404, "no grid"),
        ("/grids/12/reshape", {"version": 1, "geometry": a["geometry"], **WHO}, 422, "15 digits"),
        (f"/grids/{code}/split", {"version": 1, "line": {"type": "LineString", "coordinates": [[0, 0], [0, 0]]},
                                  **WHO}, 422, "no length"),
    ]
    for url, body, status, message in cases:
        response = client.post(url, json=body)
        assert response.status_code == status, (url, response.text)
        assert message in response.text
    assert version(client, code) == 1
    assert client.get("/grid-at", params={"lon": 500, "lat": 0}).status_code == 422


def test_diff_and_revert(client: TestClient, fresh_engine: Engine) -> None:
    a, b = neighbours(client)
    code = a["properties"]["code"]
    grown = shape(a["geometry"]).union(shape(b["geometry"]).intersection(shape(a["geometry"]).buffer(0.0004)))
    reshaped = client.post(f"/grids/{code}/reshape", json={"version": 1, "geometry": mapping(grown), **WHO})
    assert reshaped.status_code == 200
    change = client.get(f"/grids/{code}/diff", params={"from_version": 1, "to_version": 2}).json()
    assert change["gained_m2"] > 100 and change["lost_m2"] < 1
    assert change["gained"]["type"] in ("Polygon", "MultiPolygon")
    stale = client.post(f"/grids/{code}/revert", json={"to_version": 1, "version": 1, **WHO})
    assert stale.status_code == 409
    back = client.post(f"/grids/{code}/revert", json={"to_version": 1, "version": 2, **WHO})
    assert back.status_code == 200, back.text
    history = client.get(f"/grids/{code}/history").json()
    assert [h["change"] for h in history] == ["division", "reshape", "revert"]
    restored = client.get(f"/grids/{code}/diff", params={"from_version": 1, "to_version": 3}).json()
    assert restored["gained_m2"] < 1 and restored["lost_m2"] < 1
    assert tiled(fresh_engine)
    assert client.get(f"/grids/{code}/diff", params={"from_version": 1, "to_version": 9}).status_code == 404
    assert client.post(f"/grids/{code}/revert", json={"to_version": 9, "version": 3, **WHO}).status_code == 404


def test_create_carves_a_new_grid_out_of_the_grids_under_it(client: TestClient, fresh_engine: Engine) -> None:
    a, b = neighbours(client)
    code_a, code_b = a["properties"]["code"], b["properties"]["code"]
    with fresh_engine.connect() as conn:
        community = conn.execute(text("SELECT code FROM admin_units WHERE id = :i"),
                                 {"i": a["properties"]["community_id"]}).scalar_one()
    # a square across the shared border, inside both grids
    border = shape(a["geometry"]).boundary.intersection(shape(b["geometry"]).boundary)
    middle = border.interpolate(0.5, normalized=True)
    square = middle.buffer(0.0003, cap_style="square").intersection(shape(a["geometry"]).union(shape(b["geometry"])))
    body = {"geometry": mapping(square), "versions": {code_a: 1, code_b: 1}, **WHO}
    url = f"/communities/{community}/grids"
    preview = client.post(url, json={**body, "dry_run": True})
    assert preview.status_code == 200, preview.text
    assert preview.json()["created"] == [] and version(client, code_a) == 1  # nothing stored
    saved = client.post(url, json=body)
    assert saved.status_code == 200, saved.text
    (new,) = saved.json()["created"]
    assert new[:12] == community and new not in (code_a, code_b)
    assert version(client, code_a) == 2 and version(client, code_b) == 2  # the grids under it gave area up
    assert shape(grids(client)[new]["geometry"]).symmetric_difference(square).area < 1e-9
    assert tiled(fresh_engine)
    assert client.post(url, json=body).status_code == 409  # drawn over versions that have moved on
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings WHERE grid_id IS NULL")).scalar() == 0


def test_create_refuses_unknown_parents_and_bad_outlines(client: TestClient, fresh_engine: Engine) -> None:
    a, _ = neighbours(client)
    far = {"type": "Polygon", "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.0]]]}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    before = grids(client)
    community = "110108" + "999999"
    assert client.post(f"/communities/{community}/grids", json={"geometry": a["geometry"], **WHO}).status_code == 404
    assert client.post("/communities/12/grids", json={"geometry": a["geometry"], **WHO}).status_code == 422
    with fresh_engine.connect() as conn:
        real = conn.execute(text("SELECT code FROM admin_units WHERE id = :i"),
                            {"i": a["properties"]["community_id"]}).scalar_one()
    for geometry, message in [(far, "outside"), (bowtie, "Self-intersection"), (a["geometry"], "swallow")]:
        response = client.post(f"/communities/{real}/grids", json={"geometry": geometry, **WHO})
        assert response.status_code == 422 and message in response.text, response.text
    assert grids(client).keys() == before.keys()


def test_a_planner_of_one_grid_cannot_move_a_neighbour(client: TestClient, fresh_engine: Engine) -> None:
    """Issue 18: a planner bound to one grid reshaped it, and the neighbour outside their jurisdiction followed."""
    from tests.conftest import user_headers

    a, b = neighbours(client)
    code_a, code_b = a["properties"]["code"], b["properties"]["code"]
    grown = shape(a["geometry"]).union(shape(b["geometry"]).intersection(shape(a["geometry"]).buffer(0.0004)))
    body = {"version": 1, "geometry": mapping(grown), **WHO}
    own = user_headers(client, fresh_engine, "planner", code_a)
    refused = client.post(f"/grids/{code_a}/reshape", json=body, headers=own)
    assert refused.status_code == 403 and code_b in refused.json()["detail"], refused.text
    assert version(client, code_a) == version(client, code_b) == 1  # nothing moved
    with fresh_engine.connect() as conn:
        community = conn.execute(text("SELECT c.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                      "WHERE g.code = :g"), {"g": code_a}).scalar_one()
    theirs = user_headers(client, fresh_engine, "planner", community)
    assert client.post(f"/grids/{code_a}/reshape", json=body, headers=theirs).status_code == 200
