"""The assignment stream (issue 18, item 6): it held a worker thread per connection (40 streams stalled a worker),
and kept sending assignments, contacts included, after the account was disabled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.routers.events import MAX_STREAMS
from api.settings import Settings
from gis.access.store import users
from gis.db.engine import writing
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, http_headers


@pytest.fixture
def served(divided_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        yield base


def _staff(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT staff_id FROM staff_grids WHERE duty = 'member' ORDER BY staff_id "
                                     "LIMIT 1")).scalar_one())


def _follow(base: str, staff_id: int, headers: dict[str, str], lines: list[str], stop: threading.Event) -> None:
    try:
        with httpx.stream("GET", f"{base}/staff/{staff_id}/events/stream", params={"heartbeat": 0.5, "poll": 0.2},
                          headers=headers, timeout=30) as response:
            lines.append(f"status {response.status_code}")
            for line in response.iter_lines():
                lines.append(line)
                if stop.is_set() or line.startswith("event: end"):
                    return
    except httpx.HTTPError as exc:
        lines.append(f"error {exc}")


def test_many_streams_leave_the_worker_free_and_each_user_has_a_cap(served: str, divided_engine: Engine) -> None:
    staff_id = _staff(divided_engine)
    for i in range(10):
        writing(divided_engine, users.create_user, f"watcher{i}", PASSWORD, "dispatcher", unit="beijing")
    stop = threading.Event()
    listeners, logs = [], []
    for i in range(10):
        headers = http_headers(served, f"watcher{i}")
        for _ in range(MAX_STREAMS):
            logs.append(lines := [])
            thread = threading.Thread(target=_follow, args=(served, staff_id, headers, lines, stop), daemon=True)
            thread.start()
            listeners.append(thread)
    deadline = time.monotonic() + 20
    while sum(1 for lines in logs if lines) < len(logs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(lines and lines[0] == "status 200" for lines in logs)  # 40 streams open at once
    started = time.monotonic()
    assert httpx.get(f"{served}/health", timeout=10).status_code == 200
    assert httpx.get(f"{served}/grids", params={"limit": 1}, headers=http_headers(served), timeout=10
                     ).status_code == 200
    assert time.monotonic() - started < 3  # the worker still answers at once
    extra = httpx.get(f"{served}/staff/{staff_id}/events/stream", headers=http_headers(served, "watcher0"),
                      timeout=10)
    assert extra.status_code == 429
    stop.set()
    for thread in listeners:
        thread.join(5)


def test_a_disabled_account_loses_its_stream_within_five_seconds(served: str, divided_engine: Engine) -> None:
    staff_id = _staff(divided_engine)
    writing(divided_engine, users.create_user, "leaver", PASSWORD, "dispatcher", unit="beijing")
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=_follow, args=(served, staff_id, http_headers(served, "leaver"), lines, stop),
                              daemon=True)
    thread.start()
    while not lines:
        time.sleep(0.05)
    writing(divided_engine, users.set_active, "leaver", False)
    disabled = time.monotonic()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - disabled < 6.5
    assert "event: end" in lines and not any(line.startswith("event: assigned") for line in lines)
