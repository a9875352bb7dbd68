"""Bulk intake of historic events from a CSV or GeoJSON file, set-based: validate every row, COPY them into
staging tables, place them all with one spatial join, check the foreign keys set-based and insert them with one
statement.

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
the open ones), and is the first step of each event's history. The ids follow grid and time, not the file.
"""

from __future__ import annotations

import io
import secrets
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
from gis.errors import ConflictError, InputError

MAX_LISTED = 20
COLUMNS = ["row", "lon", "lat", "in_crs", "in_lon", "in_lat", "category", "priority", "source", "description",
           "reported_at", "closed_at"]
TEXT_COLUMNS = ["row", "in_crs", "category", "priority", "source", "description"]
NO_TIME = np.iinfo(np.int64).min  # closed_us of a row with no closed_at (binary COPY has no NULL in a fixed layout)

# The rows are staged in two tables: the numbers by a binary COPY (numpy writes PostgreSQL's binary format in one
# step; pandas' CSV writer spent 3 s of a 200,000-row import formatting floats and times), the text by CSV.
# They are unlogged tables in a schema of the import's own (made and dropped in its transaction: a failed import
# leaves nothing behind), so that PostgreSQL's parallel workers can read them and the spatial join runs on every
# core (a temporary table is private to its session: about twice as slow on 2 cores). A role that may not create
# a schema stages in temporary tables instead.
_STAGING = """
CREATE {kind} TABLE staging (row int4, lon float8, lat float8, in_lon float8, in_lat float8, reported_us int8,
    closed_us int8,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED) {drop};
CREATE {kind} TABLE staging_text (row int4, in_crs text, category text, priority text, source text,
    description text) {drop}
"""
# the spatial join in parallel even over the few thousand grids of a city (below the default's 8 MB)
_PARALLEL = ["SET LOCAL min_parallel_table_scan_size = 0", "SET LOCAL parallel_setup_cost = 100"]
_NUMBERS = [("row", ">i4"), ("lon", ">f8"), ("lat", ">f8"), ("in_lon", ">f8"), ("in_lat", ">f8"),
            ("reported_us", ">i8"), ("closed_us", ">i8")]


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
# for what is still unplaced, the nearest street. The first step walks the grids and, for each, finds its points
# through a GiST index on the staged points: each grid polygon is then tested against all its points in a row,
# which lets PostGIS prepare it once (a point-in-polygon index) instead of testing every point against raw
# polygons. On the 200,000-point benchmark that halves the step.
_PLACE = [
    "CREATE INDEX ON staging USING gist (geom)",
    "ANALYZE staging",
    """
    CREATE TEMP TABLE placed ON COMMIT DROP AS
    SELECT s.row, s.lon, s.lat, s.in_lon, s.in_lat, s.geom, t.in_crs, t.category, t.priority, t.source,
           t.description, timestamptz 'epoch' + s.reported_us * interval '1 microsecond' AS reported_at,
           timestamptz 'epoch' + NULLIF(s.closed_us, %(no_time)s) * interval '1 microsecond' AS closed_at,
           c.route, c.department_code AS category_department,
           (CASE t.priority WHEN 'urgent' THEN c.hours_urgent WHEN 'high' THEN c.hours_high ELSE c.hours_normal END)
               * interval '1 hour' AS period,
           i.grid_id, i.grid_code, i.community_id,
           CASE WHEN i.grid_id IS NOT NULL THEN 'inside' ELSE 'street' END AS how,
           NULL::float8 AS grid_d, NULL::int AS street_id, NULL::float8 AS street_d
    FROM staging s JOIN staging_text t ON t.row = s.row JOIN categories c ON c.code = t.category
    LEFT JOIN (SELECT DISTINCT ON (p.row) p.row, g.id AS grid_id, g.code::text AS grid_code, g.community_id
               FROM grids g JOIN staging p ON ST_Intersects(g.geom, p.geom)
               ORDER BY p.row, g.code) i ON i.row = s.row
    """,
    """
    UPDATE placed p SET grid_id = n.id, grid_code = n.code, community_id = n.community_id, how = 'nearest',
                        grid_d = n.d
    FROM placed q CROSS JOIN LATERAL (
        SELECT k.id, k.code, k.community_id, k.d FROM (
            SELECT g.id, g.code, g.community_id, ST_Distance(g.geom::geography, q.geom::geography) AS d
            FROM grids g ORDER BY g.geom <-> q.geom LIMIT 4) k
        WHERE k.d <= %(radius)s ORDER BY k.d, k.code LIMIT 1) n
    WHERE q.grid_id IS NULL AND p.row = q.row
    """,
    """
    UPDATE placed p SET street_id = st.id, street_d = st.d
    FROM placed q CROSS JOIN LATERAL (
        SELECT u.id, ST_Distance(u.geom::geography, q.geom::geography) AS d
        FROM (SELECT a.id, a.geom FROM admin_units a WHERE a.level = 'street'
              ORDER BY a.geom <-> q.geom LIMIT 3) u
        ORDER BY 2, 1 LIMIT 1) st
    WHERE q.grid_id IS NULL AND p.row = q.row
    """,
]

