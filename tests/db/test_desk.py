"""The console's loop beyond the single steps: dispatch to a department with assisting ones (主办/协办),
supervision (督办), a step over a selection (previewed, then all or none), response templates, and a case's
surroundings for the map; and the bad input each refuses with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from tests.conftest import admin, user_headers
from tests.db.test_events import inner_point, report


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def transitions(engine: Engine, event_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT action FROM event_transitions WHERE event_id = :e ORDER BY id"),
                                 {"e": event_id}).scalars())


def streets(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT DISTINCT s.code FROM grids g JOIN admin_units c ON c.id = "
                                      "g.community_id JOIN admin_units s ON s.id = c.parent_id ORDER BY 1")).scalars())


def test_a_lead_department_with_assisting_ones(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    housing = user_headers(client, divided_engine, "department", "beijing", department="housing")
    water = user_headers(client, divided_engine, "department", "beijing", department="water")
    police = user_headers(client, divided_engine, "department", "beijing", department="police")
    case = client.post("/events", json=report(lon, lat, category="E04"), headers=centre).json()  # 违法建设
    url = f"/events/{case['id']}"
    assert client.get(url, headers=housing).status_code == 404  # not yet its case
    assert client.post(f"{url}/return", json={"reason": "not_our_duty"}, headers=centre).status_code == 403
    # the grid member has it and sends it back (退单: not a grid matter); the centre dispatches it to housing, with
    # water assisting. (The synthetic member has no account: their return is taken in the store.)
    from gis.db.engine import writing
    from gis.dispatch.store.events import take_step
    writing(divided_engine, take_step, case["id"], "return", actor="member", role="grid_member",
            actor_staff_id=case["assignee"]["id"], reason="not_our_duty")
    bad = client.post(f"{url}/dispatch", json={"department": "housing", "assisting": ["housing"]}, headers=centre)
    assert bad.status_code == 422 and "cannot also assist" in bad.json()["detail"]
    unknown = client.post(f"{url}/dispatch", json={"department": "nasa"}, headers=centre)
    assert unknown.status_code == 422 and "no department 'nasa'" in unknown.json()["detail"]
    assert client.get(url, headers=centre).json()["state"] == "accepted"  # nothing changed
    sent = client.post(f"{url}/dispatch", json={"department": "housing", "assisting": ["water"]}, headers=centre)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["department"], sent.json()["assisting"], sent.json()["assignee"]) == ("housing", ["water"],
                                                                                               None)
    # the lead and the assisting department see it; another does not
    assert client.get(url, headers=housing).status_code == 200 and client.get(url, headers=water).status_code == 200
    assert client.get(url, headers=police).status_code == 404
    assert case["id"] in [e["id"] for e in client.get("/events", headers=water).json()]
    assert case["id"] not in [e["id"] for e in client.get("/events", headers=police).json()]
    # the assisting department reports its part; it may not handle for the lead
    assert client.post(f"{url}/handle", json={"note": "x"}, headers=water).status_code == 403
    assert client.post(f"{url}/assist", json={}, headers=water).status_code == 422
    assert client.post(f"{url}/assist", json={"note": "x"}, headers=housing).status_code == 403  # the lead leads
    helped = client.post(f"{url}/assist", json={"note": "供水管线已迁改 water main moved"}, headers=water)
    assert helped.status_code == 200 and helped.json()["state"] == "dispatched"
    assert client.post(f"{url}/receive", json={}, headers=housing).status_code == 200
    assert client.post(f"{url}/handle", json={"note": "已拆除 demolished"}, headers=housing).json()["state"] == \
        "handled"
    assert transitions(divided_engine, case["id"])[-5:] == ["return", "dispatch", "assist", "receive", "handle"]
    history = client.get(f"{url}/history", headers=centre).json()
    assert next(h for h in history if h["action"] == "assist")["data"]["department"] == "water"
    assert next(h for h in history if h["action"] == "dispatch" and h["data"])["data"]["assisting"] == ["water"]


def test_supervision_flags_a_case_and_counts_in_the_figures(client: TestClient, divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    leader = user_headers(client, divided_engine, "leader", "beijing")
    start = datetime.now(UTC) - timedelta(hours=1)
    case = client.post("/events", json=report(lon, lat), headers=centre).json()
    url = f"/events/{case['id']}"
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    street = streets(divided_engine)[0]
    for body, word in (({"due": due, "unit": street}, "what is wanted"),
                       ({"note": "x", "unit": street}, "new deadline"),
                       ({"note": "x", "due": "2020-01-01T00:00:00Z", "unit": street}, "new deadline"),
                       ({"note": "x", "due": due, "unit": "999999999"}, "no unit")):
        refused = client.post(f"{url}/supervise", json=body, headers=leader)
        assert refused.status_code == 422 and word in refused.json()["detail"], (body, refused.text)
    assert client.get(url, headers=centre).json()["supervision"] is None
    done = client.post(f"{url}/supervise", json={"note": "群众反映强烈，限期办结", "due": due, "unit": street},
                       headers=leader)
    assert done.status_code == 200, done.text
    flagged = done.json()["supervision"]
    assert flagged["unit"] == street and flagged["note"].startswith("群众") and done.json()["state"] == "dispatched"
    listed = client.get("/events", params={"supervised": "true"}, headers=centre).json()
    assert [e["id"] for e in listed] == [case["id"]] and listed[0]["supervision"]["unit"] == street
    assert client.get("/events/counts", headers=centre).json()["supervised"] == 1
    # handled and closed before the supervision's deadline: counted as supervised and closed on time
    from gis.db.engine import writing
    from gis.dispatch.store.events import take_step
    writing(divided_engine, take_step, case["id"], "handle", actor="member", role="grid_member",
            actor_staff_id=case["assignee"]["id"])  # the synthetic member has no account: handled in the store
    for action in ("verify", "close"):
        assert client.post(f"{url}/{action}", json={"evaluation": 5} if action == "close" else {},
                           headers=centre).status_code == 200, action
    closed = client.post(f"{url}/supervise", json={"note": "x", "due": due, "unit": street}, headers=leader)
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]
    end = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    rows = client.get("/kpis", params={"by": "street", "start": start.isoformat(), "end": end},
                      headers=centre).json()["units"]
    assert sum(r["supervised"] for r in rows) == 1 and sum(r["supervised_on_time"] for r in rows) == 1
    # a leader supervises; a leader takes no other step
    other = client.post("/events", json=report(lon + 0.0005, lat, category="E01"), headers=centre).json()
    assert client.post(f"/events/{other['id']}/suspend", json={}, headers=leader).status_code == 403


def communities(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT DISTINCT c.code FROM grids g JOIN admin_units c ON c.id = "
                                      "g.community_id ORDER BY 1")).scalars())


def test_a_selection_is_previewed_then_taken_all_or_none(client: TestClient, divided_engine: Engine) -> None:
    codes = communities(divided_engine)  # a community centre's selection, and a neighbour's cases
    assert len(codes) >= 2
    mine = user_headers(client, divided_engine, "dispatcher", codes[0])
    ids: dict[str, list[int]] = {}
    from gis.dispatch import rules
    from gis.dispatch.store.events import intake
    with divided_engine.connect() as conn:
        for code in codes[:2]:
            rows = conn.execute(text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) p, g.code FROM grids g "
                "WHERE g.code LIKE :c ORDER BY g.code LIMIT 3) s"), {"c": code + "%"}).all()
            # reports waiting for the centre (a city that accepts by hand: no auto-dispatch)
            ids[code] = [intake(divided_engine, rules.EventIn(lon=x, lat=y, category="E03", source="hotline"),
                                auto_dispatch=False).event["id"] for x, y in rows]
    own = ids[codes[0]]
    preview = client.post("/events/selection", json={"ids": own, "action": "accept"}, headers=mine)
    assert preview.status_code == 200, preview.text
    assert preview.json()["confirmed"] is False and preview.json()["possible"] == len(own)
    assert {client.get(f"/events/{i}", headers=mine).json()["state"] for i in own} == {"reported"}  # nothing yet
    # a selection reaching into another street's cases: refused, naming them, nothing done
    foreign = client.post("/events/selection", json={"ids": own + ids[codes[1]][:1], "action": "accept",
                                                     "confirm": True}, headers=mine)
    assert foreign.status_code == 422 and str(ids[codes[1]][0]) in foreign.json()["detail"]
    assert {client.get(f"/events/{i}", headers=mine).json()["state"] for i in own} == {"reported"}
    # one case that cannot take the step: none does
    client.post(f"/events/{own[0]}/accept", json={}, headers=mine)
    some = client.post("/events/selection", json={"ids": own, "action": "accept", "confirm": True}, headers=mine)
    assert some.status_code == 409 and f"#{own[0]}" in some.json()["detail"]
    assert [client.get(f"/events/{i}", headers=mine).json()["state"] for i in own[1:]] == ["reported"] * (len(own) - 1)
    taken = client.post("/events/selection", json={"ids": own[1:], "action": "accept", "confirm": True},
                        headers=mine)
    assert taken.status_code == 200 and taken.json()["possible"] == len(own) - 1
    assert {client.get(f"/events/{i}", headers=mine).json()["state"] for i in own} == {"accepted"}
    with divided_engine.connect() as conn:
        person = conn.execute(text("SELECT sg.staff_id FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
                                   "WHERE g.code LIKE :c AND sg.duty = 'member' LIMIT 1"),
                              {"c": codes[0] + "%"}).scalar()
    sent = client.post("/events/selection", json={"ids": own, "action": "dispatch", "staff_id": person,
                                                  "confirm": True}, headers=mine)
    assert sent.status_code == 200, sent.text
    assert {(c["state"], c["ok"]) for c in sent.json()["cases"]} == {("dispatched", True)}
    assert all(transitions(divided_engine, i)[-1] == "dispatch" for i in own)
    assert client.post("/events/selection", json={"ids": own, "action": "escalate"}, headers=mine).status_code == 422


def test_templates_are_read_at_the_desk_and_edited_by_an_admin(client: TestClient, divided_engine: Engine) -> None:
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    rejects = client.get("/templates", params={"step": "reject"}, headers=centre).json()
    assert len(rejects) >= 3 and all(t["step"] == "reject" for t in rejects)
    assert client.post("/templates", json={"step": "reject", "body": "x"}, headers=centre).status_code == 403
    made = client.post("/templates", json={"step": "reject", "body": "<b>井盖</b>已由产权单位处理", "category": "C01"})
    assert made.status_code == 201 and made.json()["category"] == "C01"
    assert made.json()["id"] in [t["id"] for t in client.get("/templates", params={
        "step": "reject", "category": "C01"}, headers=centre).json()]
    assert made.json()["id"] not in [t["id"] for t in client.get("/templates", params={
        "step": "reject", "category": "E01"}, headers=centre).json()]
    for body in ({"step": "fly", "body": "x"}, {"step": "reject", "body": " "},
                 {"step": "reject", "body": "x", "category": "Z99"}):
        assert client.post("/templates", json=body).status_code == 422, body
    changed = client.put(f"/templates/{made.json()['id']}", json={"step": "close", "body": "已处理"})
    assert changed.status_code == 200 and changed.json()["step"] == "close" and changed.json()["category"] is None
    assert client.delete(f"/templates/{made.json()['id']}").status_code == 204
    assert client.delete(f"/templates/{made.json()['id']}").status_code == 404


def test_a_case_on_its_map(client: TestClient, divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine)
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    first = client.post("/events", json=report(lon, lat), headers=centre).json()
    near = client.post("/events", json=report(lon + 0.0002, lat), headers=centre).json()  # a possible duplicate
    other: dict[str, Any] = client.post("/events", json=report(lon + 0.0004, lat, category="E01"),
                                        headers=centre).json()
    around = client.get(f"/events/{near['id']}/surroundings", headers=centre)
    assert around.status_code == 200, around.text
    body = around.json()
    assert body["grid"]["properties"]["code"] == code and body["grid"]["geometry"]["type"] == "MultiPolygon"
    assert [e["id"] for e in body["nearby"]][:2] == [first["id"], other["id"]]  # the same category first
    assert 0 < body["nearby"][0]["distance_m"] < 50
    assert {first["id"], other["id"]} <= {e["id"] for e in body["recent"]}
    assert "reporter_contact" not in str(body)
    assert client.get("/events/999999/surroundings", headers=centre).status_code == 404
