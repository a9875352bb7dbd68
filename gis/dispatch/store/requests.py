"""Open311's reads: events as service requests, with the spec's filters and a spatial extension.

Which rows and fields a caller may see is :mod:`gis.dispatch.public`'s rule; this store loads the candidates (only
public categories' events unless ``cities`` names the cities a signed-in caller may see more of).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from gis.dispatch.public import CLOSED, RequestRow

MAX_REQUESTS = 1000
"""The spec's default: at most 1000 requests an answer."""

_SQL = """
    SELECT e.id, e.state, e.category_code, c.name, c.public, e.published, e.description, ST_X(e.geom), ST_Y(e.geom),
           e.reported_at, e.updated_at, e.due_at, e.photos, e.grid_code, g.name, s.name, d.name, e.level,
           coalesce((SELECT t.note FROM event_transitions t WHERE t.event_id = e.id AND t.note IS NOT NULL
                     ORDER BY t.at DESC, t.id DESC LIMIT 1),
                    (SELECT i.note FROM event_imports i WHERE i.id = e.import_id)),
           e.city_id, coalesce(e.grid_code, s.code), e.department_code, e.queue
    FROM events e JOIN categories c ON c.code = e.category_code LEFT JOIN departments d ON d.code = e.department_code
    LEFT JOIN grids g ON g.id = e.grid_id LEFT JOIN admin_units s ON s.id = e.street_id
    WHERE {where} ORDER BY e.reported_at DESC, e.id DESC LIMIT %(limit)s"""


def find_requests(conn: Connection, *, ids: Sequence[int] | None = None, start: datetime | None = None,
                  end: datetime | None = None, codes: Sequence[str] | None = None, status: str | None = None,
                  near: tuple[float, float, float] | None = None,
                  bbox: tuple[float, float, float, float] | None = None,
                  cities: Sequence[int] | None = None, everywhere: bool = False) -> list[RequestRow]:
    """The requests matching every filter given, newest first, at most ``MAX_REQUESTS``. ``status``: ``open`` or
    ``closed``; ``near``: (lon, lat, metres); ``bbox``: west, south, east, north. Events of categories that are not
    public come only from ``cities`` (or from anywhere with ``everywhere``): the caller decides row by row."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {"limit": MAX_REQUESTS, "closed": list(CLOSED)}
    if ids is not None:
        where.append("e.id = ANY(%(ids)s)")
        params["ids"] = list(ids)
    if start is not None and end is not None:
        where.append("e.reported_at >= %(start)s AND e.reported_at < %(end)s")
        params.update(start=start, end=end)
    if codes:
        where.append("e.category_code = ANY(%(codes)s)")
        params["codes"] = list(codes)
    if status == "open":
        where.append("e.state <> ALL(%(closed)s)")
    elif status == "closed":
        where.append("e.state = ANY(%(closed)s)")
    if near is not None:
        where.append("ST_DWithin(e.geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, "
                     "%(radius)s)")
        params.update(lon=near[0], lat=near[1], radius=near[2])
    if bbox is not None:
        where.append("e.geom && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)")
        params.update(w=bbox[0], s=bbox[1], e=bbox[2], n=bbox[3])
    if not everywhere:
        where.append("(c.public OR e.city_id = ANY(%(cities)s))")
        params["cities"] = list(cities or [])
    rows = conn.exec_driver_sql(_SQL.format(where=" AND ".join(where)), params).all()
    return [RequestRow(*row) for row in rows]
