"""Events on maps: open cases as vector tiles (``ST_AsMVT``), below zoom 13 gathered into clusters on a grid of a
64th of the tile (each with its count and how many are overdue), from zoom 13 one point per case with its id,
category and state; and the rows of the OGC API — Features collection of events (:func:`event_rows`). Only the
caller's jurisdiction's cases (a department: those gone to it or that it assists), never personal data.

Up to zoom :data:`GRIDS_UP_TO` the clusters are counted from the grids' rows, not the cases: each grid carries its
open cases and the deadlines of those being handled (migrations 0033, 0034), so a province's overview tile reads
its few thousand grids instead of tens of thousands of cases. A grid's cases count at the grid's centroid there,
and a cluster sits at the mean of its grids' centroids weighted by their cases: **approximate** by up to half a
grid (a few pixels at these zooms; a grid is ~500 m, a lattice cell at zoom 10 ~600 m). The counts are exact: the
cases on no grid are added one by one (``events_gridless_geom_idx``, migration 0035). A department's tile counts
its own cases, which the grids' rows do not know, one by one at every zoom."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from gis.access.scope import Scope
from gis.db import mvt
from gis.dispatch.queries import OPEN_STATES_SQL, OVERDUE_SQL
from gis.geo.tiles import BUFFER, EXTENT, search_box, tile_layer
from gis.planning.queries import GRID_CITY, GRID_OPEN, GRID_OVERDUE, GRID_PENDING

POINTS_FROM = 13
"""The zoom from which each case is a point of its own."""
GRIDS_UP_TO = 10
"""The zoom up to which the clusters are counted from the grids' rows (see the module's notes)."""
MERCATOR_LON = "(ST_X({p}) * 180 / (pi() * 6378137))"
MERCATOR_LAT = "degrees(2 * atan(exp(ST_Y({p}) / 6378137)) - pi() / 2)"
"""A Web Mercator (EPSG:3857, spherical) point's longitude and latitude, exactly: the grids' centroids are stored in
the tiles' system (migration 0027), the lattice is in degrees, and arithmetic is cheaper than ``ST_Transform``."""


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
        if z <= GRIDS_UP_TO and department is None:
            places = _grid_counts(where, scope)
        else:
            places = (f"SELECT ST_X(e.geom) AS x, ST_Y(e.geom) AS y, 1 AS n, ({OVERDUE_SQL})::int AS o "
                      f"FROM events e WHERE {' AND '.join(where)}")
        rows = f"""
            SELECT ST_SetSRID(ST_MakePoint(sum(x * n) / sum(n), sum(y * n) / sum(n)), 4326) AS geom,
                   sum(n)::bigint AS count, NULL::text AS category, NULL::text AS state, sum(o)::bigint AS overdue,
                   NULL::bigint AS id
            FROM ({places}) AS p WHERE n > 0
            GROUP BY floor((x - :minx) / {cols:.12f}), floor((y - :miny) / {rows_deg:.12f})"""
    return mvt.encode(conn, "events", rows, params, z, x, y, fields=tile_layer("events").fields, simplify=False)


def _grid_counts(where: list[str], scope: Scope | None) -> str:
    """The places a low zoom's clusters count (``x``, ``y``, open cases ``n``, overdue ``o``): each grid of the
    jurisdiction at its centroid with its open cases, and each open case on no grid at its own place. A grid is in
    the jurisdiction as its cases are (:func:`_scoped`: its code under the unit's, or its community in one of the
    unit's streets); ``where`` holds the cases' conditions, tile box and jurisdiction included. A grid whose
    centroid lies outside the tile's box (its outline reaches in) falls in a lattice cell outside it, which the
    tile's clipping drops: its cases are counted by the tile that holds its centroid."""
    grid_where = ["g.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"]
    if scope is not None and scope.city_id is not None:
        grid_where.append(f"{GRID_CITY.format(alias='g')} = :city")
        if scope.prefix is not None:
            grid_where.append("(g.code LIKE :prefix || '%' OR EXISTS (SELECT 1 FROM admin_units c JOIN admin_units s "
                              "ON s.id = c.parent_id WHERE c.id = g.community_id AND s.code LIKE :prefix || '%'))")
    return f"""
        SELECT {MERCATOR_LON.format(p="g.centroid")} AS x, {MERCATOR_LAT.format(p="g.centroid")} AS y,
               {GRID_OPEN.format(alias="g")} AS n,
               {GRID_OVERDUE.format(alias="g")} AS o
        FROM grids g {GRID_PENDING.format(alias="g")} WHERE {' AND '.join(grid_where)}
        UNION ALL
        SELECT ST_X(e.geom), ST_Y(e.geom), 1, ({OVERDUE_SQL})::int FROM events e
        WHERE e.grid_id IS NULL AND {' AND '.join(where)}"""


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
