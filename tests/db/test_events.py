"""Dispatch end to end through the API, on the divided Beijing fixture with its synthetic staff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
import shapely.geometry
import shapely.ops
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import reading
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.dispatch.store.calendar import work_calendar
from gis.dispatch.worktime import WorkCalendar
from gis.geo.coords import from_wgs84
from gis.oversight.store import kpis as oversight
from tests.conftest import admin, http_headers, staff_headers, user_headers

# 10:00 in Beijing on a weekday: the synthetic member of every grid is on duty (08:00–20:00)
DAYTIME = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Beijing: nobody on duty, the chief answers


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def inner_point(engine: Engine, rank: int = 0) -> tuple[str, float, float]:
    """A grid and a point well inside it."""
    with engine.connect() as conn:
        code, lon, lat = conn.execute(text(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM grids ORDER BY code "
            "OFFSET :r LIMIT 1) s"), {"r": rank}).one()
    return code, lon, lat


def report(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {"location": {"type": "Point", "coordinates": [lon, lat]}, "category": "C01", "source": "resident_app",
            "description": "井盖缺失 manhole cover missing", "reporter_contact": "138 0000 0000", **extra}


def city_calendar(engine: Engine) -> WorkCalendar:
    """The working calendar of the fixture's (only) city, as the Python reference reads it."""
    with engine.connect() as conn:
        city = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city' ORDER BY id LIMIT 1")).scalar_one()
        return work_calendar(conn, city)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_a_report_lands_on_its_grid_and_the_member_on_duty(divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine)
    day = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline"),
                        now=DAYTIME).event
    assert day["grid"] == code and day["state"] == "dispatched" and day["queue"] == "grid"
    assert day["assignee"]["role"] == "grid_member" and "on duty" in day["assignment_rule"]
    # C01 normal: 72 working hours from dispatch, 9.6 working days of 7.5 hours: Monday 10:00 in Beijing → Friday of
    # the next week, 16:00 (the Python reference of the same rule agrees)
    assert day["due_at"] == datetime(2026, 12, 4, 8, 0, tzinfo=UTC).isoformat()
    assert day["due_at"] == city_calendar(divided_engine).deadline(DAYTIME, 72).isoformat()
    assert datetime.fromisoformat(day["accept_due_at"]) == DAYTIME + timedelta(hours=1)  # 立案 within 1 working hour
    assert day["accepted_at"] == day["dispatched_at"] and day["accept_late"] is False
    night = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="hotline"),
                          now=NIGHT).event
    assert night["assignee"]["role"] == "grid_chief" and "grid chief" in night["assignment_rule"]
    steps = [h["action"] for h in reading(divided_engine, events.history, day["id"])]
    assert steps == ["report", "accept", "dispatch"]


def test_intake_over_http_commits_before_201_and_hides_the_contact(client: TestClient,
                                                                   divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine)
    response = client.post("/events", json=report(lon, lat))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["grid"] == code and body["reporter_contact"] == "138 0000 0000"
    assert response.headers["location"] == f"/events/{body['id']}"
    with divided_engine.connect() as conn:  # another connection sees it: committed
        assert conn.execute(text("SELECT grid_code FROM events WHERE id = :i"), {"i": body["id"]}).scalar() == code
    leader = user_headers(client, divided_engine, "leader", "beijing")
    public = client.get(f"/events/{body['id']}", headers=leader).json()
    assert "reporter_contact" not in public and public["id"] == body["id"]
    assignee = staff_headers(client, divided_engine, body["assignee"]["id"])
    mine = client.get(f"/events/{body['id']}", headers=assignee).json()
    assert mine["reporter_contact"] == "138 0000 0000"
    read = [e for e in client.get("/audit", params={"subject": f"event {body['id']}"}).json()
            if e["action"] == "read_personal"]
    assert len(read) == 1 and read[0]["role"] == "grid_member"  # the assignee's read, audited


