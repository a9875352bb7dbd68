"""What the member page needs from the API: photos, idempotent visits, volunteer tasks — and their bad cases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.dispatch import rules
from gis.member.photos import MAX_PHOTO_BYTES
from tests.conftest import admin, staff_headers, user_headers

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def _member(client: TestClient, engine: Engine, rank: int = 0) -> tuple[str, dict[str, str]]:
    with engine.connect() as conn:
        code, staff = conn.execute(text("SELECT g.code, sg.staff_id FROM grids g JOIN staff_grids sg ON sg.grid_id "
                                        "= g.id AND sg.duty = 'member' ORDER BY g.code OFFSET :r LIMIT 1"),
                                   {"r": rank}).one()
    return code, staff_headers(client, engine, staff)


def test_photos_are_kept_once_and_only_pictures(client: TestClient) -> None:
    first = client.post("/photos", content=PNG, headers={"content-type": "image/png"})
    assert first.status_code == 201 and first.json()["content_type"] == "image/png"
    again = client.post("/photos", content=PNG)
    assert again.json()["key"] == first.json()["key"]  # the same picture: the same key, stored once
    shown = client.get(f"/photos/{first.json()['key']}")
    assert shown.status_code == 200 and shown.content == PNG and shown.headers["content-type"] == "image/png"
    text_file = client.post("/photos", content=b"hello", headers={"content-type": "image/png"})
    assert text_file.status_code == 422 and "not a photo" in text_file.json()["detail"]
    huge = client.post("/photos", content=PNG + b"\x00" * MAX_PHOTO_BYTES)
    assert huge.status_code == 413 and "5 MB" in huge.json()["detail"]
    assert client.post("/photos", content=b"").status_code == 422
    assert client.get("/photos/photo:nothing").status_code == 404


def test_a_visit_sent_twice_is_stored_once(client: TestClient, divided_engine: Engine) -> None:
    code, member = _member(client, divided_engine)
    with divided_engine.connect() as conn:
        building = conn.execute(text("SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.code = :c "
                                     "LIMIT 1"), {"c": code}).scalar_one()
    now = datetime.now(UTC)
    body = {"kind": "inspection", "started_at": (now - timedelta(minutes=5)).isoformat(), "ended_at": now.isoformat(),
            "buildings": [building], "idempotency_key": "phone-1",
            "position": {"type": "Point", "coordinates": [116.3446, 40.0071]}}
    first = client.post(f"/grids/{code}/visits", json=body, headers=member)
    assert first.status_code == 201, first.text
    assert first.json()["position"] == body["position"]  # where the member logged it
    again = client.post(f"/grids/{code}/visits", json=body, headers=member)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["replayed"]
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patrol_visits")).scalar() == 1
    other_code, _ = _member(client, divided_engine, 1)
    misused = client.post(f"/grids/{other_code}/visits", json=body)  # the admin, same key, another grid
    assert misused.status_code == 409


def test_volunteer_tasks_posted_taken_closed(client: TestClient, divided_engine: Engine) -> None:
    code, member = _member(client, divided_engine)
    other_code, other = _member(client, divided_engine, 1)
    dispatcher = user_headers(client, divided_engine, "dispatcher", code[:12])
    posted = client.post(f"/grids/{code}/tasks", json={"title": "帮独居老人买药", "description": "3 号楼 2 单元"},
                         headers=dispatcher)
    assert posted.status_code == 201 and posted.json()["state"] == "open"
    task = posted.json()["id"]
    assert client.post(f"/grids/{code}/tasks", json={"title": "x"}, headers=member).status_code == 403
    assert [t["id"] for t in client.get(f"/grids/{code}/tasks", headers=member).json()] == [task]
    assert client.post(f"/tasks/{task}/take", headers=other).status_code in (403, 404)  # not their grid
    taken = client.post(f"/tasks/{task}/take", headers=member)
    assert taken.status_code == 200 and taken.json()["taken_by"].startswith("grid_member-")
    assert client.post(f"/tasks/{task}/take", headers=member).status_code == 409  # taken already
    assert client.post(f"/tasks/{task}/close", json={}).status_code == 409  # only who took it closes it
    closed = client.post(f"/tasks/{task}/close", json={"note": "送到了"}, headers=member)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert client.post("/tasks/999999/take", headers=member).status_code == 404
    assert client.post(f"/grids/{code}/tasks", json={"title": ""}, headers=dispatcher).status_code == 422
    assert other_code != code


def test_me_lists_the_members_grids(client: TestClient, divided_engine: Engine) -> None:
    code, member = _member(client, divided_engine)
    me = client.get("/me", headers=member).json()
    assert me["grids"][0] == {"code": code, "duty": "member"} and me["role"] == "grid_member"


def test_a_member_receives_and_handles_with_a_photo(client: TestClient, divided_engine: Engine) -> None:
    from gis.dispatch.store import events

    code, member = _member(client, divided_engine)
    with divided_engine.connect() as conn:
        staff, lon, lat = conn.execute(text(
            "SELECT sg.staff_id, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN staff_grids sg ON sg.grid_id = g.id AND sg.duty = 'member' WHERE g.code = :c"), {"c": code}).one()
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="hotline"),
                          now=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)).event  # 10:00 Beijing: the member's
    assert event["assignee"]["id"] == staff
    url = f"/events/{event['id']}"
    got = client.post(f"{url}/receive", json={}, headers=member)
    assert got.status_code == 200 and got.json()["state"] == "dispatched"  # 签收 changes no state
    photo = client.post("/photos", content=PNG, headers=member).json()["key"]
    done = client.post(f"{url}/handle", json={"note": "已清理", "photos": [photo]}, headers=member)
    assert done.status_code == 200 and done.json()["state"] == "handled"
    last = client.get(f"{url}/history", headers=member).json()[-1]
    assert last["action"] == "handle" and last["data"]["photos"] == [photo]
    too_many = client.post(f"{url}/verify", json={"photos": ["x"] * 21}, headers=member)
    assert too_many.status_code == 422


def test_a_photo_goes_only_to_those_who_may_see_its_event(client: TestClient, divided_engine: Engine) -> None:
    """Issue 18, item 8: any signed-in user could fetch any photo by its key."""
    from gis.dispatch.store import events
    from tests.conftest import user_headers

    code, member = _member(client, divided_engine)
    with divided_engine.connect() as conn:
        mine, theirs, lon, lat = conn.execute(text(
            "SELECT c.code, (SELECT code FROM admin_units WHERE level = 'community' AND code <> c.code "
            "ORDER BY code LIMIT 1), ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
            "FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE g.code = :g"), {"g": code}).one()
    key = client.post("/photos", content=PNG + b"event", headers=member).json()["key"]
    inside = user_headers(client, divided_engine, "dispatcher", mine)
    outside = user_headers(client, divided_engine, "dispatcher", theirs)
    assert client.get(f"/photos/{key}", headers=member).status_code == 200  # its uploader
    assert client.get(f"/photos/{key}", headers=inside).status_code == 404  # shown by no event yet
    event = events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E01", source="grid_member",
                                                        photos=[key]),
                          now=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)).event  # 10:00 Beijing: the member's
    assert client.get(f"/photos/{key}", headers=inside).status_code == 200
    assert client.get(f"/photos/{key}", headers=outside).status_code == 404  # the same as no photo at all
    feedback = client.post("/photos", content=PNG + b"feedback", headers=member).json()["key"]
    handled = client.post(f"/events/{event['id']}/handle", json={"note": "done", "photos": [feedback]},
                          headers=member)
    assert handled.status_code == 200, handled.text
    assert client.get(f"/photos/{feedback}", headers=inside).status_code == 200  # a step's feedback: the same rule
    assert client.get(f"/photos/{feedback}", headers=outside).status_code == 404