# Who and which units each row goes to, as columns of ``placed``, so that the rows they refer to can be locked
# before the insert (see ``_lock_references``).
_RESOLVE = """
CREATE TEMP TABLE resolved ON COMMIT DROP AS
WITH chief AS (SELECT grid_id, staff_id FROM staff_grids WHERE duty = 'chief'),
police AS (  -- per grid: its embedded police officer (auxiliary police only when there is no officer)
    SELECT DISTINCT ON (sg.grid_id) sg.grid_id, s.id AS staff_id
    FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
    WHERE s.active AND s.role IN ('police', 'auxiliary_police') ORDER BY sg.grid_id, s.role <> 'police', s.id)
SELECT p.*, su.city_id, coalesce(cu.parent_id, p.street_id) AS unit_street_id,
    CASE WHEN p.grid_id IS NULL OR p.route = 'department' THEN NULL
         WHEN p.route = 'police' THEN police.staff_id ELSE chief.staff_id END AS assignee_staff_id,
    CASE WHEN p.grid_id IS NULL OR p.route = 'department' THEN p.category_department END AS department_code
FROM placed p
LEFT JOIN admin_units cu ON cu.id = p.community_id
LEFT JOIN admin_units su ON su.id = coalesce(cu.parent_id, p.street_id)
LEFT JOIN chief ON chief.grid_id = p.grid_id
LEFT JOIN police ON police.grid_id = p.grid_id
"""

# (table, key column, the column of ``resolved`` that refers to it): every foreign key the insert sets.
_REFERENCES = [
    ("categories", "code", "category"), ("departments", "code", "department_code"), ("grids", "id", "grid_id"),
    ("admin_units", "id", "community_id"), ("admin_units", "id", "unit_street_id"), ("admin_units", "id", "city_id"),
    ("staff", "id", "assignee_staff_id"),
]

_INSERT = """
INSERT INTO events (category_code, priority, source, description, photos, input_crs, input_lon, input_lat, geom,
        city_id, grid_id, grid_code, community_id, street_id, queue, assignee_staff_id, department_code,
        assignment_rule, flagged, state, reported_at, dispatched_at, due_at, closed_at, closed_on_time, updated_at,
        import_id)
    SELECT p.category, p.priority, p.source, coalesce(p.description, ''), '[]'::jsonb, p.in_crs, p.in_lon, p.in_lat,
        p.geom, p.city_id, p.grid_id, p.grid_code, p.community_id, p.unit_street_id,
        CASE WHEN p.grid_id IS NULL THEN 'street_centre' WHEN p.route = 'department' THEN 'department'
             WHEN p.route = 'police' THEN 'police' ELSE 'grid' END,
        p.assignee_staff_id, p.department_code,
        CASE p.how WHEN 'inside' THEN 'bulk: grid ' || p.grid_code || ' contains the point (lowest code on a '
                                      'shared edge); ' || CASE p.route WHEN 'department' THEN 'the department'
                                      WHEN 'police' THEN 'the embedded police officer' ELSE 'the grid chief' END
                   WHEN 'nearest' THEN 'bulk: the nearest grid, ' || p.grid_code || ', ' || round(p.grid_d::numeric, 1)
                                       || ' m away'
                   ELSE 'bulk: no grid within ' || %(radius)s || ' m: the street''s centre queue, flagged' END,
        p.how <> 'inside',
        CASE WHEN p.closed_at IS NOT NULL THEN 'closed' ELSE 'dispatched' END,
        p.reported_at, p.reported_at, p.reported_at + p.period, p.closed_at,
        CASE WHEN p.closed_at IS NOT NULL THEN p.closed_at <= p.reported_at + p.period END, now(),
        CASE WHEN p.closed_at IS NOT NULL THEN %(closed_import)s ELSE %(open_import)s END
    FROM resolved p
    -- grid by grid: each index then takes its new entries in runs of neighbours (the grid's pages of the
    -- (grid, state) and assignee indexes, one corner of the spatial index) instead of all over; a tenth of the
    -- insert's time on the benchmark. The ids follow that order, not the file's.
    ORDER BY p.grid_code, p.reported_at, p.row
"""


