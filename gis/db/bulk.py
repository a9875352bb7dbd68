"""Bulk intake of historic events from a CSV or GeoJSON file, set-based: validate every row, COPY them into a
staging table, and place them all with one spatial join.

Columns (CSV) or properties (GeoJSON Points): ``category`` (required), ``lon``/``lat`` (CSV; GeoJSON takes the
point), ``crs`` (wgs84 default, gcj02, bd09), ``priority`` (normal), ``source`` (referral), ``description``,
``reported_at`` (ISO 8601; default now), ``closed_at`` (a closed case). A file with any bad row is refused whole,
with the rows and what is wrong with them; nothing is stored.

The placement rules are intake's (lowest grid code on a shared edge, nearest grid within the radius, else the
street's centre queue, flagged), applied to all rows at once. The person is the grid chief, the grid's embedded
police officer for police categories, or the department for department categories: the duty roster of a past
moment is not reconstructed, and historic rows are not checked for duplicates. Each event is dispatched at its
``reported_at``, with the category's deadline from there; a row with ``closed_at`` is closed then (on time if by
the deadline). Every event gets one ``import`` step in its history.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
from sqlalchemy.engine import Engine

from gis.coords import to_wgs84
from gis.db.events import DEFAULT_RADIUS_M, MAX_DESCRIPTION, STREET_RADIUS_M
from gis.db.models import PRIORITIES, SOURCES
from gis.errors import InputError

MAX_LISTED = 20
COLUMNS = ["row", "lon", "lat", "in_crs", "in_lon", "in_lat", "category", "priority", "source", "description",
           "reported_at", "closed_at"]


@dataclass
class BulkReport:
    rows: int
    stored: int
    in_grid: int
    nearest: int
    street_queue: int
    closed: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "events_per_s": round(self.stored / self.seconds) if self.seconds else None}


def read_events_file(data: bytes, name: str) -> pd.DataFrame:
    """The rows of a CSV or GeoJSON file of events, with the columns of :data:`COLUMNS` (validated)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".geojson", ".json"):
        try:
            frame = pyogrio.read_dataframe(io.BytesIO(data))
        except Exception as exc:  # pyogrio raises several error types for unreadable input
            raise InputError(f"{name} is not a readable GeoJSON file: {exc}") from None
        kinds = set(frame.geometry.geom_type.dropna())
        if kinds - {"Point"}:
            raise InputError(f"{name}: every feature must be a Point; found {', '.join(sorted(kinds))}")
        frame = pd.DataFrame(frame.drop(columns="geometry")).assign(lon=frame.geometry.x, lat=frame.geometry.y)
    elif suffix == ".csv":
        try:
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"{name} is not a readable CSV file: {exc}") from None
    else:
        raise InputError(f"{name}: give a .csv or .geojson file")
    return _validate(frame, name)


