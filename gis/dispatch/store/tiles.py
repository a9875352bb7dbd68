"""Events on maps: open cases as vector tiles (``ST_AsMVT``), below zoom 13 gathered into clusters on a grid of a
64th of the tile (each with its count and how many are overdue), from zoom 13 one point per case with its id,
category and state; and the rows of the OGC API — Features collection of events (:func:`event_rows`). Only the
caller's jurisdiction's cases (a department: those gone to it or that it assists), never personal data."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from gis.access.scope import Scope
from gis.db import mvt
from gis.dispatch.queries import OPEN_STATES_SQL, OVERDUE_SQL
from gis.geo.tiles import BUFFER, EXTENT, search_box, tile_layer

POINTS_FROM = 13
"""The zoom from which each case is a point of its own."""


def event_tile(conn: Connection, z: int, x: int, y: int, *, scope: Scope | None,
               department: str | None = None) -> bytes:
    box = search_box(z, x, y)
    where = [f"e.archive = 0 AND e.state IN {OPEN_STATES_SQL}",
             "e.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"]
    params: dict[str, Any] = {"minx": box[0], "miny": box[1], "maxx": box[2], "maxy": box[3]}
    _scoped(where, params, scope, department)
    if z >= POINTS_FROM:
        rows = (f"SELECT e.geom, 1 AS count, e.category_code AS category, e.state, ({OVERDUE_SQL}) AS overdue, e.id "
                f"FROM events e WHERE {' AND '.join(where)}")
    else:
        # clusters on a 64 × 64 lattice of the tile, in degrees (a tile's latitudes are near enough to uniform at
        # these zooms): arithmetic on the coordinates, no geometry built per case but the cluster's
        cols = (box[2] - box[0]) / (64 + 2 * 64 * BUFFER / EXTENT)
        rows_deg = (box[3] - box[1]) / (64 + 2 * 64 * BUFFER / EXTENT)
        rows = f"""
            SELECT ST_SetSRID(ST_MakePoint(avg(ST_X(e.geom)), avg(ST_Y(e.geom))), 4326) AS geom, count(*) AS count,
                   NULL::text AS category, NULL::text AS state, count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue,
                   NULL::bigint AS id
            FROM events e WHERE {' AND '.join(where)}
            GROUP BY floor((ST_X(e.geom) - :minx) / {cols:.12f}), floor((ST_Y(e.geom) - :miny) / {rows_deg:.12f})"""
    return mvt.encode(conn, "events", rows, params, z, x, y, fields=tile_layer("events").fields, simplify=False)


EVENT_FIELDS = ("category", "category_name", "state", "priority", "source", "grid", "reported_at", "due_at",
                "closed_at", "overdue")
"""What an event carries as an OGC API feature: no description, contact or photos (what a reporter wrote or
showed may name people)."""


def event_rows(*, bbox: tuple[float, float, float, float] | None, interval: tuple[Any, Any] | None,
               scope: Scope | None, department: str | None = None) -> tuple[str, dict[str, Any]]:
    """The events of the jurisdiction (every state; archived ones too) inside ``bbox`` (CRS84), reported within
    ``interval``, as rows with ``id``, ``geom`` and :data:`EVENT_FIELDS`."""
    where = ["true"]
    params: dict[str, Any] = {}
    if bbox is not None:
        where.append("e.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(minx=bbox[0], miny=bbox[1], maxx=bbox[2], maxy=bbox[3])
    if interval is not None:
        where.append("(CAST(:dt_start AS timestamptz) IS NULL OR e.reported_at >= :dt_start) AND "
                     "(CAST(:dt_end AS timestamptz) IS NULL OR e.reported_at <= :dt_end)")
        params.update(dt_start=interval[0], dt_end=interval[1])
    _scoped(where, params, scope, department)
    return (f"SELECT e.id, e.geom, e.category_code AS category, c.name AS category_name, e.state, e.priority, "
            f"e.source, e.grid_code AS grid, e.reported_at, e.due_at, e.closed_at, "
            f"({OVERDUE_SQL}) AS overdue "
            f"FROM events e JOIN categories c ON c.code = e.category_code WHERE {' AND '.join(where)}"), params


def _scoped(where: list[str], params: dict[str, Any], scope: Scope | None, department: str | None) -> None:
    """The conditions (on ``events e``) of a jurisdiction and, for a department, its own cases."""
    if scope is not None and scope.city_id is not None:
        where.append("e.city_id = :city")
        params["city"] = scope.city_id
        if scope.prefix is not None:
            where.append("(e.grid_code LIKE :prefix || '%' OR e.street_id IN "
                         "(SELECT id FROM admin_units WHERE level = 'street' AND code LIKE :prefix || '%'))")
            params["prefix"] = scope.prefix
    if department is not None:
        where.append("((e.department_code = :dep AND (e.level = 'department' OR e.queue = 'department')) "
                     "OR :dep = ANY(e.assisting))")
        params["dep"] = department