def test_after_the_database_drops_its_connections_intake_retries_and_others_say_503(
        client: TestClient, divided_engine: Engine) -> None:
    """The service's pool does not ping before use (gis.db.engine): a connection the database has closed (a
    restart) is found broken on use. Intake runs once more on a fresh one; another request answers 503 "retry"
    (never a 500), and the next one works."""
    code, lon, lat = inner_point(divided_engine)

    def restart() -> None:  # what a database restart does to the app's pooled connections
        # first write the audit log's pending lines, so its writer does not meet a broken connection during the
        # checks below (SQLAlchemy would renew the pool, and the next request would not find one broken)
        client.app.state.audit.flush()  # type: ignore[attr-defined]
        with divided_engine.connect() as conn:
            killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert killed >= 1  # the test client's pooled connections (requests, audit log)

    assert client.post("/events", json=report(lon, lat)).status_code == 201
    restart()
    lost = client.get("/events")
    assert lost.status_code == 503 and "retry" in lost.json()["detail"] and lost.headers["retry-after"] == "1"
    again = client.get("/events")
    assert again.status_code == 200, again.text
    restart()
    again = client.post("/events", json=report(lon, lat, description="after the restart"))
    assert again.status_code == 201 and again.json()["grid"] == code
    assert count(divided_engine) == 2


def test_a_point_on_a_shared_edge_goes_to_the_lowest_code(divided_engine: Engine) -> None:
    with divided_engine.connect() as conn:
        a, b, lon, lat = conn.execute(text("""
            SELECT a.code, b.code, ST_X(p), ST_Y(p) FROM grids a JOIN grids b ON a.code < b.code
              AND ST_Touches(a.geom, b.geom)
            CROSS JOIN LATERAL (SELECT (ST_DumpPoints(ST_Intersection(a.geom, b.geom))).geom AS p LIMIT 1) v
            ORDER BY a.code, b.code LIMIT 1""")).one()
        holders = conn.execute(text("SELECT code FROM grids WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, "
                                    ":y), 4326)) ORDER BY code"), {"x": lon, "y": lat}).scalars().all()
    assert len(holders) >= 2 and a in holders and b in holders
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C02", source="video")).event
    assert event["grid"] == holders[0] and "lowest code" in event["assignment_rule"]


def west_of_every_grid(engine: Engine, metres: float) -> tuple[float, float]:
    """The point ``metres`` west of the westernmost corner of all grids (lon, lat)."""
    with engine.connect() as conn:
        x, y = conn.execute(text("""
            WITH c AS (SELECT (ST_DumpPoints(ST_Union(geom))).geom AS p FROM grids),
            w AS (SELECT p FROM c ORDER BY ST_X(p) LIMIT 1)
            SELECT ST_X(q), ST_Y(q) FROM (SELECT ST_Project(p::geography, :m, radians(270))::geometry q FROM w) s
        """), {"m": metres}).one()
    return float(x), float(y)


def test_outside_every_grid_nearest_within_50_m_else_the_street_queue(divided_engine: Engine) -> None:
    with divided_engine.connect() as conn:
        streets = conn.execute(text("SELECT count(*) FROM admin_units WHERE level = 'street'")).scalar()
    assert streets
    n, f = shapely.Point(west_of_every_grid(divided_engine, 20)), shapely.Point(west_of_every_grid(divided_engine, 300))
    nearby = events.intake(divided_engine, rules.EventIn(lon=n.x, lat=n.y, category="C01", source="hotline")).event
    assert nearby["grid"] and "nearest grid" in nearby["assignment_rule"] and nearby["flagged"]
    beyond = events.intake(divided_engine, rules.EventIn(lon=f.x, lat=f.y, category="C01", source="hotline"),
                           radius_m=50).event
    assert beyond["grid"] is None and beyond["queue"] == "street_centre" and beyond["flagged"]
    assert beyond["street"] and "centre queue" in beyond["assignment_rule"]


def test_gcj02_and_bd09_reports_land_where_the_wgs84_point_is(divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine, 3)
    for crs in ("gcj02", "bd09"):
        x, y = from_wgs84(lon, lat, crs)
        event = events.intake(divided_engine, rules.EventIn(lon=x, lat=y, crs=crs, category="C02",
                                                             source="resident_app")).event
        stored = event["location"]["coordinates"]
        assert event["grid"] == code and event["input"]["crs"] == crs
        assert abs(stored[0] - lon) < 1e-6 and abs(stored[1] - lat) < 1e-6  # ~0.1 m
        assert abs(x - lon) + abs(y - lat) > 0.002  # the offset was real (hundreds of metres)


