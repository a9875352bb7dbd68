"""The centre's console in headless Chromium: a new report appears in the live queue by itself, and the centre
accepts and dispatches it with one key each; the counts and the scope follow the user's jurisdiction."""

from __future__ import annotations

import time

import httpx2 as httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from maps.browser import local_page, serve_in_thread, wait_for
from tests.conftest import PASSWORD, ROOT, http_token
from tests.db.test_events import inner_point, report


def state_of(engine: Engine, event_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT state FROM events WHERE id = :i"), {"i": event_id}).scalar_one())


def test_a_report_reaches_the_console_and_goes_round_the_first_steps(divided_engine: Engine,
                                                                     divided_url: str) -> None:
    code, lon, lat = inner_point(divided_engine)
    with divided_engine.connect() as conn:
        street = conn.execute(text("SELECT left(:g, 9)"), {"g": code}).scalar_one()
    writing(divided_engine, create_user, "centre", PASSWORD, "dispatcher", unit=street, display_name="街道中心 centre")
    settings = Settings(database_url=divided_url, auto_dispatch=False)
    with serve_in_thread(create_app(settings)) as base, \
            local_page(width=1400, height=900, token=http_token(base, "centre")) as tab:
        page = tab.page
        page.goto(f"{base}/console", wait_until="networkidle")
        wait_for(page, "document.querySelector('#live').className === 'on'", timeout=10000)
        assert "centre" in page.inner_text("#who")
        token = http_token(base, "centre")
        sent = time.monotonic()
        answer = httpx.post(f"{base}/events", json=report(lon, lat), timeout=10,
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.text
        event_id = answer.json()["id"]
        wait_for(page, f"document.querySelector('#queue tr[data-id=\"{event_id}\"]') !== null", timeout=5000)
        arrived = time.monotonic() - sent
        assert arrived < 2.0, f"the report took {arrived:.2f} s to reach the console"
        assert "待受理" in page.inner_text(f'#queue tr[data-id="{event_id}"]')
        page.click(f'#queue tr[data-id="{event_id}"]')
        wait_for(page, f"(document.querySelector('#case h2') || {{innerText: ''}}).innerText.includes('#{event_id}')",
                 timeout=5000)
        assert "138 0000 0000" in page.inner_text("#case")  # the centre handles it: it sees the contact, audited
        page.keyboard.press("a")  # 立案
        wait_for(page, "document.querySelector('#case .ok') !== null", timeout=5000)
        assert state_of(divided_engine, event_id) == "accepted"
        page.keyboard.press("d")  # 派遣 to the placed person
        wait_for(page, "document.querySelector('#case').innerText.includes('已派遣')", timeout=5000)
        assert state_of(divided_engine, event_id) == "dispatched"
        page.click("#lang")
        wait_for(page, "document.querySelector('#case').innerText.includes('Dispatched')", timeout=5000)
        page.screenshot(path=str(ROOT / "docs" / "console.png"))
        page.fill("#note", "needs a project: the pipe network is renewed next year")
        page.click('[data-action="hang"]')  # 挂账: hang, with the default review date a month on
        wait_for(page, "document.querySelector('#case').innerText.includes('review on')", timeout=5000)
        assert state_of(divided_engine, event_id) == "hung"
        assert tab.external_requests == [] and tab.console_errors == []
    with divided_engine.connect() as conn:
        steps = [r[0] for r in conn.execute(text(
            "SELECT action FROM event_transitions WHERE event_id = :i ORDER BY id"), {"i": event_id})]
        read = conn.execute(text("SELECT count(*) FROM audit_log WHERE username = 'centre' "
                                 "AND action = 'read_personal' AND subject = :s"), {"s": f"event {event_id}"}).scalar()
    assert steps[-3:] == ["accept", "dispatch", "hang"] and read >= 1


def test_the_console_s_counts_and_stream_are_the_user_s_jurisdiction(divided_engine: Engine,
                                                                     divided_url: str) -> None:
    """A community's centre counts and hears only its community's reports; a grid member may not open the desk."""
    from fastapi.testclient import TestClient

    from tests.conftest import admin

    own_code, lon, lat = inner_point(divided_engine)
    with divided_engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar_one()
    elsewhere = next((inner_point(divided_engine, rank=r) for r in range(1, grids)
                      if inner_point(divided_engine, rank=r)[0][:12] != own_code[:12]), None)
    writing(divided_engine, create_user, "community-centre", PASSWORD, "dispatcher", unit=own_code[:12])
    writing(divided_engine, create_user, "walker", PASSWORD, "grid_member", unit=own_code)
    client = TestClient(create_app(Settings(database_url=divided_url, auto_dispatch=False)))
    with client:
        admin(client)
        assert client.post("/events", json=report(lon, lat)).status_code == 201
        if elsewhere is not None:  # a report of another community: neither counted nor heard
            assert client.post("/events", json=report(elsewhere[1], elsewhere[2])).status_code == 201
        mine = client.post("/token", data={"username": "community-centre", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {mine['access_token']}"}
        counts = client.get("/events/counts", headers=headers).json()
        assert counts["reported"] == 1 and counts["overdue"] == 0
        with client.stream("GET", "/events/live", params={"since": 0, "limit": 1, "poll": 0.1},
                           headers=headers) as stream:
            body = "".join(stream.iter_text())
        assert body.count("event: report") == 1 and f'"grid": "{own_code}"' in body
        walker = client.post("/token", data={"username": "walker", "password": PASSWORD}).json()
        page = client.get("/console", headers={"Authorization": f"Bearer {walker['access_token']}"})
        assert page.status_code == 403


def test_a_department_returns_a_case_from_its_desk_and_the_centre_overrules(divided_engine: Engine,
                                                                           divided_url: str) -> None:
    """退单 and 审定 in the browser: the water department sends a case back with a reason; the street centre sees
    it returned and overrules it, back to the department."""
    code, lon, lat = inner_point(divided_engine)
    writing(divided_engine, create_user, "water-desk", PASSWORD, "department", unit="beijing", department="water")
    writing(divided_engine, create_user, "street-centre", PASSWORD, "dispatcher", unit=code[:9])
    with serve_in_thread(create_app(Settings(database_url=divided_url))) as base:
        token = http_token(base, "street-centre")
        case = httpx.post(f"{base}/events", json=report(lon, lat, category="C05"), timeout=10,
                          headers={"Authorization": f"Bearer {token}"}).json()
        event_id = case["id"]
        assert case["department"] == "water" and case["state"] == "dispatched"
        row = f'#queue tr[data-id="{event_id}"]'
        with local_page(token=http_token(base, "water-desk")) as tab:
            page = tab.page
            page.goto(f"{base}/console", wait_until="networkidle")
            page.click(row)
            page.wait_for_selector("#reason")
            page.select_option("#reason", "not_our_duty")
            page.keyboard.press("t")  # 退单
            wait_for(page, "document.querySelector('#case .ok') !== null", timeout=5000)
            assert tab.console_errors == [] and tab.external_requests == []
        assert state_of(divided_engine, event_id) == "accepted"
        with local_page(token=token) as tab:
            page = tab.page
            page.goto(f"{base}/console", wait_until="networkidle")
            page.click(row)
            wait_for(page, "document.querySelector('#case').innerText.includes('退单次数')", timeout=5000)
            page.screenshot(path=str(ROOT / "docs" / "console-returned.png"))
            page.keyboard.press("o")  # 维持派遣: overrule
            wait_for(page, "document.querySelector('#case .ok') !== null", timeout=5000)
            assert tab.console_errors == [] and tab.external_requests == []
    assert state_of(divided_engine, event_id) == "dispatched"
    with divided_engine.connect() as conn:
        steps = conn.execute(text("SELECT action, data FROM event_transitions WHERE event_id = :i ORDER BY id"),
                             {"i": event_id}).all()
    assert [(a, (d or {}).get("reason") or (d or {}).get("decision")) for a, d in steps[-2:]] == \
        [("return", "not_our_duty"), ("overrule", "overruled")]


def test_a_possible_duplicate_is_merged_into_the_earlier_case(divided_engine: Engine, divided_url: str) -> None:
    """The same manhole reported twice: the second waits as a possible duplicate of the first, and the console
    merges it with one key (the earlier case already named)."""
    code, lon, lat = inner_point(divided_engine)
    writing(divided_engine, create_user, "desk", PASSWORD, "dispatcher", unit=code[:9])
    with serve_in_thread(create_app(Settings(database_url=divided_url))) as base:
        token = http_token(base, "desk")
        post = {"timeout": 10, "headers": {"Authorization": f"Bearer {token}"}}
        first = httpx.post(f"{base}/events", json=report(lon, lat), **post).json()
        second = httpx.post(f"{base}/events", json=report(lon + 0.0001, lat), **post).json()
        assert second["duplicate_of"] == first["id"] and second["state"] == "reported"
        with local_page(token=token) as tab:
            page = tab.page
            page.goto(f"{base}/console", wait_until="networkidle")
            page.click(f'#queue tr[data-id="{second["id"]}"]')
            wait_for(page, f"document.querySelector('#case').innerText.includes('#{first['id']}')", timeout=5000)
            page.keyboard.press("m")  # 合并 into the case it duplicates
            wait_for(page, "document.querySelector('#case .ok') !== null", timeout=5000)
            assert tab.console_errors == [] and tab.external_requests == []
    assert state_of(divided_engine, second["id"]) == "merged"