def _copy_numbers(cur: Any, table: str, frame: pd.DataFrame) -> None:
    """COPY the numeric columns of ``frame`` into ``table`` in PostgreSQL's binary format (no NULLs)."""
    epoch = pd.Timestamp(0, tz="UTC")
    values = {
        "row": frame["row"].to_numpy(), "lon": frame["lon"].to_numpy(), "lat": frame["lat"].to_numpy(),
        "in_lon": frame["in_lon"].to_numpy(), "in_lat": frame["in_lat"].to_numpy(),
        "reported_us": ((frame["reported_at"] - epoch) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64),
        "closed_us": ((frame["closed_at"] - epoch) // pd.Timedelta(microseconds=1)).astype("Int64")
        .to_numpy(dtype=np.int64, na_value=NO_TIME),
    }
    layout = [("fields", ">i2")]
    for name, kind in _NUMBERS:
        layout += [(f"{name}_size", ">i4"), (name, kind)]
    tuples = np.empty(len(frame), dtype=np.dtype(layout))
    tuples["fields"] = len(_NUMBERS)
    for name, kind in _NUMBERS:
        tuples[f"{name}_size"] = np.dtype(kind).itemsize
        tuples[name] = values[name]
    data = b"PGCOPY\n\xff\r\n\0" + (0).to_bytes(4, "big") * 2 + tuples.tobytes() + (-1).to_bytes(2, "big", signed=True)
    cur.copy_expert(f"COPY {table} ({', '.join(n for n, _ in _NUMBERS)}) FROM STDIN WITH (FORMAT binary)",
                    io.BytesIO(data))


def _lock_references(cur: Any) -> bool:
    """Check the insert's foreign keys set-based, the way PostgreSQL's per-row checks do it, and say whether the
    per-row checks may be skipped.

    Every row the new events will refer to is locked FOR KEY SHARE (it cannot be deleted, nor its key changed,
    until this transaction ends) and must exist; a row missing here was deleted during the import, and the import
    stops with nothing stored. Skipping the per-row checks (``session_replication_role = replica``, two thirds of
    the insert's time) needs a superuser, as the embedded database's owner is; under another role they run as
    usual, which is correct and slower.
    """
    cur.execute(f"SELECT {', '.join(f'count(DISTINCT {column})' for _, _, column in _REFERENCES)} FROM resolved")
    distinct = cur.fetchone()
    for (table, key, column), wanted in zip(_REFERENCES, distinct, strict=True):
        cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {key} IN "
                    f"(SELECT {column} FROM resolved) FOR KEY SHARE) t")
        (found,) = cur.fetchone()
        if found != wanted:
            raise ConflictError(f"{wanted - found} {table} row(s) the events refer to were deleted during the "
                                "import; nothing stored, try again")
    cur.execute("SELECT current_setting('is_superuser') = 'on'")
    (superuser,) = cur.fetchone()
    if superuser:
        cur.execute("SET LOCAL session_replication_role = replica")
    return bool(superuser)


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
        cur.execute("SET LOCAL work_mem = '256MB'")  # the insert's sort of the whole file, in memory
        cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')")
        (may_create,) = cur.fetchone() or (False,)
        schema = f"gridpatrol_import_{secrets.token_hex(6)}" if may_create else None
        if schema is not None:
            cur.execute(f"CREATE SCHEMA {schema}")
            cur.execute(f"SET LOCAL search_path = {schema}, public")
            for setting in _PARALLEL:
                cur.execute(setting)
            cur.execute(_STAGING.format(kind="UNLOGGED", drop=""))
        else:
            cur.execute(_STAGING.format(kind="TEMP", drop="ON COMMIT DROP"))
        _copy_numbers(cur, "staging", frame)
        buffer = io.StringIO()
        frame[TEXT_COLUMNS].to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        cur.copy_expert(f"COPY staging_text ({', '.join(TEXT_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)
        for statement in _PLACE:
            cur.execute(statement, {"radius": radius_m, "no_time": NO_TIME})
        cur.execute("SELECT row, street_d FROM placed WHERE grid_id IS NULL AND (street_d IS NULL OR street_d > %s) "
                    "ORDER BY row LIMIT %s", (STREET_RADIUS_M, MAX_LISTED))
        lost = cur.fetchall()
        if lost:
            raise InputError(f"{len(lost)}+ row(s) lie outside the service area (no street within "
                             f"{STREET_RADIUS_M:,.0f} m): rows {[r[0] for r in lost]}; nothing stored")
        cur.execute("ANALYZE placed (grid_id, community_id, street_id)")  # what the next joins go by
        cur.execute("SELECT how, count(*) FROM placed GROUP BY how")
        how = dict(cur.fetchall())
        cur.execute(_RESOLVE)
        set_based = _lock_references(cur)
        cur.execute("SELECT count(*) FROM placed WHERE closed_at IS NOT NULL")
        (closed,) = cur.fetchone() or (0,)
        imports: dict[str, int] = {}  # the file's import records, by the state its events are imported in
        for state, rows in (("closed", closed), ("dispatched", len(frame) - closed)):
            if rows:
                cur.execute("INSERT INTO event_imports (source_name, author, state, rows, note) "
                            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                            (source_name[:200], author[:64], state, rows, f"imported from {source_name}"))
                record = cur.fetchone()
                assert record is not None
                imports[state] = record[0]
        cur.execute(_INSERT, {"radius": radius_m, "closed_import": imports.get("closed"),
                              "open_import": imports.get("dispatched")})
        stored = cur.rowcount
        if set_based:
            cur.execute("SET LOCAL session_replication_role = origin")
        if schema is not None:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
    return BulkReport(rows=len(frame), stored=stored, in_grid=how.get("inside", 0), nearest=how.get("nearest", 0),
                      street_queue=how.get("street", 0), closed=closed, seconds=time.perf_counter() - started)
