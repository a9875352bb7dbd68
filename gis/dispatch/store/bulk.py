"""Bulk intake of historic events from a CSV or GeoJSON file, set-based: validate every row, COPY them into
staging tables, place them all with one spatial join, check the foreign keys set-based and insert them with one
statement per table: a file's many closed cases (``ARCHIVE_MIN_ROWS``) as an archive partition of their own
(migration 0012), the rest into the live partition.

Columns (CSV) or properties (GeoJSON Points): ``category`` (required), ``lon``/``lat`` (CSV; GeoJSON takes the
point), ``crs`` (wgs84 default, gcj02, bd09), ``priority`` (normal), ``source`` (referral), ``description``,
``reported_at`` (ISO 8601; default now), ``closed_at`` (a closed case). A file with any bad row is refused whole,
with the rows and what is wrong with them; nothing is stored.

The placement rules are intake's (lowest grid code on a shared edge, nearest grid within the radius, else the
street's centre queue, flagged), applied to all rows at once. The person is the grid chief, the grid's embedded
police officer for police categories, or the department for department categories: the duty roster of a past
moment is not reconstructed, and historic rows are not checked for duplicates. Each event is dispatched at its
``reported_at``, with the category's deadline from there; a row with ``closed_at`` is closed then (on time if by
the deadline). The import is recorded once per file (``event_imports``, one row for the closed cases and one for
the open ones), and is the first step of each event's history. In the live partition the ids follow the grid
codes, then the file's order; in an archive, the staged rows' order (see ``_space_order``).
"""

from __future__ import annotations

import io
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from gis.access.scope import Scope
from gis.dispatch.rules import DEFAULT_RADIUS_M, MAX_DESCRIPTION, STREET_RADIUS_M
from gis.errors import ConflictError, ForbiddenError, InputError
from gis.geo.coords import to_wgs84
from gis.vocabulary import INPUT_CRS, PRIORITIES, SOURCES

MAX_LISTED = 20
ARCHIVE_MIN_ROWS = 10_000
"""A file with at least this many closed cases stores them in an archive partition of their own (migration 0012):
built in one pass, which is many times faster than adding each row to the events table's indexes; a smaller
file's cases go into the live partition (a partition per small file would only make every query longer)."""
MAX_PARTS = 4
"""At most this many archive partitions per file (one per processor, up to this)."""
MAX_ARCHIVES = 200
"""Past this many archive partitions, closed cases go into the live partition too: each partition is one more
index probe for every query on events that does not name a partition."""
COLUMNS = ["row", "lon", "lat", "in_crs", "in_lon", "in_lat", "category", "priority", "source", "description",
           "reported_at", "closed_at"]
_TYPED = {"lon": "float64", "lat": "float64", "category": "category", "crs": "category", "priority": "category",
          "source": "category"}  # how a CSV file is read first (see _read_csv)
_CRS_NAMES = {"epsg:4326": "wgs84", "4326": "wgs84"}
# PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC; its -infinity is the least int8, which
# stands for "no closed_at" (a binary COPY of fixed-size rows has no NULL)
PG_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
NO_TIME = np.iinfo(np.int64).min

# The rows are staged by a binary COPY (numpy writes PostgreSQL's binary format in one step; pandas' CSV writer
# spent 3 s of a 200,000-row import formatting floats and times), the words as small numbers (their place in
# ``_CODES``' lists), the descriptions, when there are any, by CSV. The staging tables are unlogged tables in a
# schema of the import's own (dropped when the import ends, stored or failed; see ``bulk_intake``), so that
# PostgreSQL's parallel workers can read them and the spatial join runs on every core (a temporary table is
# private to its session: about twice as slow on 2 cores). A role that may not create a schema stages in
# temporary tables instead.
_STAGING = """
CREATE {kind} TABLE staging (row int4, lon float8, lat float8, in_lon float8, in_lat float8,
    reported_at timestamptz, closed_at timestamptz, crs int2, category int2, priority int2, source int2,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED) {drop};
CREATE {kind} TABLE staging_text (row int4, description text) {drop}
"""
# the spatial join in parallel even over the few thousand grids of a city (below the default's 8 MB)
_PARALLEL = ["SET LOCAL min_parallel_table_scan_size = 0", "SET LOCAL parallel_setup_cost = 100"]
_NUMBERS = [("row", ">i4"), ("lon", ">f8"), ("lat", ">f8"), ("in_lon", ">f8"), ("in_lat", ">f8"),
            ("reported_at", ">i8"), ("closed_at", ">i8"), ("crs", ">i2"), ("category", ">i2"), ("priority", ">i2"),
            ("source", ">i2")]
_CODES = {"crs": list(INPUT_CRS), "priority": list(PRIORITIES), "source": list(SOURCES)}  # + "category"


@dataclass
class BulkReport:
    rows: int
    stored: int
    in_grid: int
    nearest: int
    street_queue: int
    closed: int
    archives: list[str]  # the archive partitions the closed cases went into, if they did
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
        frame = _read_csv(data, name)
    else:
        raise InputError(f"{name}: give a .csv or .geojson file")
    return _validate(frame, name)


def _read_csv(data: bytes, name: str) -> pd.DataFrame:
    """The CSV file's rows: the numbers parsed as numbers and the words as categories (half the time of reading
    every column as text), unless some number is not one; then every column as text, for :func:`_validate` to say
    which rows are wrong."""
    try:
        try:
            return pd.read_csv(io.BytesIO(data), dtype=_TYPED, keep_default_na=False)
        except ValueError:
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} is not a readable CSV file: {exc}") from None


