"""The basic patrol of real grids (the divided Beijing fixture) through the API: GeoJSON and GPX."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import gpxpy
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import reading
from gis.patrol.route import basic_route
from gis.patrol.store.plans import load_grid_network
from tests.conftest import ADMIN, admin, http_token


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def grid_codes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT code FROM grids ORDER BY code"))]


def test_every_grid_gets_a_closed_route_over_all_its_streets(client: TestClient, divided_engine: Engine) -> None:
    checked = 0
    for code in grid_codes(divided_engine):
        net = reading(divided_engine, load_grid_network, code)
        response = client.get(f"/grids/{code}/patrols/basic")
        if not net["required"]:
            assert response.status_code == 422 and "nothing to patrol" in response.text
            continue
        assert response.status_code == 200, response.text
        route = response.json()
        props = route["properties"]
        steps = [f for f in route["features"] if f["properties"]["kind"] == "step"]
        base = route["features"][0]
        assert base["properties"]["kind"] == "base"
        assert steps[0]["properties"]["from"] == base["properties"]["node"] == steps[-1]["properties"]["to"]
        for a, b in itertools.pairwise(steps):
            assert a["properties"]["to"] == b["properties"]["from"]
            assert a["geometry"]["coordinates"][-1] == pytest.approx(b["geometry"]["coordinates"][0], abs=1e-6)
        walked = {frozenset((s["properties"]["from"], s["properties"]["to"])) for s in steps}
        reachable = [e for e in net["required"] if list(e) not in props["unreachable"]]
        assert all(frozenset((u, v)) in walked for u, v, _ in reachable)  # every required street walked
        assert props["covered_edges"] == len(reachable)
        rounding = 0.05 * len(steps) + 0.1  # each step is rounded to 0.1 m
        assert props["length_m"] == pytest.approx(sum(s["properties"]["length_m"] for s in steps), abs=rounding)
        assert props["length_m"] >= props["required_m"] and 0 <= props["deadhead_share"] < 1
        assert props["minutes"] == pytest.approx(props["length_m"] / 75, abs=0.1)
        # the sparse-blossom T-join and the textbook matching on shortest paths agree on the real network
        node = base["properties"]["node"]
        fast = basic_route(net["graph"], net["required"], node)
        assert fast.length_m == pytest.approx(
            basic_route(net["graph"], net["required"], node, t_join="networkx").length_m, abs=1e-6)
        checked += 1
    assert checked >= 5


def test_gpx_opens_as_gpx_1_1(client: TestClient, divided_engine: Engine) -> None:
    code = next(c for c in grid_codes(divided_engine) if reading(divided_engine, load_grid_network, c)["required"])
    response = client.get(f"/grids/{code}/patrols/basic", params={"format": "gpx", "dwell_min": 12})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/gpx+xml")
    assert 'version="1.1"' in response.text
    gpx = gpxpy.parse(response.text)
    points = gpx.tracks[0].segments[0].points
    geojson = client.get(f"/grids/{code}/patrols/basic").json()
    assert len(points) > 2 and gpx.waypoints[0].name == "base"
    assert abs(points[0].latitude - points[-1].latitude) < 1e-6  # back at the base
    assert gpx.length_2d() == pytest.approx(geojson["properties"]["length_m"], rel=0.02)


def test_bad_patrol_requests(client: TestClient, divided_engine: Engine) -> None:
    code = grid_codes(divided_engine)[0]
    cases = [
        ("/grids/000000000000000/patrols/basic", {}, 404, "no grid"),
        ("/grids/12/patrols/basic", {}, 422, "15 digits"),
        (f"/grids/{code}/patrols/basic", {"base": "north"}, 422, "lon,lat"),
        (f"/grids/{code}/patrols/basic", {"base": "116.0,39.0"}, 422, "from the grid's nearest walkable street"),
        (f"/grids/{code}/patrols/basic", {"base": "116.3,39.9", "crs": "utm"}, 422, "unknown coordinate system"),
        (f"/grids/{code}/patrols/basic", {"dwell_min": -1}, 422, ""),
    ]
    for url, params, status, message in cases:
        response = client.get(url, params=params)
        assert response.status_code == status and message in response.text, (url, params, response.text)


def test_the_route_map_page_in_headless_chromium(divided_url: str, divided_engine: Engine) -> None:
    from maps.browser import serve_in_thread, visit
    from tests.conftest import ROOT

    code = max(grid_codes(divided_engine), key=lambda c: len(reading(divided_engine, load_grid_network, c)["required"]))
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        result = visit(f"{base}/grids/{code}/patrols/basic?format=html", width=1200, height=800,
                       screenshot=ROOT / "docs" / "patrol.png", token=http_token(base))
    assert result.ok, result.summary()
    assert (ROOT / "docs" / "patrol.png").stat().st_size > 20_000


def test_the_inspection_map_page_in_headless_chromium(divided_url: str, divided_engine: Engine) -> None:
    from maps.browser import serve_in_thread, visit
    from tests.conftest import ROOT

    with divided_engine.connect() as conn:  # the grid with the most buildings, in shifts short enough for 2+ tours
        code = conn.execute(text("SELECT g.code FROM grids g JOIN buildings b ON b.grid_id = g.id GROUP BY g.code "
                                 "ORDER BY count(*) DESC LIMIT 1")).scalar_one()
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        result = visit(f"{base}/grids/{code}/patrols/inspection?format=html&shift_min=90&time_limit_s=0.5",
                       width=1200, height=800, screenshot=ROOT / "docs" / "inspection.png", token=http_token(base))
    assert result.ok, result.summary()
    assert (ROOT / "docs" / "inspection.png").stat().st_size > 20_000


def test_the_full_inspection_visits_every_building_once_within_shifts(client: TestClient,
                                                                      divided_engine: Engine) -> None:
    with divided_engine.connect() as conn:
        code, count = conn.execute(text(
            "SELECT g.code, count(*) FROM grids g JOIN buildings b ON b.grid_id = g.id GROUP BY g.code "
            "ORDER BY count(*) DESC LIMIT 1")).one()
        ids = {r[0] for r in conn.execute(text("SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id "
                                               "WHERE g.code = :c"), {"c": code})}
    response = client.get(f"/grids/{code}/patrols/inspection", params={"shift_min": 90, "time_limit_s": 0.5})
    assert response.status_code == 200, response.text
    body = response.json()
    stops = [f["properties"] for f in body["features"] if f["properties"]["kind"] == "stop"]
    tours = [f["properties"] for f in body["features"] if f["properties"]["kind"] == "tour"]
    visited = [b for s in stops for b in s["buildings"]]
    assert len(visited) == len(set(visited))  # nobody twice
    assert set(visited) | set(body["properties"]["unreachable_buildings"]) == ids  # everybody
    assert len(tours) == body["properties"]["tours"] >= 1 and all(t["minutes"] <= 90 for t in tours)
    assert body["properties"]["length_m"] == pytest.approx(sum(t["length_m"] for t in tours), abs=1)
    assert count == len(ids)
    bad = client.get(f"/grids/{code}/patrols/inspection", params={"shift_min": 0})
    assert bad.status_code == 422
    gpx = gpxpy.parse(client.get(f"/grids/{code}/patrols/inspection",
                                 params={"shift_min": 90, "time_limit_s": 0.5, "format": "gpx"}).text)
    # (a second solve may order or split differently: the solver is time-limited; the buildings are the same)
    assert gpx.tracks and all(len(t.segments[0].points) >= 2 for t in gpx.tracks)
    assert sum(int(w.description.split(" ")[0]) for w in gpx.waypoints) == len(visited)


def _grid_with_places(engine: Engine) -> str:
    with engine.connect() as conn:  # the grid with the most key places (ties: the lowest code)
        return conn.execute(text(
            "SELECT g.code FROM grids g JOIN key_places k ON ST_Intersects(g.geom, ST_PointOnSurface(k.geom)) "
            "GROUP BY g.code ORDER BY count(*) DESC, g.code LIMIT 1")).scalar_one()


def _report_inside(client: TestClient, engine: Engine, code: str, n: int) -> None:
    with engine.connect() as conn:
        points = conn.execute(text("SELECT ST_X(p.geom), ST_Y(p.geom) FROM grids g, "
                                   "ST_Dump(ST_GeneratePoints(g.geom, :n, 7)) p WHERE g.code = :c"),
                              {"n": n, "c": code}).all()
    for (x, y), category in zip(points, ["C01", "C02", "C03", "E01", "E02"], strict=False):  # no duplicates
        response = client.post("/events", json={"location": {"type": "Point", "coordinates": [x, y]},
                                                 "category": category, "source": "grid_member"})
        assert response.status_code == 201 and response.json()["grid"] == code, response.text


def test_the_time_budgeted_patrol_covers_the_most_risk_it_can(client: TestClient, divided_engine: Engine) -> None:
    code = _grid_with_places(divided_engine)
    _report_inside(client, divided_engine, code, 4)
    wide = client.get(f"/grids/{code}/patrols/budgeted", params={"minutes": 240, "time_limit_s": 0.3}).json()
    p = wide["properties"]
    assert p["events"] == 4 and p["key_places"] >= 1
    assert p["risk_total"] == 3 * p["key_places"] + 2 * 4  # every event is still open: 2 each
    assert p["minutes"] <= 240 and p["risk"] == p["risk_total"] and p["dropped"] == 0  # time enough for all
    stops = [f["properties"] for f in wide["features"] if f["properties"]["kind"] == "stop"]
    assert sum(s["risk"] for s in stops) == p["risk"]
    assert sum(w["what"] == "event" for s in stops for w in s["why"]) == 4
    tight = client.get(f"/grids/{code}/patrols/budgeted",
                       params={"minutes": 25, "dwell_min": 10, "time_limit_s": 0.3}).json()
    q = tight["properties"]
    assert q["minutes"] <= 25 and q["stops"] <= 2 and q["stops"] + q["dropped"] == p["stops"]
    assert 0 < q["risk"] < p["risk"]
    dropped = [f["properties"] for f in tight["features"] if f["properties"]["kind"] == "dropped"]
    assert q["risk"] + sum(d["risk"] for d in dropped) == q["risk_total"]
    gpx = gpxpy.parse(client.get(f"/grids/{code}/patrols/budgeted",
                                 params={"minutes": 240, "time_limit_s": 0.3, "format": "gpx"}).text)
    assert len(gpx.tracks) == 1 and len(gpx.waypoints) == p["stops"]
    for minutes, message in ((0, "time budget"), (-30, "time budget"), ("soon", "")):
        response = client.get(f"/grids/{code}/patrols/budgeted", params={"minutes": minutes})
        assert response.status_code == 422 and message in response.text, response.text
    assert client.get(f"/grids/{code}/patrols/budgeted").status_code == 422  # the budget is required


def test_the_budgeted_patrol_map_page_in_headless_chromium(divided_url: str, divided_engine: Engine) -> None:
    from maps.browser import serve_in_thread, visit
    from tests.conftest import ROOT

    code = _grid_with_places(divided_engine)
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
            admin(c)
            _report_inside(c, divided_engine, code, 5)
        result = visit(f"{base}/grids/{code}/patrols/budgeted?format=html&minutes=45&time_limit_s=0.3",
                       width=1200, height=800, screenshot=ROOT / "docs" / "budgeted.png", token=http_token(base))
    assert result.ok, result.summary()
    assert (ROOT / "docs" / "budgeted.png").stat().st_size > 20_000


def test_a_planner_marks_streets_optional_and_the_route_skips_them(client: TestClient,
                                                                   divided_engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from gis.patrol.store.coverage import coverage_report

    code = max(grid_codes(divided_engine), key=lambda c: len(reading(divided_engine, load_grid_network, c)["required"]))
    streets = client.get(f"/grids/{code}/streets").json()
    segments = streets["features"]
    assert streets["properties"]["optional_segments"] == 0 and len(segments) >= 5
    assert all(not s["properties"]["optional"] for s in segments)
    before = client.get(f"/grids/{code}/patrols/basic").json()["properties"]
    assert before["optional_edges"] == 0 and before["required_edges"] == len(segments)
    with divided_engine.connect() as conn:
        city = conn.execute(text("SELECT c.city_id FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                 "WHERE g.code = :c"), {"c": code}).scalar_one()
    end = datetime.now(UTC)

    def street_m() -> float:
        rows = coverage_report(divided_engine, city, end - timedelta(days=30), end)["rows"]
        return float(next(r["street_m"] for r in rows if r["code"] == code))

    covered_before = street_m()
    longest = max(segments, key=lambda s: s["properties"]["length_m"])["properties"]
    body = {"segments": [longest["id"]], "author": "planner Li", "reason": "gated compound: no access"}
    marked = client.put(f"/grids/{code}/streets/optional", json=body)
    assert marked.status_code == 200, marked.text
    m = marked.json()["properties"]
    assert (m["optional_segments"], m["required_segments"], m["marked"]) == (1, len(segments) - 1, 1)
    shown = next(s["properties"] for s in marked.json()["features"] if s["properties"]["id"] == longest["id"])
    assert shown["optional"] and shown["marked_by"] == ADMIN and shown["reason"] == body["reason"]

    after = client.get(f"/grids/{code}/patrols/basic").json()
    p = after["properties"]
    assert p["optional_edges"] == 1 and p["required_edges"] == len(segments) - 1
    assert p["required_m"] == pytest.approx(before["required_m"] - longest["length_m"], abs=0.2)
    if before["optimal"] and p["optimal"]:  # fewer required streets never make the optimum longer
        assert p["length_m"] <= before["length_m"] + 0.1
    walked = {frozenset((s["properties"]["from"], s["properties"]["to"]))
              for s in after["features"] if s["properties"]["kind"] == "step"}
    unreachable = {frozenset(e[:2]) for e in p["unreachable"]}
    for s in segments:
        u, v, _ = (int(x) for x in s["properties"]["id"].split("-"))
        if s["properties"]["id"] != longest["id"] and frozenset((u, v)) not in unreachable:
            assert frozenset((u, v)) in walked  # every required street is still walked
    # coverage counts only the required streets
    assert street_m() == pytest.approx(covered_before - longest["length_m"], abs=0.2)

    # bad requests change nothing
    for bad, status, message in (
        ({**body, "segments": ["1-2"]}, 422, "u-v-key"),
        ({**body, "segments": ["1-2-0"]}, 422, "not streets of grid"),
        ({**body, "segments": [s["properties"]["id"] for s in segments]}, 422, "leave at least one required"),
        ({**body, "reason": ""}, 422, ""),
        ({"segments": []}, 422, ""),
    ):
        response = client.put(f"/grids/{code}/streets/optional", json=bad)
        assert response.status_code == status and message in response.text, (bad, response.text)
    assert client.get(f"/grids/{code}/streets").json()["properties"]["optional_segments"] == 1
    assert client.put("/grids/000000000000000/streets/optional", json=body).status_code == 404
    assert client.get("/grids/12/streets").status_code == 422

    cleared = client.put(f"/grids/{code}/streets/optional", json={**body, "segments": []}).json()["properties"]
    assert (cleared["optional_segments"], cleared["unmarked"]) == (0, 1)
    assert client.get(f"/grids/{code}/patrols/basic").json()["properties"]["length_m"] == before["length_m"]


def test_the_basic_patrol_stops_at_hot_spots(client: TestClient, divided_engine: Engine) -> None:
    code = max(grid_codes(divided_engine), key=lambda c: len(reading(divided_engine, load_grid_network, c)["required"]))
    before = client.get(f"/grids/{code}/patrols/basic").json()
    assert before["properties"]["hot_spots"] == 0
    step = next(f for f in before["features"] if f["properties"]["kind"] == "step" and f["properties"]["seq"] > 3)
    x, y = step["geometry"]["coordinates"][-1]  # an intersection the route passes
    for category in ("C01", "C02", "E01"):  # three reports, none a duplicate of another
        response = client.post("/events", json={"location": {"type": "Point", "coordinates": [x + 1e-5, y]},
                                                 "category": category, "source": "grid_member"})
        assert response.status_code == 201 and response.json()["grid"] == code, response.text
    after = client.get(f"/grids/{code}/patrols/basic", params={"dwell_min": 12}).json()
    spots = [f["properties"] for f in after["features"]
             if f["properties"]["kind"] == "stop" and f["properties"]["place_kind"] == "hot_spot"]
    assert after["properties"]["hot_spots"] == len(spots) == 1
    assert spots[0]["name"] == "3 events in 90 days" and spots[0]["dwell_min"] == 12
    p, q = after["properties"], before["properties"]
    assert p["stops"] == q["stops"] + 1 and p["length_m"] == q["length_m"]  # the same route, one more stop
    assert p["minutes_with_stops"] == pytest.approx(p["minutes"] + 12 * p["stops"], abs=0.2)
