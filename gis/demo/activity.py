"""Synthetic activity for the demo city, so its leaders' maps have something to show: **not real data**.

* Events: per grid about ``events_per_grid`` × households ÷ 400 reports (Poisson), at random points inside the
  grid, of random categories, reported over the last ``days`` days; about three in four closed, after between a
  fifth and one and a half times the category's deadline (so some late), the rest still open (some overdue). They
  go through bulk intake, so placement, people and deadlines are the service's own.
* Visits: in about ``visited_share`` of the grids a grid member walked the grid's planned basic patrol once, on a
  random day of the period; the track is the route itself, matched to the streets as any uploaded track is.

Seeded: the same city gets the same activity. Runs once per city (a city that already has events is left as it is).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from gis.dispatch.store.bulk import bulk_intake, read_events_file
from gis.errors import InputError
from gis.patrol.store.plans import plan_basic
from gis.patrol.store.visits import log_visit

AUTHOR = "gridpatrol demo (synthetic)"


def seed_demo_activity(engine: Engine, city_id: int, *, days: int = 30, events_per_grid: float = 6.0,
                       visited_share: float = 0.6, seed: int = 7, now: datetime | None = None) -> dict[str, int]:
    """Add synthetic events and patrol visits to ``city_id``'s grids (see the module docstring); the counts."""
    at = now or datetime.now(UTC)
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM events e JOIN admin_units c ON c.id = e.community_id "
                                "WHERE c.city_id = %(c)s LIMIT 1", {"c": city_id}).first():
            return {"events": 0, "visits": 0}
        grids = conn.exec_driver_sql(
            "SELECT g.id, g.code, coalesce(sum(b.households), 0) FROM grids g JOIN admin_units c "
            "ON c.id = g.community_id LEFT JOIN buildings b ON b.grid_id = g.id WHERE c.city_id = %(c)s "
            "GROUP BY g.id, g.code ORDER BY g.code", {"c": city_id}).all()
        if not grids:
            raise InputError("the city has no grids yet: divide it first (gridpatrol divide)")
        categories = conn.exec_driver_sql("SELECT code, hours_normal FROM categories ORDER BY code").all()
        counts = {gid: int(rng.poisson(events_per_grid * max(int(h), 100) / 400)) for gid, _c, h in grids}
        points = conn.exec_driver_sql(
            "SELECT g.id, ST_X(p.geom), ST_Y(p.geom) FROM grids g, unnest(%(ids)s::int[], %(n)s::int[]) AS t(id, n) "
            "CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(g.geom, t.n, %(seed)s)) p WHERE g.id = t.id AND t.n > 0",
            {"ids": list(counts), "n": list(counts.values()), "seed": seed}).all()
    rows: list[dict[str, Any]] = []
    for _gid, lon, lat in points:
        code, hours = categories[int(rng.integers(len(categories)))]
        reported = at - timedelta(seconds=float(rng.uniform(0, days * 86400)))
        closed = None
        if rng.random() < 0.75:
            closed = reported + timedelta(hours=float(hours) * float(rng.uniform(0.2, 1.5)))
            if closed > at:
                closed = None
        rows.append({"lon": f"{lon:.7f}", "lat": f"{lat:.7f}", "category": code, "priority": "normal",
                     "source": "grid_member", "description": "synthetic demo event",
                     "reported_at": reported.isoformat(), "closed_at": closed.isoformat() if closed else ""})
    if rows:  # through the validated file path, as an uploaded CSV would go
        data = pd.DataFrame(rows).to_csv(index=False).encode()
        bulk_intake(engine, read_events_file(data, "demo.csv"), author=AUTHOR, source_name="demo")
    visits = 0
    for _gid, code, _h in grids:
        if rng.random() >= visited_share:
            continue
        try:
            route = plan_basic(engine, code)
        except InputError:  # a grid with no streets: nothing to walk
            continue
        track = _route_track(route)
        if len(track) < 2:
            continue
        minutes = float(route["properties"]["minutes"])
        started = at - timedelta(days=float(rng.uniform(1, max(1, days - 1))))
        with engine.begin() as conn:
            log_visit(conn, code, kind="basic", started_at=started,
                      ended_at=started + timedelta(minutes=math.ceil(minutes)), track=track,
                      note="synthetic demo visit: the planned route walked")
        visits += 1
    return {"events": len(rows), "visits": visits}


def _route_track(route: dict[str, Any]) -> list[list[float]]:
    track: list[list[float]] = []
    for f in route["features"]:
        if f["properties"]["kind"] == "step":
            coords = [list(c) for c in f["geometry"]["coordinates"]]
            track.extend(coords if not track else coords[1:])
    return track