def _validate(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in ("lon", "lat", "category") if c not in frame.columns]
    if missing:
        raise InputError(f"{name} lacks the column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(f"{name} holds no events")
    n = len(frame)
    problems: list[str] = []

    def words(column: str, default: str, normalise: Callable[[str], str] = str) -> np.ndarray:
        """The column as an array of words, ``default`` where it is absent or empty: each distinct value is
        normalised once (a file of 200,000 rows holds a handful of them)."""
        if column not in frame.columns:
            return np.full(n, default, dtype=object)
        codes, values = pd.factorize(frame[column])
        distinct = np.array([normalise(str(v)) if str(v) != "" else default for v in values] + [default],
                            dtype=object)
        return distinct[codes]  # a missing value (code -1) takes the last: the default

    def wrong(values: np.ndarray, allowed: Sequence[str], what: str, hint: str = "") -> None:
        problems.extend(f"row {i + 1}: {what} {values[i]!r}{hint}" for i in np.flatnonzero(~np.isin(values, allowed)))

    def numbers(column: str) -> np.ndarray:
        if frame[column].dtype.kind == "f":
            return frame[column].to_numpy(dtype=float)
        return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)

    def times(column: str) -> tuple[pd.Series, np.ndarray]:
        """The column's times (NaT where it is absent or empty), and which rows hold something else."""
        if column not in frame.columns:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]"), np.zeros(n, dtype=bool)
        given = frame[column].astype(object).where(frame[column].notna(), "").astype(str)  # GeoJSON: times, or NaT
        parsed = pd.to_datetime(given, errors="coerce", utc=True, format="ISO8601").astype("datetime64[us, UTC]")
        return parsed, ((given != "") & parsed.isna()).to_numpy()

    lon, lat = numbers("lon"), numbers("lat")
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    problems += [f"row {i + 1}: lon/lat must be numbers in range (lon -180..180, lat -90..90)"
                 for i in np.flatnonzero(bad)]
    crs = words("crs", "wgs84", lambda v: _CRS_NAMES.get(v.lower().replace("-", ""), v.lower().replace("-", "")))
    wrong(crs, INPUT_CRS, "unknown coordinate system", " (wgs84, gcj02, bd09)")
    priority, source = words("priority", "normal"), words("source", "referral")
    wrong(priority, PRIORITIES, "unknown priority")
    wrong(source, SOURCES, "unknown source")
    description = (frame["description"].fillna("").astype(str) if "description" in frame.columns
                   else pd.Series("", index=frame.index, dtype=object))
    problems += [f"row {i + 1}: the description is longer than {MAX_DESCRIPTION} characters"
                 for i in np.flatnonzero(description.str.len() > MAX_DESCRIPTION)]
    category = words("category", "")
    problems += [f"row {i + 1}: the category is empty" for i in np.flatnonzero(category == "")]
    reported, bad_reported = times("reported_at")
    problems += [f"row {i + 1}: reported_at is not an ISO 8601 time" for i in np.flatnonzero(bad_reported)]
    reported = reported.fillna(pd.Timestamp.now(tz="UTC").as_unit("us"))
    closed, bad_closed = times("closed_at")
    problems += [f"row {i + 1}: closed_at is not an ISO 8601 time" for i in np.flatnonzero(bad_closed)]
    problems += [f"row {i + 1}: closed_at comes before reported_at"
                 for i in np.flatnonzero((closed < reported).fillna(False).to_numpy())]
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise InputError(f"{name}: {len(problems)} problem(s), nothing stored: "
                         + "; ".join(problems[:MAX_LISTED]) + more)
    wgs_lon, wgs_lat = lon.copy(), lat.copy()
    for i in np.flatnonzero(crs != "wgs84"):  # per point: rare in bulk data, exact inverse
        wgs_lon[i], wgs_lat[i] = to_wgs84(float(lon[i]), float(lat[i]), crs[i])
    return pd.DataFrame({"row": np.arange(1, n + 1), "lon": wgs_lon, "lat": wgs_lat, "in_crs": crs, "in_lon": lon,
                         "in_lat": lat, "category": category, "priority": priority, "source": source,
                         "description": description.to_numpy(dtype=object),
                         "reported_at": reported.array, "closed_at": closed.array})


# Placement (the rule: gis/dispatch/sql/placement.sql) in three set-based steps, so that the costly searches run
# only for the few rows that need them: the grid containing each point (lowest code on a shared edge); for the rest,
# the nearest grid within the radius (``gridpatrol_grid_near``, row by row); for what is still unplaced, the nearest
# street. Steps 1 and 3 are the rule's functions carried out over the whole file at once: the first walks the grids
# and, for each, finds its points through a GiST index on the staged points, so that each grid polygon is tested
# against all its points in a row, which lets PostGIS prepare it once (a point-in-polygon index) instead of testing
# every point against raw polygons (200,000 points: 1.2 s, against 2.5 s calling ``gridpatrol_grid_at`` per row).
# It keeps only (row, grid id): what each row carries is read from the staged rows when the events are written.
_PLACE = [
    "CREATE INDEX ON staging USING gist (geom)",
    "ANALYZE staging (row, category, closed_at)",
    """
    CREATE {kind} TABLE hits {drop} AS
    SELECT h.row, g.id AS grid_id FROM (
        SELECT p.row, min(g.code::text) AS code FROM grids g JOIN staging p ON ST_Intersects(g.geom, p.geom)
        GROUP BY p.row) h JOIN grids g ON g.code = h.code
    """,
    "ANALYZE hits",
]
# the rows no grid contains (``some``: there are any): their nearest grid within the radius, else their street
_FALLBACK = [
    """
    CREATE {kind} TABLE fallback {drop} AS
    SELECT s.row, s.geom, n.id AS grid_id, n.d AS grid_d, NULL::int AS street_id, NULL::float8 AS street_d
    FROM staging s LEFT JOIN LATERAL gridpatrol_grid_near(s.geom, %(radius)s) n ON true
    WHERE %(some)s AND NOT EXISTS (SELECT 1 FROM hits h WHERE h.row = s.row)
    """,
    # ``gridpatrol_street_near`` for the rows no grid is near: of the three nearest by their boxes, the nearest on
    # the spheroid, ties to the lower code. The distances are taken street by street (``ORDER BY u.id``): PostGIS
    # keeps a street's outline indexed between calls while the same street comes again (a street has hundreds of
    # points; 3,500 rows took 5.3 s point by point, alternating streets, 4.4 s unordered, 1.6 s street by street)
    """
    CREATE {kind} TABLE streets {drop} AS
    WITH pairs AS MATERIALIZED (
        SELECT q.row, q.geom AS point, u.id, u.code, u.geom AS street
        FROM fallback q CROSS JOIN LATERAL (SELECT a.id, a.code::text AS code, a.geom FROM admin_units a
                                            WHERE a.level = 'street' ORDER BY a.geom <-> q.geom LIMIT 3) u
        WHERE q.grid_id IS NULL ORDER BY u.id)
    SELECT DISTINCT ON (m.row) m.row, m.id, m.d
    FROM (SELECT p.row, p.id, p.code, ST_Distance(p.street::geography, p.point::geography) AS d FROM pairs p) m
    ORDER BY m.row, m.d, m.code
    """,
    "UPDATE fallback f SET street_id = st.id, street_d = st.d FROM streets st WHERE st.row = f.row",
]