def test_idempotency_key(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    first = client.post("/events", json=report(lon, lat, idempotency_key="app-42-0001"))
    again = client.post("/events", json=report(lon, lat, idempotency_key="app-42-0001"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    header = client.post("/events", json=report(lon, lat), headers={"Idempotency-Key": "app-42-0001"})
    assert header.status_code == 200 and header.json()["id"] == first.json()["id"]
    other = client.post("/events", json=report(lon, lat, description="another thing", idempotency_key="app-42-0001"))
    assert other.status_code == 409 and "different report" in other.json()["detail"]
    assert count(divided_engine) == 1


def test_bad_reports_are_4xx_and_store_nothing(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    good = report(lon, lat)
    cases = [
        ({**good, "location": {"type": "Point"}}, "coordinates"),
        ({**good, "location": {"type": "Point", "coordinates": ["116.3", "39.9"]}}, "numbers"),
        ({**good, "location": {"type": "Point", "coordinates": [None, 39.9]}}, "missing"),
        ({**good, "location": {"type": "Point", "coordinates": [39.9, 116.3]}}, "out of range"),
        ({**good, "location": {"type": "Polygon", "coordinates": []}}, "Point"),
        ({**good, "location": "116.3,39.9"}, "GeoJSON Point"),
        ({**good, "crs": "utm50"}, "unknown coordinate system"),
        ({**good, "category": "Z99"}, "unknown category"),
        ({**good, "priority": "asap"}, "unknown priority"),
        ({**good, "source": "pigeon"}, "unknown source"),
        ({**good, "description": "x" * 5000}, "at most"),
        ({**good, "location": {"type": "Point", "coordinates": [0.0, 0.0]}}, "outside the service area"),
    ]
    for body, message in cases:
        response = client.post("/events", json=body)
        assert response.status_code == 422, (body, response.text)
        assert message in response.text, response.text
    nan = client.post("/events", content=b'{"location": {"type": "Point", "coordinates": [NaN, 39.9]}, '
                                         b'"category": "C01", "source": "hotline"}',
                      headers={"content-type": "application/json"})
    assert nan.status_code == 422, nan.text
    broken = client.post("/events", content=b'{"location": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert count(divided_engine) == 0


def test_the_closed_loop_with_roles_and_history(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    event = client.post("/events", json=report(lon, lat)).json()
    url = f"/events/{event['id']}"
    member = staff_headers(client, divided_engine, event["assignee"]["id"])
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    leader = user_headers(client, divided_engine, "leader", "beijing")
    assert client.post(f"{url}/close", json={}, headers=centre).status_code == 409  # not verified yet
    assert client.post(f"{url}/accept", json={}, headers=centre).status_code == 409  # already dispatched
    assert client.post(f"{url}/handle", json={}, headers=leader).status_code == 403  # leaders look, not act
    assert client.post(f"{url}/fly", json={}, headers=member).status_code == 422
    assert client.post(f"{url}/receive", json={}, headers=centre).status_code == 403  # only the assignee
    handled = client.post(f"{url}/handle", json={"note": "盖上了 covered"}, headers=member)
    assert handled.status_code == 200
    own = client.post(f"{url}/verify", json={}, headers=member)
    assert own.status_code == 403 and "someone else" in own.json()["detail"]  # never one's own work
    rework = client.post(f"{url}/rework", json={"note": "not fixed properly"}, headers=centre)
    assert rework.json()["state"] == "dispatched" and rework.json()["reworks"] == 1
    client.post(f"{url}/handle", json={}, headers=member)
    client.post(f"{url}/verify", json={}, headers=centre)
    closed = client.post(f"{url}/close", json={"evaluation": 5}, headers=centre)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert closed.json()["closed_on_time"] is True and "reporter_contact" not in closed.json()
    steps = client.get(f"{url}/history").json()
    assert [s["action"] for s in steps] == ["report", "accept", "dispatch", "handle", "rework", "handle", "verify",
                                            "close"]
    # who acted is the signed-in user, in the role their staff record gives them
    assert steps[3]["actor"].startswith("grid_member-") and steps[3]["role"] == event["assignee"]["role"]
    assert steps[3]["note"] == "盖上了 covered" and steps[-1]["role"] == "centre_staff"
    assert client.post(f"{url}/handle", json={}, headers=member).status_code == 409
    assert client.get("/events/999999").status_code == 404


def test_suspension_stops_the_clock_and_extension_moves_the_deadline(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline"),
                          now=DAYTIME).event
    due = datetime.fromisoformat(event["due_at"])
    centre = {"actor": "centre", "role": "centre_staff"}
    events.act(divided_engine, event["id"], "suspend", now=DAYTIME + timedelta(hours=1), **centre)
    resumed = events.act(divided_engine, event["id"], "resume", now=DAYTIME + timedelta(hours=6), **centre)
    # suspended 11:00–16:00 on a Monday in Beijing: 5 hours on the clock, 3.5 of them working time (lunch is not)
    calendar = city_calendar(divided_engine)
    assert datetime.fromisoformat(resumed["due_at"]) == calendar.deadline(due, 3.5)
    assert resumed["suspended_seconds"] == 5 * 3600
    extended = events.act(divided_engine, event["id"], "extend", hours=24, now=DAYTIME + timedelta(hours=7),
                          note="待更换井盖到货 waiting for the new cover", **centre)
    assert datetime.fromisoformat(extended["due_at"]) == calendar.deadline(calendar.deadline(due, 3.5), 24)
    assert extended["extensions"] == 1


def test_a_passed_deadline_escalates_up_the_levels(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E05", source="hotline",
                                                         priority="urgent"), now=DAYTIME).event  # due in 1 h
    levels = []
    for hours in (2, 4, 6, 8):
        done = events.escalate_overdue(divided_engine, now=DAYTIME + timedelta(hours=hours))
        levels += [d["level"] for d in done if d["id"] == event["id"]]
    assert levels == ["community", "street", "department"]  # and no further
    final = reading(divided_engine, events.get_event, event["id"])
    assert final["department"] == "emergency" and final["queue"] == "department" and final["missed_deadline"]
    assert final["escalations"] == 3
    at = DAYTIME + timedelta(hours=8, minutes=30)
    for action, actor, role in (("handle", "dept", "department"), ("verify", "centre", "centre_staff"),
                                ("close", "centre", "centre_staff")):
        events.act(divided_engine, event["id"], action, actor=actor, role=role, now=at)
    assert reading(divided_engine, events.get_event, event["id"])["closed_on_time"] is False  # it missed its deadline


def test_whistle_blowing_sends_an_event_straight_to_the_department(client: TestClient,
                                                                   divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    event = client.post("/events", json=report(lon, lat, category="E04")).json()
    with divided_engine.connect() as conn:
        chief = conn.execute(text("SELECT sg.staff_id FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
                                  "WHERE g.code = :c AND sg.duty = 'chief'"), {"c": event["grid"]}).scalar_one()
    up = client.post(f"/events/{event['id']}/escalate", json={"to_level": "department", "note": "吹哨"},
                     headers=staff_headers(client, divided_engine, chief))
    assert up.status_code == 200 and up.json()["department"] == "housing" and up.json()["level"] == "department"
    assert not up.json()["missed_deadline"]
    down = client.post(f"/events/{event['id']}/escalate", json={"to_level": "grid"})
    assert down.status_code == 409


def test_police_and_department_categories_skip_the_grid_member(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    police = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="S02", source="hotline")).event
    assert police["assignee"]["role"] == "police" and police["queue"] == "police"
    water = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C05", source="hotline")).event
    assert water["assignee"] is None and water["department"] == "water" and water["queue"] == "department"


def test_a_second_report_nearby_is_linked_as_a_possible_duplicate_and_can_be_merged(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    first = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="hotline"),
                          now=DAYTIME).event
    near = events.intake(divided_engine, rules.EventIn(lon=lon + 0.0002, lat=lat, category="E01",
                                                        source="resident_app"), now=DAYTIME + timedelta(hours=5)).event
    other_kind = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C02", source="hotline"),
                               now=DAYTIME).event
    later = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="hotline"),
                          now=DAYTIME + timedelta(hours=80)).event
    assert near["duplicate_of"] == first["id"] and near["state"] == "reported"  # waits for a person
    assert other_kind["duplicate_of"] is None and later["duplicate_of"] is None
    merged = events.act(divided_engine, near["id"], "merge", into=first["id"], actor="centre", role="centre_staff")
    assert merged["state"] == "merged"


def test_kpis_count_on_time_closure_over_due_less_suspended(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    start = DAYTIME - timedelta(days=1)
    ids = [events.intake(divided_engine, rules.EventIn(lon=lon + i * 0.001, lat=lat, category="C02",
                                                        source="hotline"), now=DAYTIME).event["id"]
           for i in range(4)]
    grids = {reading(divided_engine, events.get_event, i)["grid"] for i in ids}
    centre = {"actor": "c", "role": "centre_staff"}
    # due 72 working hours after dispatch (Friday 4 December); the figures are read on 7 December
    for i in ids[:2]:  # closed within the 72 h
        assignee = reading(divided_engine, events.get_event, i)["assignee"]["id"]
        events.act(divided_engine, i, "handle", actor="m", role="grid_member", actor_staff_id=assignee,
                   now=DAYTIME + timedelta(hours=10))
        for action in ("verify", "close"):
            events.act(divided_engine, i, action, actor="c", role="centre_staff", now=DAYTIME + timedelta(hours=10))
    events.act(divided_engine, ids[2], "suspend", now=DAYTIME + timedelta(hours=1), **centre)
    rows = reading(divided_engine, oversight.kpis, "street", start, DAYTIME + timedelta(days=20),
                       now=DAYTIME + timedelta(days=14))
    total = {k: sum(r[k] for r in rows) for k in ("due", "suspended", "closed_on_time", "closed", "open_overdue")}
    assert total == {"due": 4, "suspended": 1, "closed_on_time": 2, "closed": 2, "open_overdue": 1}
    if len(rows) == 1:
        assert rows[0]["on_time_closure_rate"] == round(2 / 3, 4)
        assert rows[0]["mean_handling_hours"] == 10.0
    # Austin 311's figure: closed on time ÷ (closed + open overdue) = 2 ÷ (2 + 1)
    closed_or_overdue = sum(r["closed"] + r["open_overdue"] for r in rows)
    on_time = sum(r["closed_on_time"] for r in rows)
    assert (on_time, closed_or_overdue) == (2, 3)
    if len(rows) == 1:
        assert rows[0]["on_time_rate_with_open_overdue"] == round(2 / 3, 4)
    # by source: every one of these came by the hotline
    by_source = reading(divided_engine, oversight.kpis, "source", start, DAYTIME + timedelta(days=20),
                        now=DAYTIME + timedelta(days=14))
    assert [(r["unit"], r["reported"], r["open_overdue"]) for r in by_source] == [("hotline", 4, 1)]
    assert client.get("/kpis", params={"by": "source", "start": start.isoformat(),
                                       "end": (DAYTIME + timedelta(days=20)).isoformat()}).json()["units"][0][
        "unit"] == "hotline"
    by_grid = client.get("/kpis", params={"by": "grid", "start": start.isoformat(),
                                          "end": (DAYTIME + timedelta(days=20)).isoformat()}).json()
    assert {u["unit"] for u in by_grid["units"]} == grids
    csv_text = client.get("/kpis", params={"by": "grid", "format": "csv", "start": start.isoformat(),
                                           "end": (DAYTIME + timedelta(days=20)).isoformat()}).text
    assert csv_text.startswith("unit,reported,dispatched,due") and len(csv_text.splitlines()) == 1 + len(grids)
    assert client.get("/kpis", params={"by": "planet"}).status_code == 422
    empty = client.get("/kpis", params={"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"})
    assert empty.status_code == 422 and "empty" in empty.text


def test_members_fetch_their_events(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    event = client.post("/events", json=report(lon, lat)).json()
    staff_id = event["assignee"]["id"]
    mine = client.get(f"/staff/{staff_id}/events", headers=staff_headers(client, divided_engine, staff_id)).json()
    assert [e["id"] for e in mine] == [event["id"]] and mine[0]["reporter_contact"] == "138 0000 0000"
    theirs = client.get(f"/staff/{staff_id}/events").json()  # the admin looks: no contacts
    assert [e["id"] for e in theirs] == [event["id"]] and "reporter_contact" not in theirs[0]
    assert client.get(f"/staff/{staff_id + 100000}/events").status_code == 404


def test_a_member_follows_new_assignments_as_a_stream(divided_url: str, divided_engine: Engine) -> None:
    import threading

    import httpx2 as httpx

    from maps.browser import serve_in_thread

    _, lon, lat = inner_point(divided_engine)
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        auth = http_headers(base)
        first = httpx.post(f"{base}/events", json=report(lon, lat), timeout=10, headers=auth).json()
        staff_id = first["assignee"]["id"]
        received: list[str] = []
        opened = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{base}/staff/{staff_id}/events/stream",
                              params={"limit": 1, "heartbeat": 0.2, "poll": 0.1}, timeout=20,
                              headers=auth) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    opened.set()
                    received.append(line)

        listener = threading.Thread(target=listen)
        listener.start()
        assert opened.wait(10)
        other = httpx.post(f"{base}/events", json=report(lon, lat, category="E03"), timeout=10,
                           headers=auth).json()
        listener.join(20)
    assert not listener.is_alive()
    assert "event: assigned" in received
    data = next(line for line in received if line.startswith("data: "))
    assert f'"id": {other["id"]}' in data and other["assignee"]["id"] == staff_id


def test_a_boundary_change_reassigns_open_events_with_history(client: TestClient, divided_engine: Engine) -> None:
    with divided_engine.connect() as conn:
        a, b, geom_a, geom_b = conn.execute(text("""
            SELECT a.code, b.code, ST_AsText(a.geom), ST_AsText(b.geom) FROM grids a JOIN grids b
              ON a.community_id = b.community_id AND a.code < b.code
            ORDER BY ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) DESC
            LIMIT 1""")).one()
    shape_a, shape_b = shapely.from_wkt(geom_a), shapely.from_wkt(geom_b)
    border = shape_a.boundary.intersection(shape_b.boundary)
    # a point inside A, ~10 m from the middle of the border; B then takes a 30 m strip of A along it
    middle = border.interpolate(0.5, normalized=True)
    point = shapely.ops.nearest_points(shape_a.buffer(-0.0001), middle)[0]
    strip = shape_a.intersection(border.buffer(0.0003))
    event = client.post("/events", json=report(point.x, point.y)).json()
    closed = client.post("/events", json=report(point.x, point.y, category="S01")).json()
    member = staff_headers(client, divided_engine, closed["assignee"]["id"])
    for action, who in (("handle", member), ("verify", client.headers), ("close", client.headers)):
        assert client.post(f"/events/{closed['id']}/{action}", json={}, headers=who).status_code == 200
    assert event["grid"] == a
    body = {"version": 1, "geometry": shapely.geometry.mapping(shape_b.union(strip)), "author": "planner",
            "reason": "the wall moved", "dry_run": True}
    preview = client.post(f"/grids/{b}/reshape", json=body)
    assert preview.status_code == 200, preview.text
    assert preview.json()["events"] == [{"event_id": event["id"], "from": a, "to": b}]  # the closed one stays
    assert client.get(f"/events/{event['id']}").json()["grid"] == a  # a dry run changes nothing
    saved = client.post(f"/grids/{b}/reshape", json={**body, "dry_run": False}).json()
    assert saved["events_reassigned"] == 1
    moved = client.get(f"/events/{event['id']}").json()
    assert moved["grid"] == b and moved["assignee"]["id"] != event["assignee"]["id"]
    last = client.get(f"/events/{event['id']}/history").json()[-1]
    assert last["action"] == "reassign" and last["data"]["from"] == a and last["data"]["to"] == b
    assert client.get(f"/events/{closed['id']}").json()["grid"] == a


def test_staff_added_through_the_api_take_the_reports_of_their_hours(client: TestClient,
                                                                    divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine, 2)
    night_shift = {"name": "夜班网格员 赵", "role": "grid_member", "grids": {code: "member"},
                   "roster": [{"grid": code, "weekday": d, "starts": "20:00", "ends": "23:59"} for d in range(7)]}
    created = client.post("/staff", json=night_shift)
    assert created.status_code == 201, created.text
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E06", source="hotline"),
                          now=NIGHT).event  # 23:00 Beijing time
    assert event["assignee"]["id"] == created.json()["id"] and "on duty" in event["assignment_rule"]
    bad = [
        ({**night_shift, "role": "astronaut"}, 422, "unknown role"),
        ({**night_shift, "grids": {"000000000000000": "member"}}, 404, "no grid"),
        ({**night_shift, "grids": {code: "chief"}}, 422, "has a chief already"),
        ({**night_shift, "roster": [{"grid": code, "weekday": 9, "starts": "08:00", "ends": "09:00"}]}, 422,
         "weekday"),
        ({**night_shift, "roster": [{"grid": code, "weekday": 1, "starts": "late", "ends": "09:00"}]}, 422, "HH:MM"),
    ]
    for body, status, message in bad:
        response = client.post("/staff", json=body)
        assert response.status_code == status and message in response.text, response.text


def test_merge_and_dispatch_targets_are_checked(client: TestClient, divided_engine: Engine) -> None:
    """A merge into, or a dispatch to, something outside the caller's jurisdiction or that does not exist is a
    404 (a staff id beyond what exists was a 500)."""
    _, lon, lat = inner_point(divided_engine)
    with divided_engine.connect() as conn:
        community = conn.execute(text("SELECT c.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                      "ORDER BY g.code LIMIT 1")).scalar_one()
        lon2, lat2 = conn.execute(text(
            "SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN admin_units c ON c.id = g.community_id WHERE c.code <> :c ORDER BY g.code LIMIT 1"),
            {"c": community}).one()
        elsewhere = conn.execute(text("SELECT sg.staff_id FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
                                      "JOIN admin_units c ON c.id = g.community_id WHERE c.code <> :c LIMIT 1"),
                                 {"c": community}).scalar_one()
    mine = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="hotline"),
                         auto_dispatch=False).event
    theirs = events.intake(divided_engine, rules.EventIn(lon=lon2, lat=lat2, category="E01", source="hotline")).event
    dispatcher = user_headers(client, divided_engine, "dispatcher", community)
    url = f"/events/{mine['id']}"
    assert client.post(f"{url}/merge", json={"into": theirs["id"]}, headers=dispatcher).status_code == 404
    assert client.post(f"{url}/merge", json={"into": 10**9}, headers=dispatcher).status_code == 404
    assert client.post(f"{url}/accept", json={}, headers=dispatcher).status_code == 200
    assert client.post(f"{url}/dispatch", json={"staff_id": 10**9}, headers=dispatcher).status_code == 404
    assert client.post(f"{url}/dispatch", json={"staff_id": elsewhere}, headers=dispatcher).status_code == 404
    assert client.get(url, headers=dispatcher).json()["state"] == "accepted"  # nothing changed


def test_a_database_outage_during_the_sign_in_check_is_a_503(client: TestClient, divided_engine: Engine) -> None:
    """The sign-in check of a report runs before the route, in the body guard (api/limits.py), outside the
    routes' error handlers: with the database gone it must still say 503 "retry", never 500 (the durability run
    of 2026-12-04 met 1,793 such 500s while PostgreSQL restarted)."""
    from gis.db.engine import make_engine

    _, lon, lat = inner_point(divided_engine)
    tokens = client.app.state.tokens  # type: ignore[attr-defined]
    working = tokens.engine
    tokens._cache.clear()  # the user is looked up again, as after USER_TTL_S
    tokens.engine = make_engine("postgresql+psycopg2://gridpatrol@/nowhere?host=/nonexistent-socket-dir")
    try:
        lost = client.post("/events", json=report(lon, lat))
    finally:
        tokens.engine.dispose()
        tokens.engine = working
    assert lost.status_code == 503 and "retry" in lost.json()["detail"] and lost.headers["retry-after"] == "1"
    assert client.post("/events", json=report(lon, lat)).status_code == 201


def test_a_department_returns_a_case_and_the_centre_decides(client: TestClient, divided_engine: Engine) -> None:
    """退单 and 审定: the department sends a case back with a reason; the centre overrules (back to the department)
    or dispatches it anew; each step is in the history, a return without a reason or an overrule of a case not
    returned is refused and changes nothing; the KPIs count returns and the cases that bounced."""
    from tests.conftest import user_headers

    _, lon, lat = inner_point(divided_engine)
    water = user_headers(client, divided_engine, "department", "beijing", department="water")
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    start = datetime.now(UTC) - timedelta(hours=1)
    case = client.post("/events", json=report(lon, lat, category="C05"), headers=centre).json()
    assert (case["state"], case["department"]) == ("dispatched", "water")
    url = f"/events/{case['id']}"

    refused = client.post(f"{url}/return", json={"note": "not ours"}, headers=water)
    assert refused.status_code == 422 and "a return names its reason" in refused.json()["detail"]
    assert client.get(url, headers=centre).json()["state"] == "dispatched"
    assert client.post(f"{url}/overrule", json={}, headers=centre).status_code == 409  # not accepted, not returned
    back = client.post(f"{url}/return", json={"reason": "not_our_duty", "note": "管网属市政"}, headers=water)
    assert back.status_code == 200, back.text
    assert back.json()["state"] == "accepted"
    again = client.post(f"{url}/overrule", json={"note": "供水管网属水务"}, headers=centre)
    assert again.status_code == 200 and again.json()["state"] == "dispatched"
    assert again.json()["department"] == "water"
    twice = client.post(f"{url}/overrule", json={}, headers=centre)
    assert twice.status_code == 409  # dispatched: there is nothing to overrule
    assert client.post(f"{url}/return", json={"reason": "overlapping_duties"}, headers=water).status_code == 200
    not_returned = client.post(f"{url}/accept", json={}, headers=centre)
    assert not_returned.status_code == 409
    with divided_engine.connect() as conn:
        member = conn.execute(text("SELECT id FROM staff WHERE role = 'grid_member' ORDER BY id LIMIT 1")).scalar()
    redispatched = client.post(f"{url}/dispatch", json={"staff_id": member}, headers=centre)
    assert redispatched.status_code == 200, redispatched.text
    history = client.get(f"{url}/history", headers=centre).json()
    steps = [(h["action"], (h["data"] or {}).get("reason") or (h["data"] or {}).get("decision")) for h in history]
    assert steps[-4:] == [("return", "not_our_duty"), ("overrule", "overruled"), ("return", "overlapping_duties"),
                          ("dispatch", "redispatched")]
    figures = client.get("/kpis", params={"by": "department", "start": start.isoformat()}, headers=centre).json()
    water_row = next(u for u in figures["units"] if u["unit"] == "water")
    assert (water_row["returns"], water_row["bounced"]) == (2, 1)


def test_a_hung_case_stops_its_clock_and_is_counted_apart(client: TestClient, divided_engine: Engine) -> None:
    """挂账: parked with a reason and a review date; refused without either, changing nothing; the KPIs count it
    apart and leave it out of the on-time denominator; taken up again, its deadline moves by the time it hung."""
    from tests.conftest import user_headers

    _, lon, lat = inner_point(divided_engine)
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    start = datetime.now(UTC) - timedelta(hours=1)
    case = client.post("/events", json=report(lon, lat), headers=centre).json()
    url = f"/events/{case['id']}"
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    no_reason = client.post(f"{url}/hang", json={"review_on": tomorrow}, headers=centre)
    assert no_reason.status_code == 422 and "names why" in no_reason.json()["detail"]
    past = client.post(f"{url}/hang", json={"note": "需立项", "review_on": "2020-01-01"}, headers=centre)
    assert past.status_code == 422 and "after today" in past.json()["detail"]
    assert client.get(url, headers=centre).json()["state"] == "dispatched"
    hung = client.post(f"{url}/hang", json={"note": "需立项改造管网 needs a project", "review_on": tomorrow},
                       headers=centre)
    assert hung.status_code == 200 and hung.json()["state"] == "hung"
    history = client.get(f"{url}/history", headers=centre).json()
    assert history[-1]["data"]["review_on"] == tomorrow and "needs a project" in history[-1]["note"]
    end = datetime.now(UTC) + timedelta(days=10)
    rows = client.get("/kpis", params={"by": "street", "start": start.isoformat(), "end": end.isoformat()},
                      headers=centre).json()["units"]
    assert sum(r["hung"] for r in rows) == 1
    counts = client.get("/events/counts", headers=centre).json()
    assert counts["hung"] == 1
    assert client.post(f"{url}/close", json={}, headers=centre).status_code == 409
    taken_up = client.post(f"{url}/unhang", json={"note": "funds granted"}, headers=centre).json()
    assert taken_up["state"] == "dispatched"
    assert datetime.fromisoformat(taken_up["due_at"]) >= datetime.fromisoformat(case["due_at"])
