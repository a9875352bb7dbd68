"""Concurrent edits of the same event or grid over real HTTP: the later one gets 409, no update is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from shapely.geometry import mapping, shape
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import writing
from maps.browser import serve_in_thread
from tests.conftest import http_headers


@pytest.fixture
def served(divided_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0, intake_rate=0))) as base:
        yield base, http_headers(base)


def at_once(*calls: Callable[[], httpx.Response], rounds: int = 1) -> list[int]:
    """Run the calls in threads released together; their statuses in call order."""
    start = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        start.wait()
        statuses[i] = calls[i]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


def _event(base: str, auth: dict[str, str], engine: Engine, rank: int = 0) -> dict[str, Any]:
    """A dispatched event in the rank-th grid (one per grid: a second one nearby would wait as a duplicate)."""
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                     "ORDER BY code OFFSET :r LIMIT 1) s"), {"r": rank}).one()
    answer = httpx.post(f"{base}/events", headers=auth, timeout=10, json={
        "location": {"type": "Point", "coordinates": [lon, lat]}, "category": "C02", "source": "hotline"})
    assert answer.status_code == 201 and answer.json()["state"] == "dispatched", answer.text
    return answer.json()


def test_two_steps_on_what_each_saw_one_wins_one_is_409(served: tuple[str, dict[str, str]],
                                                         divided_engine: Engine) -> None:
    base, auth = served
    for rank in range(5):  # a race, so more than once
        event = _event(base, auth, divided_engine, rank)
        url = f"{base}/events/{event['id']}"
        seen = event["updated_at"]
        statuses = at_once(
            lambda url=url, seen=seen: httpx.post(f"{url}/extend", headers=auth, timeout=10,
                                                  json={"hours": 24, "note": "parts", "seen_updated_at": seen}),
            lambda url=url, seen=seen: httpx.post(f"{url}/suspend", headers=auth, timeout=10,
                                                  json={"note": "wait", "seen_updated_at": seen}))
        assert sorted(statuses) == [200, 409], statuses
        steps = [s["action"] for s in httpx.get(f"{url}/history", headers=auth, timeout=10).json()]
        won = "extend" if statuses[0] == 200 else "suspend"
        assert steps[-1] == won and ({"extend", "suspend"} - {won}) & set(steps) == set()
        now = httpx.get(url, headers=auth, timeout=10).json()
        assert now["extensions"] == (1 if won == "extend" else 0)
        assert now["state"] == ("suspended" if won == "suspend" else "dispatched")
    stale = httpx.post(f"{url}/supervise", headers=auth, timeout=10, json={"seen_updated_at": seen})
    assert stale.status_code == 409 and "read it again" in stale.json()["detail"]  # a step the state allows
    # one it no longer allows says so first (more use to the reader than "it changed")
    gone = httpx.post(f"{url}/accept", headers=auth, timeout=10, json={"seen_updated_at": seen})
    assert gone.status_code == 409 and "cannot be taken now" in gone.json()["detail"]


def _assignee_headers(base: str, engine: Engine, staff_id: int) -> dict[str, str]:
    """A signed-in account for the staff member an event went to."""
    from gis.access.store.users import create_user
    from tests.conftest import PASSWORD

    with engine.connect() as conn:
        grid = conn.execute(text("SELECT g.code FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
                                 "WHERE sg.staff_id = :s LIMIT 1"), {"s": staff_id}).scalar_one()
    name = f"assignee-{staff_id}"
    writing(engine, create_user, name, PASSWORD, "grid_member", unit=grid, staff_id=staff_id)
    return http_headers(base, name)


def test_two_handlers_at_once_without_a_version_the_state_decides(served: tuple[str, dict[str, str]],
                                                                   divided_engine: Engine) -> None:
    base, auth = served
    event = _event(base, auth, divided_engine)
    url = f"{base}/events/{event['id']}"
    member = _assignee_headers(base, divided_engine, event["assignee"]["id"])  # only the assignee handles
    statuses = at_once(*[lambda: httpx.post(f"{url}/handle", headers=member, timeout=10, json={"note": "done"})] * 3)
    assert sorted(statuses) == [200, 409, 409]
    steps = [s["action"] for s in httpx.get(f"{url}/history", headers=auth, timeout=10).json()]
    assert steps.count("handle") == 1


def _largest(geometry: Any) -> Any:
    return max(geometry.geoms, key=lambda g: g.area) if geometry.geom_type == "MultiPolygon" else geometry


def test_two_planners_reshape_the_same_grid_one_is_409(served: tuple[str, dict[str, str]],
                                                        divided_engine: Engine) -> None:
    base, auth = served
    with divided_engine.connect() as conn:  # a grid away from its community's edge: shrinking it leaves no gap
        code = conn.execute(text(
            "SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
            "WHERE NOT ST_DWithin(ST_Boundary(c.geom), g.geom, 0.0002) ORDER BY g.code LIMIT 1")).scalar_one()
    grid = next(f for f in httpx.get(f"{base}/grids", headers=auth, params={"limit": 1000}, timeout=10)
                .json()["features"] if f["properties"]["code"] == code)
    outline = shape(grid["geometry"])
    bodies = [{"version": 1, "geometry": mapping(_largest(outline.buffer(-d))), "reason": f"edit {d}"}
              for d in (0.00003, 0.00006)]  # two valid edits of version 1: the neighbours take the strip
    statuses = at_once(*[lambda b=b: httpx.post(f"{base}/grids/{code}/reshape", headers=auth, json=b, timeout=60)
                         for b in bodies])
    assert sorted(statuses) == [200, 409], statuses
    history = httpx.get(f"{base}/grids/{code}/history", headers=auth, timeout=10).json()
    assert [h["version"] for h in history] == [1, 2]  # one change stored, on the version both saw
    assert history[-1]["reason"] == bodies[statuses.index(200)]["reason"]