# Who and which units the events of each grid go to, one row per grid the file's rows were placed on (and one per
# street whose centre queue takes rows): a few thousand rows however long the file. The rows they refer to are
# locked from here before the insert (see ``_lock_references``).
_UNITS = """
CREATE {kind} TABLE units {drop} AS
WITH used AS (SELECT DISTINCT grid_id FROM hits UNION SELECT grid_id FROM fallback WHERE grid_id IS NOT NULL),
chief AS (SELECT grid_id, staff_id FROM staff_grids WHERE duty = 'chief'),
police AS (  -- per grid: its embedded police officer (auxiliary police only when there is no officer)
    SELECT DISTINCT ON (sg.grid_id) sg.grid_id, s.id AS staff_id
    FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
    WHERE s.active AND s.role IN ('police', 'auxiliary_police') ORDER BY sg.grid_id, s.role <> 'police', s.id)
SELECT g.id AS key, g.code::text AS grid_code, g.id AS grid_id, g.community_id,
       cu.parent_id AS street_id, su.city_id, chief.staff_id AS chief_id, police.staff_id AS police_id,
       rank() OVER (ORDER BY g.code)::int8 AS ord,  -- the order the events are stored in: by grid code
       'bulk: grid ' || g.code || ' contains the point (lowest code on a shared edge); the grid chief' AS rule_chief,
       'bulk: grid ' || g.code || ' contains the point (lowest code on a shared edge); the embedded police officer'
           AS rule_police,
       'bulk: grid ' || g.code || ' contains the point (lowest code on a shared edge); the department'
           AS rule_department
FROM used JOIN grids g ON g.id = used.grid_id
LEFT JOIN admin_units cu ON cu.id = g.community_id LEFT JOIN admin_units su ON su.id = cu.parent_id
LEFT JOIN chief ON chief.grid_id = g.id LEFT JOIN police ON police.grid_id = g.id
UNION ALL
SELECT -st.id, NULL, NULL, NULL, st.id, st.city_id, NULL, NULL, 0, NULL, NULL, NULL  -- keyed by minus the street
FROM (SELECT DISTINCT street_id FROM fallback WHERE grid_id IS NULL) q JOIN admin_units st ON st.id = q.street_id
"""

# Working time laid out for the cities the file's rows went to (the rule of gis/dispatch/sql/worktime.sql): per city
# its time zone and working day (the periods' starts and ends in seconds after midnight, ``cum`` the working seconds
# before each period, ``d`` a day's), and per day from two days before its first report to ``horizon`` days after its
# last, whether it is a working day and ``n``, the working days before it. A moment's place in working time is then
# ``n × d`` plus what its day worked before it, and a deadline the working day numbered ``⌈target ÷ d⌉ − 1`` at the
# time its remainder falls: two hash joins for the whole file, where calling gridpatrol_deadline row by row cost more
# than the rest of the import (200,000 rows: 7.5 s). A few thousand rows however long the file.
_WORK_DAYS = [
    """
    CREATE {kind} TABLE work_cities {drop} AS
    SELECT c.id AS city_id, coalesce(cs.timezone, 'Asia/Shanghai') AS tz, c.code IS NOT NULL AS national,
           p.st, p.en, p.cum, p.cum[array_length(p.cum, 1)] AS d
    FROM (SELECT DISTINCT city_id FROM units WHERE city_id IS NOT NULL) u JOIN admin_units c ON c.id = u.city_id
    LEFT JOIN city_settings cs ON cs.city_id = u.city_id
    CROSS JOIN LATERAL (
        SELECT array_agg(extract(epoch FROM q.s) ORDER BY q.i) AS st, array_agg(extract(epoch FROM q.e) ORDER BY q.i)
                   AS en, array_prepend(0::float8, array_agg(q.before::float8 ORDER BY q.i)) AS cum
        FROM (SELECT p.s, p.e, p.i, sum(extract(epoch FROM p.e - p.s)) OVER (ORDER BY p.i) AS before
              FROM unnest(coalesce(cs.work_starts, '{{08:30,13:30}}'), coalesce(cs.work_ends, '{{12:00,17:30}}'))
                   WITH ORDINALITY p(s, e, i)) q) p
    WHERE p.cum[array_length(p.cum, 1)] > 0
    """,
    """
    CREATE {kind} TABLE work_days {drop} AS
    SELECT y.city_id, y.day, y.working,
           coalesce(count(*) FILTER (WHERE y.working) OVER (PARTITION BY y.city_id ORDER BY y.day
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::float8 AS n
    FROM (SELECT w.city_id, g.t::date AS day,
                 coalesce((SELECT x.working FROM calendar_days x WHERE x.day = g.t::date
                           AND (x.city_id = w.city_id OR (x.city_id IS NULL AND w.national))
                           ORDER BY x.city_id NULLS LAST LIMIT 1), extract(isodow FROM g.t) < 6) AS working
          FROM work_cities w, (SELECT min(reported_at) AS first, max(reported_at) AS last FROM staging) r,
               generate_series((r.first AT TIME ZONE 'UTC')::date - 2,
                               (r.last AT TIME ZONE 'UTC')::date + %(horizon)s, interval '1 day') g(t)) y
    """,
    "ANALYZE work_cities, work_days",
]
# what a moment's day worked before it (up to four periods), and the time of day the remainder ``_R`` falls on
_R = "(pt.target - pt.k * wc.d)"
_WORKED = " + ".join(f"coalesce(greatest(least(td.tod, wc.en[{i}]) - wc.st[{i}], 0), 0)" for i in range(1, 5))
_TIME_AT = " ".join(["CASE", *(f"WHEN {_R} <= wc.cum[{i + 1}] THEN wc.st[{i}] + {_R} - wc.cum[{i}]" for i in (1, 2, 3)),
                      f"ELSE wc.st[4] + {_R} - wc.cum[4] END"])


