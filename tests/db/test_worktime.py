"""Deadlines in working time in the database: the SQL rule (gis/dispatch/sql/worktime.sql) agrees with the Python
reference (gis.dispatch.worktime) over China's holidays, a city's own days off, and the API that keeps them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import reading
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.dispatch.store.calendar import work_calendar
from tests.conftest import admin, user_headers
from tests.db.test_events import inner_point


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def city(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT u.id, s.key FROM admin_units u JOIN city_settings s ON s.city_id = u.id "
                                "WHERE u.level = 'city' ORDER BY u.id LIMIT 1")).one()
    return int(row[0]), str(row[1])


def test_the_database_counts_working_time_as_the_python_reference_does(divided_engine: Engine) -> None:
    city_id, _ = city(divided_engine)
    rng = random.Random(7)
    base = datetime(2025, 12, 20, tzinfo=UTC)
    cases = [(base + timedelta(minutes=rng.randrange(0, 60 * 24 * 420)), rng.choice([0.5, 1, 2, 7.5, 24, 72, 168]))
             for _ in range(300)]
    with divided_engine.connect() as conn:
        reference = work_calendar(conn, city_id)
        for start, hours in cases:
            due, back = conn.execute(text(
                "SELECT d, gridpatrol_working_hours(:c, :s, d, false) FROM "
                "(SELECT gridpatrol_deadline(:c, :s, :h, false) AS d) x"), {"c": city_id, "s": start, "h": hours}).one()
            assert due == reference.deadline(start, hours), (start, hours)
            assert back == pytest.approx(hours, abs=1e-6)  # the working hours from the start to it: what was asked
            assert reference.hours_between(start, due) == pytest.approx(hours, abs=1e-6)
        # on the clock: the wall
        start = datetime(2026, 10, 1, 3, tzinfo=UTC)
        assert conn.execute(text("SELECT gridpatrol_deadline(:c, :s, 5, true)"), {"c": city_id, "s": start}
                            ).scalar_one() == start + timedelta(hours=5)


def test_a_report_before_national_day_is_due_after_it_and_urgent_ones_on_the_clock(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    eve = datetime(2026, 9, 30, 8, 30, tzinfo=UTC)  # Wednesday 30 September, 16:30 in Beijing
    case = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C02", source="hotline",
                                                        priority="high"), now=eve).event  # 24 working hours
    # an hour that day; the holiday week (1–7 October) counts nothing; 8 and 9 October; Saturday 10 October is a
    # make-up working day (调休): 1 + 3 × 7.5 = 23.5 hours, the last half hour on Monday 12 October (09:00 in Beijing)
    assert datetime.fromisoformat(case["due_at"]) == datetime(2026, 10, 12, 1, 0, tzinfo=UTC)
    assert datetime.fromisoformat(case["accept_due_at"]) == datetime(2026, 9, 30, 9, 30, tzinfo=UTC)
    _, lon, lat = inner_point(divided_engine, 1)  # elsewhere: not a possible duplicate of the first
    urgent = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C02", source="hotline",
                                                          priority="urgent"), now=eve).event
    assert datetime.fromisoformat(urgent["due_at"]) == eve + timedelta(hours=4)  # C02 urgent: 4 h on the clock
    hazard = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E05", source="hotline"),
                           now=eve).event  # a safety hazard: a wall-clock category
    assert datetime.fromisoformat(hazard["due_at"]) == eve + timedelta(hours=48)


def test_the_stage_clocks_say_which_stage_was_late(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    monday = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
    case = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="C02", source="hotline"),
                         auto_dispatch=False, now=monday).event
    assert case["state"] == "reported" and case["accepted_at"] is None
    centre = {"actor": "centre", "role": "centre_staff"}
    accepted = events.act(divided_engine, case["id"], "accept", now=monday + timedelta(hours=2), **centre)
    assert accepted["accept_late"] is True  # two hours for a one-hour stage
    assert datetime.fromisoformat(accepted["dispatch_due_at"]) == monday + timedelta(hours=3)
    dispatched = events.act(divided_engine, case["id"], "dispatch", now=monday + timedelta(hours=2, minutes=30),
                            **centre)
    assert dispatched["dispatch_late"] is False
    with divided_engine.connect() as conn:
        rows = conn.execute(text("SELECT action FROM event_transitions WHERE event_id = :e ORDER BY id"),
                            {"e": case["id"]}).scalars().all()
    assert rows == ["report", "accept", "dispatch"]
    from gis.oversight.store import kpis as oversight
    figures = reading(divided_engine, oversight.kpis, "source", monday - timedelta(days=1),
                      monday + timedelta(days=1), now=monday + timedelta(hours=3))
    assert [(r["unit"], r["late_accept"], r["late_dispatch"]) for r in figures] == [("hotline", 1, 0)]


def test_a_city_keeps_its_own_days_off_but_never_in_the_past(client: TestClient, divided_engine: Engine) -> None:
    city_id, key = city(divided_engine)
    year = datetime.now(UTC).year + 1
    day = date(year, 3, 17)  # a Tuesday or whatever weekday: the city's own day off
    made = client.post(f"/cities/{key}/calendar/days", json={"day": day.isoformat(), "name": "城市纪念日 city day"})
    assert made.status_code == 201, made.text
    listed = client.get(f"/cities/{key}/calendar", params={"year": year}).json()
    assert {"day": day.isoformat(), "working": False, "name": "城市纪念日 city day", "own": True} .items() <= next(
        d for d in listed["days"] if d["day"] == day.isoformat()).items()
    assert listed["working_hours"] == ["08:30-12:00", "13:30-17:30"] and listed["national_calendar"] is True
    with divided_engine.connect() as conn:
        assert work_calendar(conn, city_id).working(day) is False
    # the past, today, no name: 422, nothing stored
    before = client.get(f"/cities/{key}/calendar", params={"year": 2025}).json()["days"]
    for body in ({"day": "2025-05-06", "name": "past"}, {"day": datetime.now(UTC).date().isoformat(), "name": "x"},
                 {"day": day.isoformat(), "name": ""}):
        refused = client.post(f"/cities/{key}/calendar/days", json=body)
        assert refused.status_code == 422 and refused.json()["detail"], body
    assert client.get(f"/cities/{key}/calendar", params={"year": 2025}).json()["days"] == before
    assert "not after today" in client.post(f"/cities/{key}/calendar/days",
                                            json={"day": "2025-05-06", "name": "past"}).json()["detail"]
    # only an admin changes it; anyone of the city reads it
    dispatcher = user_headers(client, divided_engine, "dispatcher", key)
    assert client.post(f"/cities/{key}/calendar/days", json={"day": day.isoformat(), "name": "x"},
                       headers=dispatcher).status_code == 403
    assert client.get(f"/cities/{key}/calendar", headers=dispatcher).status_code == 200
    assert client.put(f"/cities/{key}/calendar/hours", json={"hours": "12:00-08:00"}).status_code == 422
    assert client.put(f"/cities/{key}/calendar/hours", json={"hours": "09:00-17:00"}).json()["working_hours"] == [
        "09:00-17:00"]
    assert client.delete(f"/cities/{key}/calendar/days/{day.isoformat()}").status_code == 204
    assert client.delete(f"/cities/{key}/calendar/days/{day.isoformat()}").status_code == 404


def test_a_historic_file_gets_the_same_deadlines_as_single_reports(divided_engine: Engine) -> None:
    """Bulk intake lays the working periods out as a table (two lookups a row, not the rule called row by row):
    every deadline it stores is the rule's, over weekends, National Day and its make-up Saturday, for each
    priority and for wall-clock categories."""
    from gis.dispatch.store.bulk import bulk_intake, read_events_file

    _, lon, lat = inner_point(divided_engine)
    rng = random.Random(3)
    lines = ["category,lon,lat,priority,reported_at,closed_at"]
    for i in range(400):
        at = datetime(2026, 9, 20, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        category = rng.choice(["C01", "C02", "E01", "E05", "S01"])
        closed = (at + timedelta(hours=rng.randrange(1, 200))).isoformat() if i % 2 else ""
        lines.append(f"{category},{lon + rng.random() * 1e-4},{lat},{rng.choice(['urgent', 'high', 'normal'])},"
                     f"{at.isoformat()},{closed}")
    report = bulk_intake(divided_engine, read_events_file("\n".join(lines).encode(), "history.csv"))
    assert report.stored == 400
    with divided_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT e.due_at, gridpatrol_deadline(e.city_id, e.reported_at, CASE e.priority WHEN 'urgent'
                       THEN c.hours_urgent WHEN 'high' THEN c.hours_high ELSE c.hours_normal END,
                       e.priority = 'urgent' OR c.clock = 'wall'), e.closed_at, e.closed_on_time
            FROM events e JOIN categories c ON c.code = e.category_code WHERE e.import_id IS NOT NULL""")).all()
    assert len(rows) == 400
    assert max(abs((due - rule).total_seconds()) for due, rule, _, _ in rows) < 1e-3
    assert all(on_time == (closed <= due) for due, _, closed, on_time in rows if closed is not None)
    assert any(due.date() == date(2026, 10, 10) for due, *_ in rows)  # the make-up Saturday counts
