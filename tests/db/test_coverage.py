"""Coverage reports on the divided Beijing fixture, and the network isochrones behind the response circles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.patrol.store.coverage import ISOCHRONE_BUFFER_M, _isochrone
from tests.conftest import admin
from tests.db.test_visits import _route_track, _staffed_grid


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def test_an_isochrone_cuts_edges_where_the_time_runs_out() -> None:
    # a street of two 100 m segments, the source at its west end: 150 m reach ends half-way along the second
    lines = np.array([shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(100, 0), (200, 0)]),
                      shapely.LineString([(0, 0), (0, 400)])], dtype=object)
    u, v, length = np.array([0, 1, 0]), np.array([1, 2, 3]), np.array([100.0, 100.0, 400.0])
    reach = np.array([0.0, 100.0, 200.0, 400.0])
    area = _isochrone(lines, u, v, length, reach, 150.0)
    assert area.contains(shapely.Point(145, 0)) and not area.contains(shapely.Point(185, 0))
    assert area.contains(shapely.Point(0, 145)) and not area.contains(shapely.Point(0, 185))
    assert area.contains(shapely.Point(50, ISOCHRONE_BUFFER_M - 1))  # the buffer: the way from street to door
    assert not area.contains(shapely.Point(150, 150))  # not a convex hull: the corner between the streets is out


def test_the_coverage_report_per_grid_and_rolled_up(client: TestClient, divided_engine: Engine) -> None:
    code, chief, _ = _staffed_grid(client, divided_engine)
    start = datetime.now(UTC) - timedelta(hours=2)
    visit = client.post(f"/grids/{code}/visits", json={
        "kind": "basic", "staff_id": chief, "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=1)).isoformat(),
        "track": {"type": "LineString", "coordinates": _route_track(client, code)}}).json()
    grids = client.get("/coverage", params={"city": "beijing"}).json()
    row = next(r for r in grids["rows"] if r["code"] == code)
    assert row["walked_m"] == pytest.approx(visit["walked_m"], rel=0.01) and row["walked_share"] > 0.95
    assert row["planned_share"] >= row["walked_share"] - 0.05
    assert all(r["walked_m"] == 0 for r in grids["rows"] if r["code"] != code)
    for r in grids["rows"]:
        for source in ("police", "base"):
            shares = [r[f"households_{source}_{m}min_share"] for m in (1, 3, 5)]
            if r["households"]:
                assert shares == sorted(shares)  # more time, more reached
                assert shares[-1] <= r["households_near_network_share"] + 1e-9
    city = client.get("/coverage", params={"city": "beijing", "by": "city"}).json()["rows"]
    assert len(city) == 1
    for field in ("street_m", "walked_m", "households", "buildings", "events", "households_base_5min"):
        assert city[0][field] == pytest.approx(sum(r[field] for r in grids["rows"]), abs=0.5)
    assert city[0]["households_base_5min_share"] > 0.3  # every grid's own base reaches much of it in 5 minutes
    ebike = client.get("/coverage", params={"city": "beijing", "by": "city", "mode": "ebike"}).json()["rows"][0]
    assert ebike["households_police_5min_share"] >= city[0]["households_police_5min_share"]
    csv = client.get("/coverage", params={"city": "beijing", "by": "community", "format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith("level,code,name,grids")
    for params, status in (({"city": "atlantis"}, 404), ({"city": "beijing", "by": "block"}, 422),
                           ({"city": "beijing", "minutes": "a,b"}, 422), ({"city": "beijing", "minutes": "0"}, 422),
                           ({"city": "beijing", "start": "2026-11-01", "end": "2026-10-01"}, 422)):
        response = client.get("/coverage", params=params)
        assert response.status_code == status, (params, response.text)


def test_coverage_is_computed_once_for_every_instance(divided_url: str) -> None:
    """Issue 24: two instances (two engines, nothing in either's memory) asking for the same report at once: one
    computes it, the other waits for it and reads it from ``coverage_cache``; a third, later, reads it too."""
    import threading

    from sqlalchemy import text

    from gis.db.engine import make_engine
    from gis.oversight.store import leaders

    engines = [make_engine(divided_url) for _ in range(3)]
    with engines[0].begin() as conn:
        conn.execute(text("TRUNCATE coverage_cache"))
        city = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    leaders._cache.clear()
    got: list[dict] = [{}, {}]  # type: ignore[type-arg]

    def ask(i: int) -> None:
        got[i] = leaders.cached_coverage(engines[i], city, start, end, by="street", mode="ebike", minutes=5.0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leaders._cache.clear()  # a third instance, later
    third = leaders.cached_coverage(engines[2], city, start, end, by="street", mode="ebike", minutes=5.0)
    with engines[0].connect() as conn:
        rows = conn.execute(text("SELECT ctid::text FROM coverage_cache")).scalars().all()
    assert rows == ["(0,1)"]  # inserted once, never written again
    assert got[0]["rows"] == got[1]["rows"] == third["rows"] and len(third["rows"]) > 0
    assert set(third["areas"]) == set(got[0]["areas"]) and all(
        third["areas"][k].equals(got[0]["areas"][k]) for k in third["areas"])
    for e in engines:
        e.dispose()