def _work_days(cur: Any, kind: dict[str, str], known: list[str]) -> None:
    """Lay out ``work_cities``, then ``work_days`` far enough: past a file's last report by its longest deadline in
    the shortest working day of its cities, with the weekends and the longest holidays besides (a deadline beyond
    it is still right: the insert falls back on the rule itself)."""
    cities, days, analyze = _WORK_DAYS
    cur.execute(cities.format(**kind))
    cur.execute("SELECT max(greatest(hours_urgent, hours_high, hours_normal)) FROM categories WHERE code = ANY(%s)",
                (known,))
    hours = float((cur.fetchone() or (None,))[0] or 72)
    cur.execute("SELECT min(d) / 3600 FROM work_cities")
    daily = float((cur.fetchone() or (None,))[0] or 7.5)
    horizon = math.ceil(hours / max(daily, 0.5) * 7 / 5) + 45
    cur.execute(days.format(**kind), {"horizon": horizon})
    cur.execute(analyze)


# (table, key column, the keys the events will refer to): every foreign key the insert sets.
_REFERENCES = [
    ("categories", "code", "SELECT unnest(%(used)s::text[])"),
    ("departments", "code", "SELECT department_code FROM categories WHERE code = ANY(%(used)s)"),
    ("grids", "id", "SELECT grid_id FROM units"),
    ("admin_units", "id", "SELECT community_id FROM units UNION SELECT street_id FROM units "
                          "UNION SELECT city_id FROM units"),
    ("staff", "id", "SELECT chief_id FROM units UNION SELECT police_id FROM units"),
]

# The rows go in with one statement per table: the file's closed cases into an archive partition of their own
# when there are many of them (``ARCHIVE_MIN_ROWS``), everything else into the events table (its live partition).
_INSERT = """
INSERT INTO {table} (category_code, priority, source, description, photos, input_crs, input_lon, input_lat, geom,
        city_id, grid_id, grid_code, community_id, street_id, queue, assignee_staff_id, department_code,
        assignment_rule, flagged, state, reported_at, dispatched_at, due_at, closed_at, closed_on_time, updated_at,
        import_id, archive)
    SELECT c.code, (%(priorities)s::text[])[s.priority], (%(sources)s::text[])[s.source],
        coalesce(d.description, ''), '[]'::jsonb, (%(crs)s::text[])[s.crs], s.in_lon, s.in_lat,
        s.geom, u.city_id, u.grid_id, u.grid_code, u.community_id, u.street_id,
        CASE WHEN u.grid_id IS NULL THEN 'street_centre' WHEN c.route = 'department' THEN 'department'
             WHEN c.route = 'police' THEN 'police' ELSE 'grid' END,
        CASE WHEN u.grid_id IS NULL OR c.route = 'department' THEN NULL
             WHEN c.route = 'police' THEN u.police_id ELSE u.chief_id END,
        CASE WHEN u.grid_id IS NULL OR c.route = 'department' THEN c.department_code END,
        CASE WHEN h.grid_id IS NOT NULL THEN CASE c.route WHEN 'department' THEN u.rule_department
                                                          WHEN 'police' THEN u.rule_police ELSE u.rule_chief END
             WHEN f.grid_id IS NOT NULL
                 THEN 'bulk: the nearest grid, ' || u.grid_code || ', ' || round(f.grid_d::numeric, 1) || ' m away'
             ELSE 'bulk: no grid within ' || %(radius)s || ' m: the street''s centre queue, flagged' END,
        h.grid_id IS NULL,
        CASE WHEN s.closed_at <> '-infinity' THEN 'closed' ELSE 'dispatched' END,
        s.reported_at, s.reported_at, dl.due, NULLIF(s.closed_at, '-infinity'),
        CASE WHEN s.closed_at <> '-infinity' THEN s.closed_at <= dl.due END,
        now(), CASE WHEN s.closed_at <> '-infinity' THEN %(closed_import)s ELSE %(open_import)s END, {archive}
    FROM staging s
    LEFT JOIN hits h ON h.row = s.row {stretch}
    LEFT JOIN fallback f ON f.row = s.row
    JOIN units u ON u.key = coalesce(h.grid_id, f.grid_id, -f.street_id)
    JOIN (SELECT k.n, c.code, c.route, c.department_code,  -- by number: the planner then knows how many rows
                 ARRAY[c.hours_urgent, c.hours_high, c.hours_normal]::float8[] AS hours, c.clock = 'wall' AS wall
          FROM unnest(%(categories)s::text[]) WITH ORDINALITY k(code, n) JOIN categories c ON c.code = k.code) c
        ON c.n = s.category
    -- the deadline: on the clock for urgent reports and wall-clock categories; else in the city's working time,
    -- by arithmetic on its working days (``work_days``: two hash joins, see _WORK_DAYS) and, should the file reach
    -- past them, by the rule itself (gridpatrol_deadline, worktime.sql)
    -- (each ``OFFSET 0`` keeps a value computed once a row: PostgreSQL would otherwise copy the expression into
    -- every place that uses it)
    LEFT JOIN work_cities wc ON wc.city_id = u.city_id
    CROSS JOIN LATERAL (SELECT l.local::date AS day, extract(epoch FROM l.local::time) AS tod
                        FROM (SELECT s.reported_at AT TIME ZONE wc.tz AS local) l OFFSET 0) td
    LEFT JOIN work_days w0 ON w0.city_id = u.city_id AND w0.day = td.day
    CROSS JOIN LATERAL (SELECT q.wall, q.target, ceil(q.target / wc.d) - 1 AS k FROM (
        SELECT c.wall OR s.priority = 1 OR u.city_id IS NULL AS wall,
            w0.n * wc.d + CASE WHEN w0.working THEN {worked} ELSE 0 END + c.hours[s.priority] * 3600 AS target) q
        OFFSET 0) pt
    LEFT JOIN work_days w1 ON NOT pt.wall AND w1.city_id = u.city_id AND w1.working AND w1.n = pt.k
    CROSS JOIN LATERAL (SELECT CASE
        WHEN pt.wall THEN s.reported_at + make_interval(secs => c.hours[s.priority] * 3600)
        WHEN w1.day IS NOT NULL THEN (w1.day + make_interval(secs => {time_at})) AT TIME ZONE wc.tz
        ELSE gridpatrol_deadline(u.city_id, s.reported_at, c.hours[s.priority], false) END AS due OFFSET 0) dl
    LEFT JOIN staging_text d ON d.row = s.row
    WHERE {rows}
    {order}
""".replace("{worked}", _WORKED).replace("{time_at}", _TIME_AT)
# The live partition's rows go in grid by grid in code order (then in the file's order): each index then takes
# its new entries in runs of neighbours (the grid's pages of the (grid, state) and assignee indexes, one corner of
# the spatial index) instead of all over; a tenth of the insert's time. One number to sort by: a sort on (grid
# code, time) took half a second of 200,000 rows. An archive builds its indexes by sorting, whatever the order of
# its rows: they keep the staging table's.
_LIVE_ORDER = "ORDER BY (u.ord << 32) | s.row"


