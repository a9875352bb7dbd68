"""Visits and proof on the divided Beijing fixture: tracks matched to streets, compliance, the month's schedule."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import gpxpy.gpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from tests.conftest import admin

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def _staffed_grid(client: TestClient, engine: Engine) -> tuple[str, int, int]:
    """The grid with the most buildings, its chief and its member (the fixture's synthetic staff)."""
    with engine.connect() as conn:
        code, grid_id = conn.execute(text(
            "SELECT g.code, g.id FROM grids g JOIN buildings b ON b.grid_id = g.id GROUP BY g.code, g.id "
            "ORDER BY count(*) DESC LIMIT 1")).one()
        duty = dict(conn.execute(text("SELECT duty, staff_id FROM staff_grids WHERE grid_id = :g "
                                      "AND duty IN ('chief', 'member')"), {"g": grid_id}).all())
    return code, duty["chief"], duty["member"]


def _route_track(client: TestClient, code: str) -> list[list[float]]:
    route = client.get(f"/grids/{code}/patrols/basic").json()
    coords: list[list[float]] = []
    for f in route["features"]:
        if f["properties"]["kind"] == "step":
            coords.extend(f["geometry"]["coordinates"] if not coords else f["geometry"]["coordinates"][1:])
    return coords


def _month_of_week(moment: datetime) -> str:
    local = moment.astimezone(TZ).date()
    return (local - timedelta(days=local.weekday()) + timedelta(days=3)).strftime("%Y-%m")  # the week's Thursday


def test_a_walked_route_is_matched_and_the_week_and_month_are_done(client: TestClient,
                                                                  divided_engine: Engine) -> None:
    code, chief, member = _staffed_grid(client, divided_engine)
    track = _route_track(client, code)
    start = datetime.now(UTC) - timedelta(hours=2)
    body = {"kind": "basic", "staff_id": chief, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=50)).isoformat(), "track": {"type": "LineString",
                                                                                "coordinates": track}}
    response = client.post(f"/grids/{code}/visits", json=body)
    assert response.status_code == 201, response.text
    visit = response.json()
    route = client.get(f"/grids/{code}/patrols/basic").json()["properties"]
    assert visit["matched_by"] == "hmm" and visit["segments_required"] > 0
    # the streets the planned route walks are credited (but where two ways are drawn along one line, or a link
    # between two crossings is a metre or two, the matcher may take the other: at most one in thirty here); the
    # ones the route cannot reach (its "unreachable"), never
    assert route["covered_edges"] >= visit["segments_walked"] >= 0.97 * route["covered_edges"]
    assert visit["walked_share"] > 0.9
    assert client.get(f"/visits/{visit['id']}").json() == visit
    drawn = client.get(f"/visits/{visit['id']}/streets").json()
    kinds = [f["properties"]["kind"] for f in drawn["features"]]
    assert kinds.count("walked") == visit["segments_walked"] and kinds.count("track") == 1
    assert kinds.count("matched") == 1 and drawn["properties"] == visit
    buffered = client.post(f"/grids/{code}/visits", json={**body, "method": "buffer"}).json()
    assert buffered["matched_by"] == "buffer" and buffered["gps_sigma_m"] is None
    assert buffered["segments_walked"] >= visit["segments_walked"]  # the buffer also credits streets beside it

    half = client.post(f"/grids/{code}/visits", json={**body, "staff_id": member,
                                                      "track": {"type": "LineString",
                                                                "coordinates": track[:len(track) // 3]}}).json()
    assert 0 < half["walked_share"] < 0.8

    with divided_engine.connect() as conn:
        buildings = [r[0] for r in conn.execute(text(
            "SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.code = :c"), {"c": code})]
    inspected = client.post(f"/grids/{code}/visits", json={
        "kind": "inspection", "staff_id": member, "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=1)).isoformat(), "buildings": [*buildings, 999_999_999]}).json()
    assert sorted(inspected["buildings"]) == sorted(buildings) and inspected["unknown_buildings"] == [999_999_999]

    week_month = _month_of_week(start)
    report = client.get(f"/grids/{code}/compliance", params={"month": week_month}).json()
    local = start.astimezone(TZ).date()
    week = next(w for w in report["weeks"] if w["week_of"] == (local - timedelta(days=local.weekday())).isoformat())
    assert week["basic_patrol"] == "done" and week["visits"] == 4 and sorted(week["staff"]) == sorted([chief, member])
    month = start.astimezone(TZ).strftime("%Y-%m")
    report = client.get(f"/grids/{code}/compliance", params={"month": month}).json()
    assert report["full_inspection"] == "done" and report["buildings_visited"] == len(buildings)
    csv = client.get(f"/grids/{code}/compliance", params={"month": week_month, "format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith("grid,month,week_of")

    plan = client.get(f"/grids/{code}/schedule", params={"month": week_month}).json()
    basic = [i for i in plan["items"] if i["kind"] == "basic"]
    weeks = {i["week_of"] for i in basic}
    assert plan["people"] == 2 and len(basic) == 2 * len(weeks) and len(weeks) in (4, 5)  # each, every week
    mine = [i for i in basic if i["week_of"] == week["week_of"]]
    assert {i["staff_id"]: i["status"] for i in mine} == {chief: "done", member: "done"}
    assert len({i["date"] for i in mine}) == 2  # chief and member patrol on different days
    tours = [i for i in plan["items"] if i["kind"] == "inspection"]
    assert len(tours) == plan["inspection_tours"] >= 1
    assert all(datetime.fromisoformat(i["date"]).weekday() < 5 for i in tours)


def test_a_shared_patrol_rotates_and_its_parts_together_do_the_week(client: TestClient,
                                                                    divided_engine: Engine) -> None:
    code, chief, member = _staffed_grid(client, divided_engine)
    split = client.get(f"/grids/{code}/patrols/split", params={"k": 2}).json()
    tracks = [f["geometry"]["coordinates"] for f in split["features"] if f["properties"]["kind"] == "tour"]
    start = datetime.now(UTC) - timedelta(hours=2)
    month = _month_of_week(start)
    local = start.astimezone(TZ).date()
    monday = (local - timedelta(days=local.weekday())).isoformat()

    def week() -> dict[str, object]:
        report = client.get(f"/grids/{code}/compliance", params={"month": month}).json()
        return next(w for w in report["weeks"] if w["week_of"] == monday)

    def walk(staff: int, track: list[list[float]]) -> None:
        answer = client.post(f"/grids/{code}/visits", json={
            "kind": "basic", "staff_id": staff, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=40)).isoformat(),
            "track": {"type": "LineString", "coordinates": track}})
        assert answer.status_code == 201, answer.text

    walk(chief, tracks[0])
    assert week()["basic_patrol"] != "done"  # one part is not the grid
    walk(member, tracks[1])
    assert week()["basic_patrol"] == "done" and week()["walked_share"] > 0.9  # the two parts are
    plan = client.get(f"/grids/{code}/schedule", params={"month": month, "shared": True}).json()
    assert plan["shared_parts"] == 2
    basic = [i for i in plan["items"] if i["kind"] == "basic"]
    weeks = sorted({i["week_of"] for i in basic})
    for w in weeks:  # each week both parts are walked, one by each
        assert sorted(i["part"] for i in basic if i["week_of"] == w) == [1, 2]
    for staff in (chief, member):  # and each person walks the other part the week after
        parts = [next(i["part"] for i in basic if i["week_of"] == w and i["staff_id"] == staff) for w in weeks]
        assert all(a != b for a, b in itertools.pairwise(parts))
    assert {i["staff_id"]: i["status"] for i in basic if i["week_of"] == monday} == {chief: "done", member: "done"}
    whole = client.get(f"/grids/{code}/schedule", params={"month": month}).json()
    assert whole["shared_parts"] == 0 and all("part" not in i for i in whole["items"])


def test_a_gpx_track_from_a_phone(client: TestClient, divided_engine: Engine) -> None:
    code, chief, _ = _staffed_grid(client, divided_engine)
    track = _route_track(client, code)
    gpx = gpxpy.gpx.GPX()
    segment = gpxpy.gpx.GPXTrackSegment()
    start = datetime.now(UTC) - timedelta(hours=3)
    for i, (x, y) in enumerate(track):
        segment.points.append(gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x, time=start + timedelta(seconds=20 * i)))
    gpx.tracks.append(gpxpy.gpx.GPXTrack())
    gpx.tracks[0].segments.append(segment)
    response = client.post(f"/grids/{code}/visits/gpx", params={"staff_id": chief}, content=gpx.to_xml())
    assert response.status_code == 201, response.text
    route = client.get(f"/grids/{code}/patrols/basic").json()["properties"]
    assert route["covered_edges"] >= response.json()["segments_walked"] >= 0.97 * route["covered_edges"]
    assert response.json()["matched_by"] == "hmm"
    assert response.json()["started_at"] == start.isoformat()
    back = gpxpy.gpx.GPX()  # a file whose points are not in time order: refused, naming the point
    back.tracks.append(gpxpy.gpx.GPXTrack())
    back.tracks[0].segments.append(gpxpy.gpx.GPXTrackSegment(
        [gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x, time=start + timedelta(seconds=(7 if i == 3 else i)))
         for i, (x, y) in enumerate(track[:10])]))
    refused = client.post(f"/grids/{code}/visits/gpx", params={"staff_id": chief}, content=back.to_xml())
    assert refused.status_code == 422 and "backwards at point 5" in refused.text, refused.text


def test_a_noisy_phone_track_with_times_is_map_matched(client: TestClient, divided_engine: Engine) -> None:
    """A walk along the planned route at 1.3 m/s, one fix a second with 10 m of GPS error, as the member page sends
    it (times, and the phone's accuracy): the matcher credits the route's streets; the buffer test credits more."""
    import numpy as np
    from pyproj import Transformer
    from shapely.geometry import LineString

    code, chief, _ = _staffed_grid(client, divided_engine)
    track = _route_track(client, code)
    route = client.get(f"/grids/{code}/patrols/basic").json()["properties"]
    to_m = Transformer.from_crs(4326, 32650, always_xy=True)
    to_deg = Transformer.from_crs(32650, 4326, always_xy=True)
    line = LineString([to_m.transform(x, y) for x, y in track])
    walk = np.array([line.interpolate(d).coords[0] for d in np.arange(0.0, line.length, 1.3)])
    noisy = walk + np.random.default_rng(25).normal(0.0, 10.0, walk.shape)
    lon, lat = to_deg.transform(noisy[:, 0], noisy[:, 1])
    start = datetime.now(UTC) - timedelta(hours=3)
    body = {"kind": "basic", "staff_id": chief, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(seconds=len(walk))).isoformat(),
            "track": {"type": "LineString",
                      "coordinates": [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]},
            "times": [start.timestamp() + i for i in range(len(walk))]}
    visit = client.post(f"/grids/{code}/visits", json=body)
    assert visit.status_code == 201, visit.text
    matched = visit.json()
    assert matched["matched_by"] == "hmm" and matched["gps_sigma_m"] == pytest.approx(10.0, rel=0.2)
    assert matched["segments_walked"] >= 0.9 * route["covered_edges"]
    buffered = client.post(f"/grids/{code}/visits", json={**body, "method": "buffer"}).json()
    assert buffered["segments_walked"] >= matched["segments_walked"]

    bad = [({"times": body["times"][:-1]}, "give one time per point"),
           ({"times": [*body["times"][:10], body["times"][3], *body["times"][11:]]}, "backwards at point 11"),
           ({"times": ["soon"] * len(walk)}, ""),
           ({"gps_error_m": 0.1}, "GPS error"),
           ({"method": "psychic"}, ""),
           ({"track": None, "buildings": [1], "times": [1.0]}, "without a track"),
           ({"track": {"type": "LineString", "coordinates": [[116.3, 39.9]] * 100_000}, "times": None},
            "at most 50,000")]
    before = client.get(f"/grids/{code}/compliance", params={"month": _month_of_week(start)}).json()
    for change, message in bad:
        response = client.post(f"/grids/{code}/visits", json={**body, **change})
        assert response.status_code == 422 and message in response.text, (change, response.text[:300])
    assert client.get(f"/grids/{code}/compliance", params={"month": _month_of_week(start)}).json() == before


def test_bad_visits_are_refused_and_nothing_is_stored(client: TestClient, divided_engine: Engine) -> None:
    code, chief, _ = _staffed_grid(client, divided_engine)
    track = _route_track(client, code)
    start = datetime.now(UTC) - timedelta(hours=1)
    good = {"kind": "basic", "staff_id": chief, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=30)).isoformat(),
            "track": {"type": "LineString", "coordinates": track}}
    far = [[x + 1.0, y] for x, y in track]  # the same shape 85 km east
    cases = [
        ({"track": {"type": "LineString", "coordinates": [track[0]]}}, 422, "at least 2 points"),
        ({"track": {"type": "Point", "coordinates": track[0]}}, 422, "GeoJSON LineString"),
        ({"track": {"type": "LineString", "coordinates": [[1, "a"], [2, 3]]}}, 422, "numbers"),
        ({"track": {"type": "LineString", "coordinates": [[116.3, 95.0], [116.3, 39.9]]}}, 422, "in range"),
        ({"track": {"type": "LineString", "coordinates": far}}, 422, "never comes within"),
        ({"track": {"type": "LineString", "coordinates": [track[0]] * 50}}, 422, "does not move"),
        ({"ended_at": (start - timedelta(hours=1)).isoformat()}, 422, "ends before it starts"),
        ({"ended_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, 422, "future"),
        ({"started_at": "2026-11-20T09:00:00"}, 422, "time zone"),
        ({"kind": "stroll"}, 422, ""),
        ({"staff_id": 987654}, 422, "no staff member"),
        ({"track": None}, 422, "a track, buildings visited, or both"),
        ({"tolerance_m": 0}, 422, ""),
    ]
    for change, status, message in cases:
        response = client.post(f"/grids/{code}/visits", json={**good, **change})
        assert response.status_code == status and message in response.text, (change, response.text)
    raw = json.dumps({**good, "track": {"type": "LineString", "coordinates": [["X", 39.9], [116.3, 39.9]]}})
    nan = client.post(f"/grids/{code}/visits", content=raw.replace('"X"', "NaN"),  # JSON from a sloppy client
                      headers={"Content-Type": "application/json"})
    assert nan.status_code == 422 and "finite" in nan.text, nan.text
    assert client.post("/grids/000000000000000/visits", json=good).status_code == 404
    assert client.post(f"/grids/{code}/visits/gpx", content=b"<gpx nonsense").status_code == 422
    no_times = gpxpy.gpx.GPX()
    no_times.tracks.append(gpxpy.gpx.GPXTrack())
    no_times.tracks[0].segments.append(gpxpy.gpx.GPXTrackSegment(
        [gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x) for x, y in track[:5]]))
    response = client.post(f"/grids/{code}/visits/gpx", content=no_times.to_xml())
    assert response.status_code == 422 and "no times" in response.text
    for month in ("2026-13", "November"):
        assert client.get(f"/grids/{code}/compliance", params={"month": month}).status_code == 422
    assert client.get("/visits/424242").status_code == 404
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patrol_visits")).scalar() == 0
    assert not math.isnan(client.post(f"/grids/{code}/visits", json=good).json()["walked_share"])


def test_a_visit_backdated_past_a_week_is_for_a_dispatcher(client: TestClient, divided_engine: Engine) -> None:
    """Issue 18: a grid member could log a visit for any past date, and so make last year's patrols look done."""
    from tests.conftest import staff_headers, user_headers

    code, _, member = _staffed_grid(client, divided_engine)
    track = _route_track(client, code)[:50]
    long_ago = datetime.now(UTC) - timedelta(days=30)
    body = {"kind": "basic", "started_at": long_ago.isoformat(),
            "ended_at": (long_ago + timedelta(hours=1)).isoformat(),
            "track": {"type": "LineString", "coordinates": track}}
    own = staff_headers(client, divided_engine, member)
    refused = client.post(f"/grids/{code}/visits", json=body, headers=own)
    assert refused.status_code == 403 and "dispatcher" in refused.json()["detail"]
    recent = datetime.now(UTC) - timedelta(days=2)
    assert client.post(f"/grids/{code}/visits", headers=own, json={
        **body, "started_at": recent.isoformat(), "ended_at": (recent + timedelta(hours=1)).isoformat()}
    ).status_code == 201  # the last week's: the member's own
    with divided_engine.connect() as conn:
        community = conn.execute(text("SELECT c.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                      "WHERE g.code = :g"), {"g": code}).scalar_one()
    dispatcher = user_headers(client, divided_engine, "dispatcher", community)
    entered = client.post(f"/grids/{code}/visits", json={**body, "staff_id": member}, headers=dispatcher)
    assert entered.status_code == 201, entered.text


def test_a_share_set_once_gives_each_member_their_part_this_week(client: TestClient,
                                                                  divided_engine: Engine) -> None:
    """Issue 25: the planner shares the grid's patrol among its people once; the month's schedule and each
    member's "today's route" then name the same parts, rotating week by week."""
    from tests.conftest import staff_headers

    code, chief, member = _staffed_grid(client, divided_engine)
    assert client.get(f"/grids/{code}/patrols/share").json()["k"] == 1  # not shared yet
    share = client.put(f"/grids/{code}/patrols/share", json={"k": 2})
    assert share.status_code == 200, share.text
    parts = share.json()["parts"]
    streets = client.get(f"/grids/{code}/streets").json()["features"]
    required = sorted(s["properties"]["id"] for s in streets if not s["properties"]["optional"])
    assert len(parts) == 2 and all(parts)
    shared = [f"{u}-{v}-{k}" for part in parts for u, v, k in part]
    route = client.get(f"/grids/{code}/patrols/basic").json()["properties"]
    # each street the patrol reaches in exactly one part
    assert len(set(shared)) == len(shared) == route["covered_edges"] and set(shared) <= set(required)

    today = datetime.now(TZ).date()
    month = _month_of_week(datetime.now(UTC))
    monday = (today - timedelta(days=today.weekday())).isoformat()
    plan = client.get(f"/grids/{code}/schedule", params={"month": month}).json()  # the stored share, unasked
    assert plan["shared_parts"] == 2
    planned = {i["staff_id"]: i["part"] for i in plan["items"] if i["kind"] == "basic" and i["week_of"] == monday}
    assert sorted(planned.values()) == [1, 2]
    for staff in (chief, member):
        mine = client.get(f"/grids/{code}/patrols/today", headers=staff_headers(client, divided_engine, staff))
        assert mine.status_code == 200, mine.text
        p = mine.json()["properties"]
        assert (p["part"], p["parts"], p["week_of"]) == (planned[staff], 2, monday)
        line = next(f for f in mine.json()["features"] if f["properties"]["kind"] == "tour")
        assert line["properties"]["streets"] == len(parts[p["part"] - 1])  # the part as set, not a new split
        assert line["geometry"]["coordinates"][0] == line["geometry"]["coordinates"][-1]  # from the base and back
        gpx = client.get(f"/grids/{code}/patrols/today", params={"format": "gpx"},
                         headers=staff_headers(client, divided_engine, staff))
        assert gpx.status_code == 200 and "<trk>" in gpx.text
    whole = client.get(f"/grids/{code}/patrols/today").json()["properties"]  # an admin, not one of the grid's
    assert whole["part"] is None and whole["covered_edges"] > 0

    member_headers = staff_headers(client, divided_engine, member)
    assert client.put(f"/grids/{code}/patrols/share", json={"k": 2}, headers=member_headers).status_code == 403
    for k, status in ((9, 422), (0, 422)):
        assert client.put(f"/grids/{code}/patrols/share", json={"k": k}).status_code == status
    assert client.put("/grids/000000000000000/patrols/share", json={"k": 2}).status_code == 404
    assert client.get(f"/grids/{code}/patrols/share").json()["k"] == 2  # the refusals changed nothing
    assert client.put(f"/grids/{code}/patrols/share", json={"k": 1}).json()["k"] == 1
    assert client.get(f"/grids/{code}/schedule", params={"month": month}).json()["shared_parts"] == 0
    assert client.get(f"/grids/{code}/patrols/today", headers=member_headers).json()["properties"]["part"] is None
