"""The grid member's phone page in headless Chromium at phone size, with an emulated position and network:
report, log a visit, lose the signal, report and visit again, reopen the page offline, get the signal back — and
the database holds each report and visit exactly once."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

import api.tokens
from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user, set_active
from gis.db.engine import reading, writing
from gis.dispatch import rules
from gis.dispatch.store import events
from maps.browser import local_page, serve_in_thread, wait_for
from tests.conftest import PASSWORD, ROOT, http_headers, http_token

PHONE = {"width": 390, "height": 844}


@dataclass
class Member:
    grid: str
    lon: float
    lat: float
    staff_id: int


@pytest.fixture
def member(divided_engine: Engine) -> Member:
    with divided_engine.connect() as conn:
        grid, lon, lat, staff = conn.execute(text(
            "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)), sg.staff_id "
            "FROM grids g JOIN staff_grids sg ON sg.grid_id = g.id AND sg.duty = 'member' "
            "WHERE EXISTS (SELECT 1 FROM buildings b WHERE b.grid_id = g.id) ORDER BY g.code LIMIT 1")).one()
    writing(divided_engine, create_user, "wang", PASSWORD, "grid_member", unit=grid, staff_id=staff,
            display_name="网格员 王")
    return Member(grid, lon, lat, staff)


@pytest.fixture
def served(divided_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        yield base


def phone(base: str, member: Member, **extra: object):  # type: ignore[no-untyped-def]
    return local_page(**PHONE, token=http_token(base, "wang"), is_mobile=True, has_touch=True,
                      geolocation={"latitude": member.lat, "longitude": member.lon}, permissions=["geolocation"],
                      locale="zh-CN", **extra)


def report(page, note: str, photo=None) -> None:  # type: ignore[no-untyped-def]
    page.click("#tabs button[data-tab=report]")
    page.click("#categories button >> nth=0")
    page.fill("#note", note)
    if photo is not None:
        page.set_input_files("#photo", str(photo))
    page.click("#send")


def queued(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.get_attribute("body", "data-queued") or 0)


def test_report_visit_offline_and_back_every_item_stored_once(served: str, member: Member, divided_engine: Engine,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    picture = tmp_path / "manhole.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    # 10:00 in Beijing: the member is on duty, so this report is theirs to handle on the page
    mine = events.intake(divided_engine, rules.EventIn(lon=member.lon + 0.0003, lat=member.lat, category="E01",
                                                        source="hotline", description="路边堆物"),
                         now=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)).event
    assert mine["assignee"]["id"] == member.staff_id
    with phone(served, member) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # the page is cached on the phone
        wait_for(page, "navigator.serviceWorker.controller !== null")
        page.wait_for_selector("body[data-cached='1']")  # read again through the worker: there offline
        assert member.grid in page.inner_text("#who")
        page.wait_for_selector("#buildings .visit")
        page.screenshot(path=str(ROOT / "docs" / "member-map.png"))

        report(page, "第一次 online report")
        wait_for(page, f"document.querySelector('#report-result').innerText.includes('{member.grid}')")
        answer = page.inner_text("#report-result")
        assert "负责人" in answer and "网格" in answer  # which grid and which person it went to
        page.screenshot(path=str(ROOT / "docs" / "member-report.png"), full_page=True)

        page.click("#tabs button[data-tab=map]")
        page.click("#buildings .visit >> nth=0")
        wait_for(page, "document.body.dataset.queued === '0' && "
                               "document.querySelector('#banner').innerText.includes('#')")

        assert tab.console_errors == [] and tab.external_requests == []
        # the signal goes: both are kept on the phone
        tab.context.set_offline(True)
        wait_for(page, "!navigator.onLine")
        report(page, "第二次 offline report", photo=picture)  # with a photo: kept on the phone too
        wait_for(page, "document.body.dataset.queued === '1'")
        wait_for(page, "document.querySelector('#report-result').innerText.includes('无信号')")
        page.click("#tabs button[data-tab=map]")
        page.click("#buildings .visit >> nth=1")
        wait_for(page, "document.body.dataset.queued === '2'")
        # the page reopened with no signal: from the service worker's cache, the queue still there
        page.reload(wait_until="load")
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "document.body.dataset.queued === '2'")
        assert page.locator("#queue li").count() == 2
        page.screenshot(path=str(ROOT / "docs" / "member-offline.png"), full_page=True)

        # offline, the only errors are the requests that could not go out
        assert all("net::ERR" in e or "Failed to fetch" in e for e in tab.console_errors), tab.console_errors
        seen = len(tab.console_errors)
        tab.context.set_offline(False)
        wait_for(page, "document.body.dataset.queued === '0'", timeout=30_000)
        assert tab.external_requests == [] and tab.console_errors[seen:] == [], tab.console_errors[seen:]

        # my events: got it, then done with a note and a photo
        page.click("#tabs button[data-tab=events]")
        row = page.locator("#events li", has_text=f"#{mine['id']}")
        loaded = int(page.get_attribute("body", "data-events-loaded") or 0)
        row.locator("button[data-action=receive]").click()
        wait_for(page, f"document.body.dataset.queued === '0' && "
                               f"Number(document.body.dataset.eventsLoaded) > {loaded}")  # the list, read again
        row = page.locator("#events li", has_text=f"#{mine['id']}")
        row.locator(".feedback").fill("已清理 cleared")
        row.locator(".feedback-photo").set_input_files(str(picture))
        sent = int(page.get_attribute("body", "data-delivered") or 0)
        row.locator("button[data-action=handle]").click()
        wait_for(page, f"Number(document.body.dataset.delivered) > {sent}")
        page.screenshot(path=str(ROOT / "docs" / "member-events.png"), full_page=True)
    with divided_engine.connect() as conn:
        notes = dict(conn.execute(text("SELECT description, count(*) FROM events GROUP BY 1")).all())
        visits = conn.execute(text("SELECT count(*), count(DISTINCT idempotency_key), count(DISTINCT buildings) "
                                   "FROM patrol_visits WHERE grid_code = :g"), {"g": member.grid}).one()
        photos = conn.execute(text("SELECT e.photos, p.size FROM events e JOIN photos p ON p.key = e.photos->>0 "
                                   "WHERE e.description LIKE '第二次%'")).all()
    assert notes == {"第一次 online report": 1, "第二次 offline report": 1, "路边堆物": 1}
    assert len(photos) == 1 and photos[0][1] == picture.stat().st_size  # the photo went up with it, once
    assert tuple(visits) == (2, 2, 2)
    steps = [(s["action"], s["note"], (s["data"] or {}).get("photos"))
             for s in reading(divided_engine, events.history, mine["id"])]
    assert steps[-2:] == [("receive", "", None), ("handle", "已清理 cleared", [photos[0][0][0]])]


def test_a_sign_in_that_expired_offline_keeps_the_queue(served: str, member: Member, divided_engine: Engine,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.tokens, "USER_TTL_S", 0.0)
    with phone(served, member) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        tab.context.set_offline(True)
        wait_for(page, "!navigator.onLine")
        report(page, "离线时登录过期")
        wait_for(page, "document.body.dataset.queued === '1'")
        writing(divided_engine, set_active, "wang", False)  # the sign-in no longer holds (as after a password reset)
        tab.context.set_offline(False)
        wait_for(page, "document.querySelector('#banner').innerText.includes('重新登录')", timeout=30_000)
        assert queued(page) == 1  # nothing lost from the queue
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE description = '离线时登录过期'")).scalar() == 0


def test_the_page_says_what_is_wrong(served: str, member: Member, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with phone(served, member) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#tabs button[data-tab=report]")
        page.click("#send")
        assert "类别" in page.inner_text("#report-result")  # no category picked
        not_a_photo = tmp_path / "notes.txt"
        not_a_photo.write_text("not a picture")
        page.set_input_files("#photo", str(not_a_photo))
        assert "不是图片" in page.inner_text("#report-result")
        # walking out of the grid
        tab.context.set_geolocation({"latitude": member.lat + 0.05, "longitude": member.lon})
        wait_for(page, "document.querySelector('#banner').innerText.includes('不在')")
        page.click("#lang")
        assert "Report" in page.inner_text("#tabs")
    # no position permission: the page says so and still lets the member tap the map
    with local_page(**PHONE, token=http_token(served, "wang"), is_mobile=True, has_touch=True) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "document.querySelector('#where').innerText.length > 0")
        assert "定位" in page.inner_text("#where") or "定位" in page.inner_text("#banner")


def test_signing_out_leaves_nothing_of_the_member_on_the_phone(served: str, member: Member) -> None:
    """Issue 18: the page had no sign-out, and a shared phone kept the last member's cached events (with the
    reporters' contacts) for the next one to read."""
    with phone(served, member) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        page.reload(wait_until="networkidle")  # the service worker in control: its answers are cached now
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "navigator.serviceWorker.controller !== null")
        cached = "(async () => (await Promise.all((await caches.keys()).map(async n => (await (await caches.open(n))" \
                 ".keys()).map(r => new URL(r.url).pathname)))).flat())()"
        assert "/me" in page.evaluate(cached)
        page.click("#signout")
        page.wait_for_url("**/login**", timeout=15_000)
        # (the basemap's tiles are public map data, not the member's: one still arriving may be kept)
        kept = ("/static/", "/m/", "/login", "/tiles/basemap/")
        assert not [p for p in page.evaluate(cached) if not p.startswith(kept)]
        # nothing went wrong but a request of the page's still under way as the sign-in ended
        assert [e for e in tab.console_errors if "status of 401" not in e] == []
        assert page.evaluate("() => fetch('/me').then(r => r.status)") == 401  # the cookie went too
        assert page.evaluate("() => new Promise(ok => { const r = indexedDB.open('gridpatrol-member', 1); "
                             "r.onsuccess = () => { const tx = r.result.transaction('outbox'); "
                             "const q = tx.objectStore('outbox').count(); q.onsuccess = () => ok(q.result); }; "
                             "r.onupgradeneeded = () => r.result.createObjectStore('outbox', {keyPath: 'key'}); })"
                             ) == 0