def _validate(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in ("lon", "lat", "category") if c not in frame.columns]
    if missing:
        raise InputError(f"{name} lacks the column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(f"{name} holds no events")
    n = len(frame)
    out = pd.DataFrame({"row": np.arange(1, n + 1)})
    problems: list[str] = []

    def text(column: str, default: str) -> pd.Series:
        if column not in frame.columns:
            return pd.Series([default] * n, dtype=object)
        return frame[column].astype(object).where(frame[column].notna(), default).astype(str).replace("", default)

    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    problems += [f"row {i + 1}: lon/lat must be numbers in range (lon -180..180, lat -90..90)"
                 for i in np.flatnonzero(bad)]
    crs = text("crs", "wgs84").str.lower().str.replace("-", "", regex=False)
    crs = crs.replace({"epsg:4326": "wgs84", "4326": "wgs84"})
    problems += [f"row {i + 1}: unknown coordinate system {crs[i]!r} (wgs84, gcj02, bd09)"
                 for i in np.flatnonzero(~crs.isin(["wgs84", "gcj02", "bd09"]))]
    priority, source = text("priority", "normal"), text("source", "referral")
    problems += [f"row {i + 1}: unknown priority {priority[i]!r}" for i in np.flatnonzero(~priority.isin(PRIORITIES))]
    problems += [f"row {i + 1}: unknown source {source[i]!r}" for i in np.flatnonzero(~source.isin(SOURCES))]
    description = text("description", "")
    problems += [f"row {i + 1}: the description is longer than {MAX_DESCRIPTION} characters"
                 for i in np.flatnonzero(description.str.len() > MAX_DESCRIPTION)]
    category = text("category", "")
    problems += [f"row {i + 1}: the category is empty" for i in np.flatnonzero(category == "")]
    now = pd.Timestamp.now(tz="UTC")
    reported = pd.to_datetime(text("reported_at", ""), errors="coerce", utc=True, format="ISO8601").astype(
        "datetime64[us, UTC]")
    given = text("reported_at", "") != ""
    problems += [f"row {i + 1}: reported_at is not an ISO 8601 time" for i in np.flatnonzero(given & reported.isna())]
    reported = reported.fillna(now.as_unit("us"))
    closed = pd.to_datetime(text("closed_at", ""), errors="coerce", utc=True, format="ISO8601")
    closed_given = text("closed_at", "") != ""
    problems += [f"row {i + 1}: closed_at is not an ISO 8601 time"
                 for i in np.flatnonzero(closed_given & closed.isna())]
    problems += [f"row {i + 1}: closed_at comes before reported_at"
                 for i in np.flatnonzero((closed < reported).fillna(False).to_numpy())]
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise InputError(f"{name}: {len(problems)} problem(s), nothing stored: "
                         + "; ".join(problems[:MAX_LISTED]) + more)
    wgs_lon, wgs_lat = lon.copy(), lat.copy()
    for i in np.flatnonzero(crs.to_numpy() != "wgs84"):  # per point: rare in bulk data, exact inverse
        wgs_lon[i], wgs_lat[i] = to_wgs84(float(lon[i]), float(lat[i]), crs[i])
    return out.assign(lon=wgs_lon, lat=wgs_lat, in_crs=crs.to_numpy(), in_lon=lon, in_lat=lat,
                      category=category.to_numpy(), priority=priority.to_numpy(), source=source.to_numpy(),
                      description=description.to_numpy(), reported_at=reported, closed_at=closed)


# Placement in three set-based steps, so that the costly searches run only for the few rows that need them:
# the grid containing each point (lowest code on a shared edge); for the rest, the nearest grid within the radius;
# for what is still unplaced, the nearest street.
_PLACE = [
    """
    CREATE TEMP TABLE placed ON COMMIT DROP AS
    SELECT s.*, c.route, c.department_code AS category_department,
           (CASE s.priority WHEN 'urgent' THEN c.hours_urgent WHEN 'high' THEN c.hours_high ELSE c.hours_normal END)
               * interval '1 hour' AS period,
           i.id AS grid_id, i.code::text AS grid_code, i.community_id,
           CASE WHEN i.id IS NOT NULL THEN 'inside' ELSE 'street' END AS how,
           NULL::float8 AS grid_d, NULL::int AS street_id, NULL::float8 AS street_d
    FROM staging s JOIN categories c ON c.code = s.category
    LEFT JOIN LATERAL (SELECT g.id, g.code, g.community_id FROM grids g
                       WHERE ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326))
                       ORDER BY g.code LIMIT 1) i ON true
    """,
    """
    UPDATE placed p SET grid_id = n.id, grid_code = n.code, community_id = n.community_id, how = 'nearest',
                        grid_d = n.d
    FROM placed q CROSS JOIN LATERAL (
        SELECT k.id, k.code, k.community_id, k.d FROM (
            SELECT g.id, g.code, g.community_id,
                   ST_Distance(g.geom::geography, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)::geography) AS d
            FROM grids g ORDER BY g.geom <-> ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326) LIMIT 4) k
        WHERE k.d <= %(radius)s ORDER BY k.d, k.code LIMIT 1) n
    WHERE q.grid_id IS NULL AND p.row = q.row
    """,
    """
    UPDATE placed p SET street_id = st.id, street_d = st.d
    FROM placed q CROSS JOIN LATERAL (
        SELECT u.id, ST_Distance(u.geom::geography, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)::geography) AS d
        FROM (SELECT a.id, a.geom FROM admin_units a WHERE a.level = 'street'
              ORDER BY a.geom <-> ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326) LIMIT 3) u
        ORDER BY 2, 1 LIMIT 1) st
    WHERE q.grid_id IS NULL AND p.row = q.row
    """,
]

_INSERT = """
WITH chief AS (SELECT grid_id, staff_id FROM staff_grids WHERE duty = 'chief'),
police AS (  -- per grid: its embedded police officer (auxiliary police only when there is no officer)
    SELECT DISTINCT ON (sg.grid_id) sg.grid_id, s.id AS staff_id
    FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
    WHERE s.active AND s.role IN ('police', 'auxiliary_police') ORDER BY sg.grid_id, s.role <> 'police', s.id),
new AS (
    INSERT INTO events (category_code, priority, source, description, photos, input_crs, input_lon, input_lat, geom,
        city_id, grid_id, grid_code, community_id, street_id, queue, assignee_staff_id, department_code,
        assignment_rule, flagged, state, reported_at, dispatched_at, due_at, closed_at, closed_on_time, updated_at)
    SELECT p.category, p.priority, p.source, coalesce(p.description, ''), '[]'::jsonb, p.in_crs, p.in_lon, p.in_lat,
        ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), su.city_id, p.grid_id, p.grid_code, p.community_id,
        coalesce(cu.parent_id, p.street_id),
        CASE WHEN p.grid_id IS NULL THEN 'street_centre' WHEN p.route = 'department' THEN 'department'
             WHEN p.route = 'police' THEN 'police' ELSE 'grid' END,
        CASE WHEN p.grid_id IS NULL OR p.route = 'department' THEN NULL
             WHEN p.route = 'police' THEN police.staff_id ELSE chief.staff_id END,
        CASE WHEN p.grid_id IS NULL OR p.route = 'department' THEN p.category_department END,
        CASE p.how WHEN 'inside' THEN 'bulk: grid ' || p.grid_code || ' contains the point (lowest code on a '
                                      'shared edge); ' || CASE p.route WHEN 'department' THEN 'the department'
                                      WHEN 'police' THEN 'the embedded police officer' ELSE 'the grid chief' END
                   WHEN 'nearest' THEN 'bulk: the nearest grid, ' || p.grid_code || ', ' || round(p.grid_d::numeric, 1)
                                       || ' m away'
                   ELSE 'bulk: no grid within ' || %(radius)s || ' m: the street''s centre queue, flagged' END,
        p.how <> 'inside',
        CASE WHEN p.closed_at IS NOT NULL THEN 'closed' ELSE 'dispatched' END,
        p.reported_at, p.reported_at, p.reported_at + p.period, p.closed_at,
        CASE WHEN p.closed_at IS NOT NULL THEN p.closed_at <= p.reported_at + p.period END, now()
    FROM placed p
    LEFT JOIN admin_units cu ON cu.id = p.community_id
    LEFT JOIN admin_units su ON su.id = coalesce(cu.parent_id, p.street_id)
    LEFT JOIN chief ON chief.grid_id = p.grid_id
    LEFT JOIN police ON police.grid_id = p.grid_id
    ORDER BY p.row
    RETURNING id, state, reported_at)
INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note)
SELECT id, 'import', NULL, state, %(author)s, 'system', reported_at, %(note)s FROM new
"""


def bulk_intake(engine: Engine, frame: pd.DataFrame, *, author: str = "gridpatrol", source_name: str = "file",
                radius_m: float = DEFAULT_RADIUS_M) -> BulkReport:
    """Store the validated rows of :func:`read_events_file` in one transaction."""
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute("SELECT code FROM categories")
        known = {r[0] for r in cur.fetchall()}
        unknown = sorted(set(frame["category"]) - known)
        if unknown:
            rows = frame.loc[frame["category"].isin(unknown), "row"].head(MAX_LISTED).tolist()
            raise InputError(f"unknown category {', '.join(map(repr, unknown[:10]))} (rows {rows}); use one of "
                             f"{', '.join(sorted(known))}; nothing stored")
        cur.execute("SET LOCAL jit = off")  # compiling these plans costs more than running them
        cur.execute("""CREATE TEMP TABLE staging (row int, lon float8, lat float8, in_crs text, in_lon float8,
                       in_lat float8, category text, priority text, source text, description text,
                       reported_at timestamptz, closed_at timestamptz) ON COMMIT DROP""")
        buffer = io.StringIO()
        frame[COLUMNS].to_csv(buffer, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        buffer.seek(0)
        cur.copy_expert("COPY staging FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute("ANALYZE staging")
        for statement in _PLACE:
            cur.execute(statement, {"radius": radius_m})
        cur.execute("SELECT row, street_d FROM placed WHERE grid_id IS NULL AND (street_d IS NULL OR street_d > %s) "
                    "ORDER BY row LIMIT %s", (STREET_RADIUS_M, MAX_LISTED))
        lost = cur.fetchall()
        if lost:
            raise InputError(f"{len(lost)}+ row(s) lie outside the service area (no street within "
                             f"{STREET_RADIUS_M:,.0f} m): rows {[r[0] for r in lost]}; nothing stored")
        cur.execute("ANALYZE placed")
        cur.execute("SELECT how, count(*) FROM placed GROUP BY how")
        how = dict(cur.fetchall())
        cur.execute(_INSERT, {"radius": radius_m, "author": author,
                              "note": f"imported from {source_name}"})
        stored = cur.rowcount
        cur.execute("SELECT count(*) FROM placed WHERE closed_at IS NOT NULL")
        (closed,) = cur.fetchone() or (0,)
    return BulkReport(rows=len(frame), stored=stored, in_grid=how.get("inside", 0), nearest=how.get("nearest", 0),
                      street_queue=how.get("street", 0), closed=closed, seconds=time.perf_counter() - started)