def _space_order(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The rows in Z-order of their points (16 bits a coordinate over the file's extent). Staged in that order,
    neighbours lie together in the staging table: its spatial index is built from near-sorted points, and each
    grid's probe of it reads a few pages, not points strewn over the whole table (the rows keep their numbers)."""
    def spread(v: np.ndarray) -> np.ndarray:  # the 16 bits of v, one every other bit
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        return (v | (v << 1)) & 0x55555555

    def cells(v: np.ndarray) -> np.ndarray:
        return ((v - v.min()) / max(float(np.ptp(v)), 1e-12) * 65535).astype(np.uint32)

    return np.argsort(spread(cells(lon)) | (spread(cells(lat)) << 1), kind="stable")


def _copy_numbers(cur: Any, table: str, frame: pd.DataFrame, codes: dict[str, list[str]]) -> None:
    """COPY the numeric columns of ``frame`` into ``table`` in PostgreSQL's binary format (no NULLs); each word
    column as its value's place (from 1) in ``codes``' list for it."""
    values = {
        "row": frame["row"].to_numpy(), "lon": frame["lon"].to_numpy(), "lat": frame["lat"].to_numpy(),
        "in_lon": frame["in_lon"].to_numpy(), "in_lat": frame["in_lat"].to_numpy(),
        "reported_at": ((frame["reported_at"] - PG_EPOCH) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64),
        "closed_at": ((frame["closed_at"] - PG_EPOCH) // pd.Timedelta(microseconds=1)).astype("Int64")
        .to_numpy(dtype=np.int64, na_value=NO_TIME),
    }
    for name, words in codes.items():
        values[name] = pd.Categorical(frame["in_crs" if name == "crs" else name], categories=words).codes + 1
        assert values[name].min() > 0, f"{name}: a value outside {words} (validation lets none through)"
    layout = [("fields", ">i2")]
    for name, kind in _NUMBERS:
        layout += [(f"{name}_size", ">i4"), (name, kind)]
    tuples = np.empty(len(frame), dtype=np.dtype(layout))
    tuples["fields"] = len(_NUMBERS)
    for name, kind in _NUMBERS:
        tuples[f"{name}_size"] = np.dtype(kind).itemsize
        tuples[name] = values[name]
    tuples = tuples[_space_order(values["lon"], values["lat"])]
    data = b"PGCOPY\n\xff\r\n\0" + (0).to_bytes(4, "big") * 2 + tuples.tobytes() + (-1).to_bytes(2, "big", signed=True)
    cur.copy_expert(f"COPY {table} ({', '.join(n for n, _ in _NUMBERS)}) FROM STDIN WITH (FORMAT binary)",
                    io.BytesIO(data))


def _lock_references(cur: Any, used: list[str]) -> bool:
    """Check the insert's foreign keys set-based, the way PostgreSQL's per-row checks do it, and say whether the
    per-row checks may be skipped. ``used``: the file's categories.

    Every row the new events will refer to is locked FOR KEY SHARE (it cannot be deleted, nor its key changed,
    until this transaction ends) and must exist; a row missing here was deleted during the import, and the import
    stops with nothing stored. The keys are read from ``units`` (one row per grid), not from the file's rows.
    Skipping the per-row checks (``session_replication_role = replica``, two thirds of the insert's time) needs a
    superuser or the right to set that parameter (the embedded server grants it to the service's role); without
    it they run as usual, which is correct and slower.
    """
    for table, key, wanted in _REFERENCES:
        cur.execute(f"SELECT (SELECT count(DISTINCT k) FROM ({wanted}) w(k)), "
                    f"(SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {key} IN ({wanted}) FOR KEY SHARE) t)",
                    {"used": used})
        wanted_n, found = cur.fetchone()
        if found != wanted_n:
            raise ConflictError(f"{wanted_n - found} {table} row(s) the events refer to were deleted during the "
                                "import; nothing stored, try again")
    cur.execute("SELECT current_setting('is_superuser') = 'on' "
                "OR has_parameter_privilege('session_replication_role', 'SET')")
    (allowed,) = cur.fetchone()
    if allowed:
        cur.execute("SET LOCAL session_replication_role = replica")
    return bool(allowed)


def _parts(closed: int, archive_min_rows: int) -> int:
    """How many archive partitions a file's ``closed`` cases are built as (0: none, they go into the live one)."""
    if closed < archive_min_rows:
        return 0
    processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(processors, MAX_PARTS, closed // max(archive_min_rows, 1)))


def _may_archive(cur: Any, parts: int) -> bool:
    """Whether this role may build archive partitions (it may create a schema and owns the events table) and
    ``parts`` more are allowed."""
    cur.execute("SELECT has_database_privilege(current_database(), 'CREATE'), pg_has_role(relowner, 'USAGE'), "
                "(SELECT count(*) - 1 FROM pg_inherits WHERE inhparent = 'events'::regclass) "
                "FROM pg_class WHERE oid = 'events'::regclass")
    may_create, owner, archives = cur.fetchone()
    return bool(may_create and owner) and archives + parts <= MAX_ARCHIVES


def _guard(token: str) -> int:
    """The advisory lock an archived import holds while it runs, by its token: what ``_sweep`` tells the
    leftovers of a dead import from the tables of a running one by."""
    return (0x6770 << 48) | int(token, 16)


def _sweep(engine: Engine, mine: str | None = None) -> None:
    """Drop what archived imports left behind when they failed or their process died (their staging schema,
    their archive tables not attached): those of ``mine``, and those of any import not running any more."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        found = conn.exec_driver_sql(
            "SELECT n.nspname, NULL FROM pg_namespace n WHERE n.nspname LIKE 'gridpatrol\\_import\\_%%' "
            "UNION ALL SELECT c.relnamespace::regnamespace::text, c.relname FROM pg_class c "
            "WHERE c.relname LIKE 'events\\_pending\\_%%' AND c.relkind = 'r' AND NOT c.relispartition").all()
        for schema, table in found:
            token = (table or schema).split("_")[2]
            if len(token) != 12 or not all(ch in "0123456789abcdef" for ch in token):
                continue  # not a name this module gives
            if token != mine and not conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s)",
                                                          (_guard(token),)).scalar():
                continue  # that import is running
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{table}" if table else
                                 f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            if token != mine:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (_guard(token),))


def _copy_definition(cur: Any, table: str, archive_id: int) -> list[str]:
    """The statements that give ``table`` the events table's indexes and foreign keys (all but the import's: its
    record is written with the events, after the table is built). Attaching the table then adopts them."""
    prefix = f"events_archive_{archive_id}_"  # the archive's names for the parent's indexes and keys
    cur.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'events'::regclass ORDER BY 1")
    statements = [f"ALTER TABLE {table} ADD CONSTRAINT {prefix}pkey PRIMARY KEY (id)"]
    statements += [re.sub(r"^CREATE (UNIQUE )?INDEX events_(\S+) ON (ONLY )?\S+ ",
                          rf"CREATE \1INDEX {prefix}\2 ON {table} ", sql) for (sql,) in cur.fetchall()]
    cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'events'::regclass "
                "AND contype = 'f' AND conname <> 'events_import_id_fkey' ORDER BY conname")
    statements += [f"ALTER TABLE {table} ADD CONSTRAINT {name.replace('events_', prefix, 1)} {sql}"
                   for name, sql in cur.fetchall()]
    return statements


def _build_part(engine: Engine, schema: str, table: str, archive_id: int, part: int, parts: int, total: int,
                values: dict[str, Any]) -> int:
    """Build one archive partition, in a transaction of its own, from the committed staging schema: the file's
    closed cases in the ``part``-th of ``parts`` stretches of its ``total`` rows, their indexes (each in one pass
    over the rows) and their foreign keys (PostgreSQL's own check, a join per key). It is committed unattached:
    nothing reads it until the import's transaction attaches it. The number of rows."""
    with engine.begin() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for setting in (f"SET LOCAL search_path = {schema}, public", "SET LOCAL jit = off",
                        "SET LOCAL work_mem = '256MB'"):
            cur.execute(setting)
        if parts > 1:  # one processor each: the partitions are built side by side
            cur.execute("SET LOCAL max_parallel_maintenance_workers = 0")
        cur.execute(f"CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                    f"CONSTRAINT events_archive_{archive_id}_check CHECK (archive = {archive_id} "
                    "AND state = 'closed' AND idempotency_key IS NULL))")
        first, last = part * total // parts + 1, (part + 1) * total // parts
        cur.execute(_INSERT.format(table=table, archive=str(archive_id), order="",
                                   stretch=f"AND h.row BETWEEN {first} AND {last}",
                                   rows=f"s.closed_at <> '-infinity' AND s.row BETWEEN {first} AND {last}"), values)
        rows = cur.rowcount
        for statement in _copy_definition(cur, table, archive_id):
            cur.execute(statement)
    return int(rows)


def _session(cur: Any, schema: str | None) -> None:
    cur.execute("SET LOCAL jit = off")  # compiling these plans costs more than running them
    cur.execute("SET LOCAL work_mem = '256MB'")  # the inserts' sorts and joins of the whole file, in memory
    if schema is not None:
        cur.execute(f"SET LOCAL search_path = {schema}, public")
        for setting in _PARALLEL:
            cur.execute(setting)


def _known_categories(cur: Any, frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The categories there are, and those the file uses (all of them known, or the file is refused)."""
    cur.execute("SELECT code FROM categories ORDER BY code")
    known = [r[0] for r in cur.fetchall()]
    used = sorted(set(frame["category"]))
    unknown = sorted(set(used) - set(known))
    if unknown:
        rows = frame.loc[frame["category"].isin(unknown), "row"].head(MAX_LISTED).tolist()
        raise InputError(f"unknown category {', '.join(map(repr, unknown[:10]))} (rows {rows}); use one of "
                         f"{', '.join(known)}; nothing stored")
    return known, used


def _stage(cur: Any, frame: pd.DataFrame, kind: dict[str, str], known: list[str], radius_m: float,
           scope: Scope | None) -> tuple[int, int]:
    """Stage and place the file's rows (see _STAGING, _PLACE, _FALLBACK, _UNITS): how many rows no grid contains,
    and how many of those the nearest grid took. With a ``scope``, a row placed outside it refuses the file."""
    cur.execute(_STAGING.format(**kind))
    _copy_numbers(cur, "staging", frame, {**_CODES, "category": known})
    described = frame.loc[frame["description"] != "", ["row", "description"]]
    if len(described):
        buffer = io.StringIO()
        described.to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        cur.copy_expert("COPY staging_text (row, description) FROM STDIN WITH (FORMAT csv)", buffer)
    for statement in _PLACE:
        cur.execute(statement.format(**kind))
    cur.execute("SELECT count(*) FROM hits")
    (inside,) = cur.fetchone()
    for statement in _FALLBACK:  # nothing to do when every row is in a grid
        cur.execute(statement.format(**kind), {"radius": radius_m, "some": inside < len(frame)})
    cur.execute("SELECT row, street_d FROM fallback WHERE grid_id IS NULL AND (street_d IS NULL OR "
                "street_d > %s) ORDER BY row LIMIT %s", (STREET_RADIUS_M, MAX_LISTED))
    lost = cur.fetchall()
    if lost:
        raise InputError(f"{len(lost)}+ row(s) lie outside the service area (no street within "
                         f"{STREET_RADIUS_M:,.0f} m): rows {[r[0] for r in lost]}; nothing stored")
    cur.execute("SELECT count(*), count(grid_id) FROM fallback")
    unplaced, nearest = cur.fetchone() or (0, 0)
    cur.execute(_UNITS.format(**kind))
    if scope is not None and not scope.everywhere:
        cur.execute(_OUTSIDE, {"city": scope.city_id, "prefix": scope.prefix, "n": MAX_LISTED})
        outside = [r[0] for r in cur.fetchall()]
        if outside:
            raise ForbiddenError(f"{len(outside)}{'+' if len(outside) == MAX_LISTED else ''} row(s) lie outside "
                                 f"your jurisdiction (they would go to other units' grids or queues): rows "
                                 f"{outside}; nothing stored")
    cur.execute("ANALYZE fallback, units, staging_text")  # small: the inserts' joins then read them whole
    _work_days(cur, kind, known)
    return int(unplaced), int(nearest)


# the rows whose grid (or, outside every grid, whose street's queue) lies outside a jurisdiction: a city and a code
# prefix (a street's queue is inside only a jurisdiction that holds the whole street)
_OUTSIDE = """
SELECT s.row FROM staging s LEFT JOIN hits h ON h.row = s.row LEFT JOIN fallback f ON f.row = s.row
JOIN units u ON u.key = coalesce(h.grid_id, f.grid_id, -f.street_id) LEFT JOIN admin_units st ON st.id = u.street_id
WHERE u.city_id IS DISTINCT FROM %(city)s
   OR (%(prefix)s::text IS NOT NULL AND coalesce(u.grid_code, st.code, '') NOT LIKE %(prefix)s || '%%')
ORDER BY s.row LIMIT %(n)s
"""


def _record(cur: Any, state: str, rows: int, source_name: str, author: str, record_id: int | None = None) -> int:
    """The file's import record for its events imported in ``state``; its id."""
    cur.execute("INSERT INTO event_imports (id, source_name, author, state, rows, note) "
                "VALUES (coalesce(%s, nextval('event_imports_id_seq')), %s, %s, %s, %s, %s) RETURNING id",
                (record_id, source_name[:200], author[:64], state, rows, f"imported from {source_name}"))
    (record,) = cur.fetchone()
    return int(record)


def _values(known: list[str], radius_m: float, closed_import: int | None, open_import: int | None) -> dict[str, Any]:
    return {"radius": radius_m, "closed_import": closed_import, "open_import": open_import, "categories": known,
            "crs": _CODES["crs"], "priorities": _CODES["priority"], "sources": _CODES["source"]}


def bulk_intake(engine: Engine, frame: pd.DataFrame, *, author: str = "gridpatrol", source_name: str = "file",
                radius_m: float = DEFAULT_RADIUS_M, archive_min_rows: int = ARCHIVE_MIN_ROWS,
                scope: Scope | None = None) -> BulkReport:
    """Store the validated rows of :func:`read_events_file`: all of them or none.

    A file with fewer than ``archive_min_rows`` closed cases is stored in one transaction, into the live
    partition. A larger one is stored in three steps: its rows are staged and placed (committed, in a schema of
    the import's own); its closed cases are built as archive partitions side by side, one per processor (each in
    a transaction of its own, committed but not attached, so no query sees them); then one transaction writes the
    import's records and its open cases and attaches the partitions. Until that commits, the events table shows
    none of the file; if anything fails, the schema and the partitions are dropped (and an import whose process
    died is cleaned up by the next one).

    ``scope``: the importer's jurisdiction; a file with any row placed outside it is refused whole (403), so that
    no one loads cases into another unit's figures.
    """
    started = time.perf_counter()
    closed = int(frame["closed_at"].notna().sum())
    parts = _parts(closed, archive_min_rows)
    if parts:
        with engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            parts = parts if _may_archive(cur, parts) else 0
    if parts:
        report = _bulk_archived(engine, frame, closed, parts, author=author, source_name=source_name,
                                radius_m=radius_m, scope=scope)
    else:
        report = _bulk_live(engine, frame, closed, author=author, source_name=source_name, radius_m=radius_m,
                            scope=scope)
    report.seconds = time.perf_counter() - started
    return report


def _bulk_live(engine: Engine, frame: pd.DataFrame, closed: int, *, author: str, source_name: str,
               radius_m: float, scope: Scope | None) -> BulkReport:
    """The whole file (``closed`` of its cases closed) in one transaction, into the live partition."""
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        known, used = _known_categories(cur, frame)
        cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')")
        (may_create,) = cur.fetchone() or (False,)
        schema = f"gridpatrol_import_{secrets.token_hex(6)}" if may_create else None
        kind = {"kind": "UNLOGGED", "drop": ""} if schema else {"kind": "TEMP", "drop": "ON COMMIT DROP"}
        if schema is not None:
            cur.execute(f"CREATE SCHEMA {schema}")
        _session(cur, schema)
        unplaced, nearest = _stage(cur, frame, kind, known, radius_m, scope)
        set_based = _lock_references(cur, used)
        imports = {state: _record(cur, state, rows, source_name, author)
                   for state, rows in (("closed", closed), ("dispatched", len(frame) - closed)) if rows}
        cur.execute(_INSERT.format(table="events", archive="0", rows="true", order=_LIVE_ORDER, stretch=""),
                    _values(known, radius_m, imports.get("closed"), imports.get("dispatched")))
        stored = cur.rowcount
        if set_based:
            cur.execute("SET LOCAL session_replication_role = origin")
        if schema is not None:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
    return BulkReport(rows=len(frame), stored=stored, in_grid=len(frame) - unplaced, nearest=nearest,
                      street_queue=unplaced - nearest, closed=closed, archives=[], seconds=0.0)


def _bulk_archived(engine: Engine, frame: pd.DataFrame, closed: int, parts: int, *, author: str, source_name: str,
                   radius_m: float, scope: Scope | None) -> BulkReport:
    """The file in three steps (see :func:`bulk_intake`), its ``closed`` cases as ``parts`` archive partitions."""
    token = secrets.token_hex(6)
    schema = f"gridpatrol_import_{token}"
    kind = {"kind": "UNLOGGED", "drop": ""}
    side = create_engine(engine.url, poolclass=NullPool)  # the builders' own connections, not the service's pool
    try:
        with side.connect().execution_options(isolation_level="AUTOCOMMIT") as guard:
            guard.exec_driver_sql("SELECT pg_advisory_lock(%s)", (_guard(token),))  # held until the end
            _sweep(side)  # what dead imports left
            with side.begin() as conn:  # 1. staged and placed, committed for the builders to read
                cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                known, used = _known_categories(cur, frame)
                cur.execute(f"CREATE SCHEMA {schema}")
                _session(cur, schema)
                unplaced, nearest = _stage(cur, frame, kind, known, radius_m, scope)
                cur.execute("SELECT nextval('event_imports_id_seq'), relnamespace::regnamespace::text FROM pg_class "
                            "WHERE oid = 'events'::regclass")  # the ids the builders need, and where they build
                closed_import, home = cur.fetchone() or (None, None)
                cur.execute("SELECT nextval('event_archives_id_seq') FROM generate_series(1, %s)", (parts,))
                archive_ids = [r[0] for r in cur.fetchall()]
            values = _values(known, radius_m, closed_import, None)
            tables = [f"{home}.events_pending_{token}_{k}" for k in range(parts)]
            with ThreadPoolExecutor(parts) as pool:  # 2. the archive partitions, side by side
                built = [pool.submit(_build_part, side, schema, table, archive_id, k, parts, len(frame), values)
                         for k, (table, archive_id) in enumerate(zip(tables, archive_ids, strict=True))]
                with engine.begin() as conn:  # 3. the import, at once; its open cases meanwhile
                    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                    _session(cur, schema)
                    set_based = _lock_references(cur, used)
                    _record(cur, "closed", closed, source_name, author, closed_import)
                    open_import = _record(cur, "dispatched", len(frame) - closed, source_name, author) \
                        if len(frame) > closed else None
                    cur.execute(_INSERT.format(table="events", archive="0", rows="s.closed_at = '-infinity'",
                                               order=_LIVE_ORDER, stretch=""), {**values, "open_import": open_import})
                    stored = cur.rowcount
                    rows = [future.result() for future in built]
                    archives = []
                    for table, archive_id, n in zip(tables, archive_ids, rows, strict=True):
                        name = f"events_archive_{archive_id}"
                        cur.execute("INSERT INTO event_archives (id, import_id, rows) VALUES (%s, %s, %s)",
                                    (archive_id, closed_import, n))
                        cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name}_import_id_fkey FOREIGN KEY (import_id) "
                                    "REFERENCES event_imports (id)")
                        cur.execute(f"ALTER TABLE {table} RENAME TO {name}")
                        cur.execute(f"ALTER TABLE events ATTACH PARTITION {home}.{name} FOR VALUES IN ({archive_id})")
                        archives.append(f"{home}.{name}")
                    stored += sum(rows)
                    if set_based:
                        cur.execute("SET LOCAL session_replication_role = origin")
                    cur.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        _sweep(side, token)
        side.dispose()
    return BulkReport(rows=len(frame), stored=stored, in_grid=len(frame) - unplaced, nearest=nearest,
                      street_queue=unplaced - nearest, closed=closed, archives=archives, seconds=0.0)