def test_the_grids_basemap_stays_on_the_phone_for_offline_use(divided_url: str, member: Member) -> None:
    """The member's grid on the offline basemap: its tiles fetched at sign-in and kept by the service worker; with
    the service gone (no signal: nothing answers), the page reopens from the phone and MapLibre GL draws the grid's
    streets and buildings again from the cached tiles.

    (The service is stopped rather than the browser set offline, which Chromium's emulation does not apply to
    service workers alike. A dedicated worker is not under the page's service worker in this Chromium, which is why
    basemap.js starts MapLibre GL's worker from a blob and fetches the tiles from the page.)"""
    cached = "(async () => (await Promise.all((await caches.keys()).map(async n => (await (await caches.open(n))" \
             ".keys()).map(r => new URL(r.url).pathname + new URL(r.url).search)))).flat()" \
             ".filter(p => p.startsWith('/tiles/basemap/')))()"
    drawn = "map.gridpatrolBasemap.getMaplibreMap().queryRenderedFeatures({layers: ['buildings', 'road-minor', " \
            "'road-tertiary', 'road-secondary', 'road-primary', 'road-service', 'paths']}).length"
    with ExitStack() as stack:
        service = stack.enter_context(ExitStack())
        base = service.enter_context(serve_in_thread(create_app(Settings(database_url=divided_url,
                                                                         escalate_every_s=0))))
        tab = stack.enter_context(phone(base, member))
        page = tab.page
        page.goto(f"{base}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "navigator.serviceWorker.controller !== null")
        page.reload(wait_until="networkidle")  # through the worker now: the prefetched tiles go to its cache
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "document.documentElement.dataset.basemap === 'ready'", timeout=20_000)
        online = page.evaluate(drawn)
        assert online > 0  # the grid on the basemap
        page.screenshot(path=str(ROOT / "docs" / "member-basemap.png"))
        tiles = page.evaluate(cached)
        assert len({t.split("/")[3] for t in tiles}) == 4, tiles  # the grid's tiles at four zooms
        service.close()  # no signal: nothing answers any more
        page.reload(wait_until="load")
        page.wait_for_selector("body[data-ready='1']")
        wait_for(page, "document.documentElement.dataset.basemap === 'ready'", timeout=20_000)
        wait_for(page, f"{drawn} > 0", timeout=10_000)
        page.screenshot(path=str(ROOT / "docs" / "member-basemap-offline.png"))
        assert tab.external_requests == []


