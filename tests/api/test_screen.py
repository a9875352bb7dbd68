"""The command centre's big screen: its figures are the API's, a screen account reads the screen and nothing else, and
in headless Chromium at 1920×1080 it renders with no console error, no external request and no scroll bar, shows a
new report within 5 s, and recovers by itself after the service restarts."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.tokens import screen_may_read
from gis.access.store.users import create_user
from gis.db.engine import make_engine, writing
from maps.browser import local_page, serve_in_thread, wait_for
from tests.conftest import PASSWORD, admin, http_headers, http_token, user_headers
from tests.db.test_events import inner_point, report


@pytest.fixture(scope="module")
def client(nanjing_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as c:
        yield admin(c)


def test_the_figures_are_the_apis(client: TestClient, nanjing_url: str) -> None:
    data = client.get("/screen/data", params={"city": "nanjing"}).json()
    at = datetime.fromisoformat(data["at"])
    month = datetime.fromisoformat(data["month"]["start"])
    period = {"start": month.isoformat(), "end": at.isoformat()}
    city = client.get("/kpis", params={"by": "city", **period}).json()["units"]
    assert data["month"]["on_time_closure_rate"] == city[0]["on_time_closure_rate"]
    assert data["month"]["reported"] == city[0]["reported"]
    assert data["open"]["overdue"] == city[0]["open_overdue"]
    districts = {r["unit"]: r for r in client.get("/kpis", params={"by": "district", **period}).json()["units"]}
    assert data["league"]["level"] == "district" and len(data["league"]["units"]) == 3
    for unit in data["league"]["units"]:
        assert unit["on_time_closure_rate"] == districts.get(unit["code"], {}).get("on_time_closure_rate")
    rates = [u["on_time_closure_rate"] for u in data["league"]["units"] if u["on_time_closure_rate"] is not None]
    assert rates == sorted(rates, reverse=True)
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        today = at.replace(hour=0, minute=0, second=0, microsecond=0)
        counted = conn.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE reported_at >= %(t)s AND reported_at < %(at)s), "
            "count(*) FILTER (WHERE state NOT IN ('closed', 'rejected', 'merged')), "
            "count(*) FILTER (WHERE reported_at >= %(ago)s AND reported_at < %(at)s AND duplicate_of IS NULL "
            "AND state <> 'merged') FROM events", {"t": today, "at": at, "ago": at - timedelta(days=1)}).one()
    engine.dispose()
    assert (data["intake"]["today"], data["open"]["open"]) == (counted[0], counted[1])
    assert sum(p[2] for p in data["heat"]) == counted[2] > 0
    assert sum(data["intake"]["today_by_hour"]) == data["intake"]["today"]
    assert sum(c["events"] for c in data["categories"]) == data["month"]["reported"]
    assert sum(s["events"] for s in data["sources"]) == data["month"]["reported"]
    assert data["feed"] and all(set(r) == {"id", "category", "category_name", "category_name_en", "grid", "grid_name",
                                           "source", "state", "reported_at"} for r in data["feed"])  # no personal data
    times = [r["reported_at"] for r in data["feed"]]
    assert times == sorted(times, reverse=True)
    assert data["patrol"]["grids"] == 87 and 0 <= data["patrol"]["done"] <= data["patrol"]["grids"]
    # the response circles come once computed apart, never holding up a refresh
    deadline = time.monotonic() + 120
    while client.get("/screen/data").json()["response_circles"]["status"] == "computing":
        assert time.monotonic() < deadline, "the response circles never came"
        time.sleep(1)
    circles = client.get("/screen/data").json()["response_circles"]
    assert circles["status"] == "ready" and 0 <= circles["police_share"] <= 1


def test_a_screen_account_reads_the_screen_only(client: TestClient, nanjing_url: str) -> None:
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        districts = [r[0] for r in conn.exec_driver_sql(
            "SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")]
    screen = user_headers(client, engine, "screen", districts[0])
    engine.dispose()
    own = client.get("/screen/data", headers=screen)
    assert own.status_code == 200 and own.json()["unit"]["code"] == districts[0]
    assert own.json()["league"]["level"] == "street"
    assert client.get("/screen", headers=screen).status_code == 200
    assert client.get("/basemap.json", headers=screen).status_code == 200
    assert client.get("/tiles/basemap/14/13700/6600.mvt", headers=screen).status_code == 200
    for path in ("/events", "/kpis", "/leaders", "/leaders/figures", "/bulletins", "/grids", "/tiles/grids/14/1/1.mvt",
                 "/coverage?city=nanjing", "/open311/v2/requests.json", "/me/../events"):
        answer = client.get(path, headers=screen)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "big screen only" in answer.text, (path, answer.text)
    assert client.post("/events", json=report(118.78, 32.04), headers=screen).status_code == 403
    outside = client.get("/screen/data", params={"unit": districts[1]}, headers=screen)
    assert outside.status_code == 403 and "outside your jurisdiction" in outside.text
    assert client.get("/screen/data", params={"city": "nanjing"}, headers=screen).status_code == 403
    assert client.get("/screen/data", params={"unit": "12345"}).status_code == 422
    assert client.get("/screen/data", params={"unit": "999999"}).status_code == 404


def test_the_screen_paths() -> None:
    assert all(screen_may_read(p) for p in ("/screen", "/screen/data", "/basemap.json", "/tiles/basemap/9/1/2.mvt"))
    assert not any(screen_may_read(p) for p in ("/screenshots", "/screen-data", "/tiles/grids/9/1/2.mvt", "/tiles",
                                                 "/basemap.jsonx", "/events", "/"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_wall_in_headless_chromium(divided_url: str) -> None:
    engine = make_engine(divided_url)
    points = [inner_point(engine, rank)[1:] for rank in range(5)]  # five grids: no report a duplicate of another
    with engine.connect() as conn:
        city = conn.exec_driver_sql("SELECT name FROM admin_units WHERE level = 'city'").scalar_one()
    writing(engine, create_user, "wall", PASSWORD, "screen", unit=city)  # bound to the city: its screen by default
    engine.dispose()
    settings = Settings(database_url=divided_url, escalate_every_s=0)
    port = free_port()
    with serve_in_thread(create_app(settings), port=port) as base:
        headers = http_headers(base)
        import httpx2 as httpx

        for i in range(3):  # some reports before the screen opens
            assert httpx.post(f"{base}/events", json=report(*points[i], idempotency_key=f"wall-{i}"),
                              headers=headers, timeout=10).status_code == 201
        token = http_token(base, "wall")
        with local_page(width=1920, height=1080, token=token) as tab:
            page = tab.page
            page.goto(f"{base}/screen")
            wait_for(page, "document.documentElement.dataset.screen === 'live'", timeout=20_000)
            wait_for(page, "document.documentElement.dataset.basemap === 'ready'", timeout=30_000)
            assert page.evaluate("document.querySelectorAll('#feed li[data-id]').length") == 3
            # everything fits: no scroll bar, no panel spilling over the screen
            fits = page.evaluate("""() => {
                const d = document.documentElement;
                const over = [...document.querySelectorAll('.panel, .tile')].filter((el) => {
                    const r = el.getBoundingClientRect(); return r.bottom > innerHeight + 1 || r.right > innerWidth + 1;
                });
                return {h: d.scrollHeight <= innerHeight, w: d.scrollWidth <= innerWidth, over: over.length};
            }""")
            assert fits == {"h": True, "w": True, "over": 0}
            assert page.evaluate("document.querySelectorAll('#categories canvas, #sources canvas, #hours canvas,"
                                 " #gauges canvas').length") >= 4
            # a new report reaches the feed within 5 s
            sent = httpx.post(f"{base}/events", json=report(*points[3], idempotency_key="wall-new",
                                                              description="私人描述 private words"),
                              headers=headers, timeout=10)
            assert sent.status_code == 201
            started = time.monotonic()
            wait_for(page, f"document.querySelector('#feed li[data-id=\"{sent.json()['id']}\"]')", timeout=5_000)
            assert time.monotonic() - started < 5
            assert page.evaluate("document.querySelector('#feed li').dataset.id") == str(sent.json()["id"])
            assert "private words" not in page.content() and "138 0000" not in page.content()  # no personal data
            assert not tab.console_errors, tab.console_errors
            assert not tab.external_requests, tab.external_requests
    # the service goes away and comes back: the screen says so, then recovers by itself
    with local_page(width=1920, height=1080, token=token) as tab:
        page = tab.page
        with serve_in_thread(create_app(settings), port=port) as base:
            page.goto(f"{base}/screen")
            wait_for(page, "document.documentElement.dataset.connection === 'live'", timeout=20_000)
        wait_for(page, "document.documentElement.dataset.connection === 'lost'", timeout=15_000)
        assert page.evaluate("!document.getElementById('lost').hidden")
        assert page.evaluate("document.querySelectorAll('#feed li[data-id]').length") == 4  # the last figures stay
        with serve_in_thread(create_app(settings), port=port):
            wait_for(page, "document.documentElement.dataset.connection === 'live'", timeout=15_000)
            assert page.evaluate("document.getElementById('lost').hidden")
        # (Chromium logs each refused poll of the outage; nothing else may go wrong)
        assert [e for e in tab.console_errors if "ERR_CONNECTION_REFUSED" not in e] == [], tab.console_errors
        assert not tab.external_requests, tab.external_requests