def test_end_patrol_shows_the_streets_the_track_was_credited_with(served: str, member: Member,
                                                                  divided_engine: Engine) -> None:
    """Issue 25: the member walks (the emulated position moves along the grid's planned route), ends the patrol,
    and the page draws the street segments the service credited, from the map-matched track. The grid's patrol is
    shared between two: "today's route" is the member's part of it this week."""
    import httpx2 as httpx

    from gis.patrol.store.shares import split_for_share, store_share

    writing(divided_engine, store_share, member.grid, 2, *split_for_share(divided_engine, member.grid, 2))
    route = httpx.get(f"{served}/grids/{member.grid}/patrols/basic", headers=http_headers(served, "wang"),
                      timeout=30).json()
    line: list[list[float]] = []
    for f in route["features"]:
        if f["properties"]["kind"] == "step":
            line.extend(f["geometry"]["coordinates"] if not line else f["geometry"]["coordinates"][1:])
    # a fix every 4 m along the route, every half second: 8 m/s, the pace of an e-bike. The emulated position's
    # times are the browser's real clock, so the walk must be one a person could make in them: a faster one is
    # what the matcher refuses as GPS jumps (issue 25)
    walk = [line[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(line):
        steps = max(1, int(math.hypot((x1 - x0) * 111_320 * math.cos(math.radians(y0)), (y1 - y0) * 110_574) // 4))
        walk.extend([x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps] for i in range(1, steps + 1))
    walk = walk[:46]
    with phone(served, replace(member, lon=walk[0][0], lat=walk[0][1])) as tab:
        page = tab.page
        page.goto(f"{served}/m/", wait_until="networkidle")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#tabs button[data-tab=route]")
        wait_for(page, "document.querySelector('#route-summary').innerText.includes('本周第')")
        assert "/2 段" in page.inner_text("#route-summary")
        page.screenshot(path=str(ROOT / "docs" / "member-part.png"))
        page.click("#tabs button[data-tab=map]")
        for x, y in walk:
            tab.context.set_geolocation({"latitude": y, "longitude": x, "accuracy": 8})
            page.wait_for_timeout(500)
        wait_for(page, "state.track.length >= 40")  # about 180 m walked
        page.click("#end-patrol")
        page.wait_for_selector("body[data-credited]", timeout=30_000)
        credited = int(page.get_attribute("body", "data-credited") or 0)
        assert credited > 0 and "认定走过" in page.inner_text("#track-info")
        page.screenshot(path=str(ROOT / "docs" / "member-credited.png"))
        assert tab.console_errors == [] and tab.external_requests == []
    with divided_engine.connect() as conn:
        visit = conn.execute(text("SELECT matched_by, segments_walked, gps_sigma_m, matched_path IS NOT NULL "
                                  "FROM patrol_visits WHERE grid_code = :g ORDER BY id DESC LIMIT 1"),
                             {"g": member.grid}).one()
    assert visit[0] == "hmm" and visit[1] == credited and visit[3]
    assert visit[2] == pytest.approx(8 / 1.5, abs=0.1)  # the phone's accuracy, as σ
    writing(divided_engine, store_share, member.grid, 1)
