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
the open ones), and is the first step of each event's history. The ids follow the grid codes, then the file's
order.
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
from gis.db.models import INPUT_CRS, PRIORITIES, SOURCES
from gis.errors import ConflictError, InputError

MAX_LISTED = 20
ARCHIVE_MIN_ROWS = 10_000
"""A file with at least this many closed cases stores them in an archive partition of their own (migration 0012):
built in one pass, which is many times faster than adding each row to the events table's indexes; a smaller
file's cases go into the live partition (a partition per small file would only make every query longer)."""
MAX_ARCHIVES = 200
"""Past this many archive partitions, closed cases go into the live partition too: each partition is one more
index probe for every query on events that does not name a partition."""
COLUMNS = ["row", "lon", "lat", "in_crs", "in_lon", "in_lat", "category", "priority", "source", "description",
           "reported_at", "closed_at"]
NO_TIME = np.iinfo(np.int64).min  # closed_us of a row with no closed_at (binary COPY has no NULL in a fixed layout)

# The rows are staged by a binary COPY (numpy writes PostgreSQL's binary format in one step; pandas' CSV writer
# spent 3 s of a 200,000-row import formatting floats and times), the words as small numbers (their place in
# ``_CODES``' lists), the descriptions, when there are any, by CSV. The staging tables are unlogged tables in a
# schema of the import's own (made and dropped in its transaction: a failed import leaves nothing behind), so
# that PostgreSQL's parallel workers can read them and the spatial join runs on every core (a temporary table is
# private to its session: about twice as slow on 2 cores). A role that may not create a schema stages in
# temporary tables instead.
_STAGING = """
CREATE {kind} TABLE staging (row int4, lon float8, lat float8, in_lon float8, in_lat float8, reported_us int8,
    closed_us int8, crs int2, category int2, priority int2, source int2,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED) {drop};
CREATE {kind} TABLE staging_text (row int4, description text) {drop}
"""
# the spatial join in parallel even over the few thousand grids of a city (below the default's 8 MB)
_PARALLEL = ["SET LOCAL min_parallel_table_scan_size = 0", "SET LOCAL parallel_setup_cost = 100"]
_NUMBERS = [("row", ">i4"), ("lon", ">f8"), ("lat", ">f8"), ("in_lon", ">f8"), ("in_lat", ">f8"),
            ("reported_us", ">i8"), ("closed_us", ">i8"), ("crs", ">i2"), ("category", ">i2"), ("priority", ">i2"),
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
    archive: str | None  # the archive partition the closed cases went into, if they did
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
# polygons. On the 200,000-point benchmark that halves the step. It keeps only (row, grid code): what each row
# carries is read from the staged rows when the events are written.
_PLACE = [
    "CREATE INDEX ON staging USING gist (geom)",
    "ANALYZE staging",
    """
    CREATE {kind} TABLE hits {drop} AS
    SELECT h.row, g.id AS grid_id FROM (
        SELECT p.row, min(g.code::text) AS code FROM grids g JOIN staging p ON ST_Intersects(g.geom, p.geom)
        GROUP BY p.row) h JOIN grids g ON g.code = h.code
    """,
    "ANALYZE hits",
    """
    CREATE TEMP TABLE fallback ON COMMIT DROP AS
    SELECT s.row, s.geom, n.id AS grid_id, n.d AS grid_d, NULL::int AS street_id, NULL::float8 AS street_d
    FROM staging s LEFT JOIN LATERAL (
        SELECT k.id, k.d FROM (
            SELECT g.id, g.code, ST_Distance(g.geom::geography, s.geom::geography) AS d
            FROM grids g ORDER BY g.geom <-> s.geom LIMIT 4) k
        WHERE k.d <= %(radius)s ORDER BY k.d, k.code LIMIT 1) n ON true
    WHERE NOT EXISTS (SELECT 1 FROM hits h WHERE h.row = s.row)
    """,
    """
    UPDATE fallback f SET street_id = st.id, street_d = st.d
    FROM fallback q CROSS JOIN LATERAL (
        SELECT u.id, ST_Distance(u.geom::geography, q.geom::geography) AS d
        FROM (SELECT a.id, a.geom FROM admin_units a WHERE a.level = 'street'
              ORDER BY a.geom <-> q.geom LIMIT 3) u
        ORDER BY 2, 1 LIMIT 1) st
    WHERE q.grid_id IS NULL AND f.row = q.row
    """,
]

# Who and which units the events of each grid go to, one row per grid the file's rows were placed on (and one per
# street whose centre queue takes rows): a few thousand rows however long the file. The rows they refer to are
# locked from here before the insert (see ``_lock_references``).
_UNITS = """
CREATE TEMP TABLE units ON COMMIT DROP AS
WITH used AS (SELECT DISTINCT grid_id FROM hits UNION SELECT grid_id FROM fallback WHERE grid_id IS NOT NULL),
chief AS (SELECT grid_id, staff_id FROM staff_grids WHERE duty = 'chief'),
police AS (  -- per grid: its embedded police officer (auxiliary police only when there is no officer)
    SELECT DISTINCT ON (sg.grid_id) sg.grid_id, s.id AS staff_id
    FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
    WHERE s.active AND s.role IN ('police', 'auxiliary_police') ORDER BY sg.grid_id, s.role <> 'police', s.id)
SELECT g.id AS key, g.code::text AS grid_code, g.id AS grid_id, g.community_id,
       cu.parent_id AS street_id, su.city_id, chief.staff_id AS chief_id, police.staff_id AS police_id,
       rank() OVER (ORDER BY g.code)::int8 AS ord  -- the order the events are stored in: by grid code
FROM used JOIN grids g ON g.id = used.grid_id
LEFT JOIN admin_units cu ON cu.id = g.community_id LEFT JOIN admin_units su ON su.id = cu.parent_id
LEFT JOIN chief ON chief.grid_id = g.id LEFT JOIN police ON police.grid_id = g.id
UNION ALL
SELECT -st.id, NULL, NULL, NULL, st.id, st.city_id, NULL, NULL, 0  -- keyed by minus the street's id
FROM (SELECT DISTINCT street_id FROM fallback WHERE grid_id IS NULL) q JOIN admin_units st ON st.id = q.street_id
"""

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
    SELECT c.code, p.priority, p.source, coalesce(d.description, ''), '[]'::jsonb, p.crs, s.in_lon, s.in_lat,
        s.geom, u.city_id, u.grid_id, u.grid_code, u.community_id, u.street_id,
        CASE WHEN u.grid_id IS NULL THEN 'street_centre' WHEN c.route = 'department' THEN 'department'
             WHEN c.route = 'police' THEN 'police' ELSE 'grid' END,
        CASE WHEN u.grid_id IS NULL OR c.route = 'department' THEN NULL
             WHEN c.route = 'police' THEN u.police_id ELSE u.chief_id END,
        CASE WHEN u.grid_id IS NULL OR c.route = 'department' THEN c.department_code END,
        CASE WHEN h.grid_id IS NOT NULL
                 THEN 'bulk: grid ' || u.grid_code || ' contains the point (lowest code on a shared edge); '
                      || CASE c.route WHEN 'department' THEN 'the department'
                                      WHEN 'police' THEN 'the embedded police officer' ELSE 'the grid chief' END
             WHEN f.grid_id IS NOT NULL
                 THEN 'bulk: the nearest grid, ' || u.grid_code || ', ' || round(f.grid_d::numeric, 1) || ' m away'
             ELSE 'bulk: no grid within ' || %(radius)s || ' m: the street''s centre queue, flagged' END,
        h.grid_id IS NULL,
        CASE WHEN s.closed_us <> %(no_time)s THEN 'closed' ELSE 'dispatched' END,
        t.reported_at, t.reported_at, t.reported_at + t.period, t.closed_at, t.closed_at <= t.reported_at + t.period,
        now(), CASE WHEN s.closed_us <> %(no_time)s THEN %(closed_import)s ELSE %(open_import)s END, {archive}
    FROM staging s
    LEFT JOIN hits h ON h.row = s.row
    LEFT JOIN fallback f ON f.row = s.row
    JOIN units u ON u.key = coalesce(h.grid_id, f.grid_id, -f.street_id)
    JOIN (SELECT k.n, c.* FROM unnest(%(categories)s::text[]) WITH ORDINALITY k(code, n)
          JOIN categories c ON c.code = k.code) c ON c.n = s.category  -- by number: the planner then knows how
                                                                       -- many rows each category has
    CROSS JOIN LATERAL (SELECT (%(crs)s::text[])[s.crs] AS crs, (%(priorities)s::text[])[s.priority] AS priority,
                               (%(sources)s::text[])[s.source] AS source) p
    CROSS JOIN LATERAL (
        SELECT timestamptz 'epoch' + s.reported_us * interval '1 microsecond' AS reported_at,
               timestamptz 'epoch' + NULLIF(s.closed_us, %(no_time)s) * interval '1 microsecond' AS closed_at,
               (CASE p.priority WHEN 'urgent' THEN c.hours_urgent WHEN 'high' THEN c.hours_high
                                ELSE c.hours_normal END) * interval '1 hour' AS period) t
    LEFT JOIN staging_text d ON d.row = s.row
    WHERE {rows}
    -- grid by grid in code order (then in the file's order): each index then takes its new entries in runs of
    -- neighbours (the grid's pages of the (grid, state) and assignee indexes, one corner of the spatial index)
    -- instead of all over, and a grid's cases lie together in the table. The ids follow that order. One number
    -- to sort by: a sort on (grid code, time) took half a second of 200,000 rows' insert.
    ORDER BY (u.ord << 32) | s.row
"""


def _copy_numbers(cur: Any, table: str, frame: pd.DataFrame, codes: dict[str, list[str]]) -> None:
    """COPY the numeric columns of ``frame`` into ``table`` in PostgreSQL's binary format (no NULLs); each word
    column as its value's place (from 1) in ``codes``' list for it."""
    epoch = pd.Timestamp(0, tz="UTC")
    values = {
        "row": frame["row"].to_numpy(), "lon": frame["lon"].to_numpy(), "lat": frame["lat"].to_numpy(),
        "in_lon": frame["in_lon"].to_numpy(), "in_lat": frame["in_lat"].to_numpy(),
        "reported_us": ((frame["reported_at"] - epoch) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64),
        "closed_us": ((frame["closed_at"] - epoch) // pd.Timedelta(microseconds=1)).astype("Int64")
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
    superuser, as the embedded database's owner is; under another role they run as usual, which is correct and
    slower.
    """
    for table, key, wanted in _REFERENCES:
        cur.execute(f"SELECT (SELECT count(DISTINCT k) FROM ({wanted}) w(k)), "
                    f"(SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {key} IN ({wanted}) FOR KEY SHARE) t)",
                    {"used": used})
        wanted_n, found = cur.fetchone()
        if found != wanted_n:
            raise ConflictError(f"{wanted_n - found} {table} row(s) the events refer to were deleted during the "
                                "import; nothing stored, try again")
    cur.execute("SELECT current_setting('is_superuser') = 'on'")
    (superuser,) = cur.fetchone()
    if superuser:
        cur.execute("SET LOCAL session_replication_role = replica")
    return bool(superuser)


def _may_archive(cur: Any) -> bool:
    """Whether this role may add an archive partition (it owns the events table) and one more is allowed."""
    cur.execute("SELECT pg_has_role(relowner, 'USAGE'), (SELECT count(*) - 1 FROM pg_inherits "
                "WHERE inhparent = 'events'::regclass) FROM pg_class WHERE oid = 'events'::regclass")
    owner, archives = cur.fetchone()
    return bool(owner) and archives < MAX_ARCHIVES


def _archive(cur: Any, import_id: int, values: dict[str, Any]) -> str:
    """Store the staged closed rows as the archive partition of import ``import_id``; its name.

    The table is made like the events table, filled in grid order with one statement, and attached: attaching
    builds each of the table's indexes in one pass over the rows, and checks its foreign keys with one join per
    key (PostgreSQL's own check). Its CHECK keeps it to what an archive may hold: closed cases, no client keys.
    Made in the import's transaction, it is there with every row or not at all.
    """
    cur.execute("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'events'::regclass")
    (schema,) = cur.fetchone()
    table = f"{schema}.events_archive_{import_id}"
    cur.execute(f"CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                f"CONSTRAINT events_archive_{import_id}_check CHECK (archive = {import_id} AND state = 'closed' "
                f"AND idempotency_key IS NULL))")
    cur.execute(_INSERT.format(table=table, archive="%(closed_import)s", rows="s.closed_us <> %(no_time)s"), values)
    cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT events_archive_{import_id}_pkey PRIMARY KEY (id)")
    cur.execute(f"ALTER TABLE events ATTACH PARTITION {table} FOR VALUES IN ({import_id})")
    return table


def bulk_intake(engine: Engine, frame: pd.DataFrame, *, author: str = "gridpatrol", source_name: str = "file",
                radius_m: float = DEFAULT_RADIUS_M, archive_min_rows: int = ARCHIVE_MIN_ROWS) -> BulkReport:
    """Store the validated rows of :func:`read_events_file` in one transaction."""
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute("SELECT code FROM categories ORDER BY code")
        known = [r[0] for r in cur.fetchall()]
        used = sorted(set(frame["category"]))
        unknown = sorted(set(used) - set(known))
        if unknown:
            rows = frame.loc[frame["category"].isin(unknown), "row"].head(MAX_LISTED).tolist()
            raise InputError(f"unknown category {', '.join(map(repr, unknown[:10]))} (rows {rows}); use one of "
                             f"{', '.join(known)}; nothing stored")
        cur.execute("SET LOCAL jit = off")  # compiling these plans costs more than running them
        cur.execute("SET LOCAL work_mem = '256MB'")  # the inserts' sorts and joins of the whole file, in memory
        cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')")
        (may_create,) = cur.fetchone() or (False,)
        schema = f"gridpatrol_import_{secrets.token_hex(6)}" if may_create else None
        kind = {"kind": "UNLOGGED", "drop": ""} if schema else {"kind": "TEMP", "drop": "ON COMMIT DROP"}
        if schema is not None:
            cur.execute(f"CREATE SCHEMA {schema}")
            cur.execute(f"SET LOCAL search_path = {schema}, public")
            for setting in _PARALLEL:
                cur.execute(setting)
        cur.execute(_STAGING.format(**kind))
        _copy_numbers(cur, "staging", frame, {**_CODES, "category": known})
        described = frame.loc[frame["description"] != "", ["row", "description"]]
        if len(described):
            buffer = io.StringIO()
            described.to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            cur.copy_expert("COPY staging_text (row, description) FROM STDIN WITH (FORMAT csv)", buffer)
        for statement in _PLACE:
            cur.execute(statement.format(**kind), {"radius": radius_m})
        cur.execute("SELECT row, street_d FROM fallback WHERE grid_id IS NULL AND (street_d IS NULL OR "
                    "street_d > %s) ORDER BY row LIMIT %s", (STREET_RADIUS_M, MAX_LISTED))
        lost = cur.fetchall()
        if lost:
            raise InputError(f"{len(lost)}+ row(s) lie outside the service area (no street within "
                             f"{STREET_RADIUS_M:,.0f} m): rows {[r[0] for r in lost]}; nothing stored")
        cur.execute("SELECT count(*), count(grid_id) FROM fallback")
        unplaced, nearest = cur.fetchone() or (0, 0)
        cur.execute(_UNITS)
        cur.execute("ANALYZE fallback, units, staging_text")  # small: the inserts' joins then read them whole
        set_based = _lock_references(cur, used)
        closed = int(frame["closed_at"].notna().sum())
        imports: dict[str, int] = {}  # the file's import records, by the state its events are imported in
        for state, rows in (("closed", closed), ("dispatched", len(frame) - closed)):
            if rows:
                cur.execute("INSERT INTO event_imports (source_name, author, state, rows, note) "
                            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                            (source_name[:200], author[:64], state, rows, f"imported from {source_name}"))
                record = cur.fetchone()
                assert record is not None
                imports[state] = record[0]
        values = {"radius": radius_m, "no_time": NO_TIME, "closed_import": imports.get("closed"),
                  "open_import": imports.get("dispatched"), "categories": known, "crs": _CODES["crs"],
                  "priorities": _CODES["priority"], "sources": _CODES["source"]}
        archive = None
        if closed >= archive_min_rows and _may_archive(cur):
            archive = _archive(cur, imports["closed"], values)
        everything = "true" if archive is None else "s.closed_us = %(no_time)s"
        cur.execute(_INSERT.format(table="events", archive="0", rows=everything), values)
        stored = cur.rowcount + (closed if archive is not None else 0)
        if set_based:
            cur.execute("SET LOCAL session_replication_role = origin")
        if schema is not None:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
    return BulkReport(rows=len(frame), stored=stored, in_grid=len(frame) - unplaced, nearest=nearest,
                      street_queue=unplaced - nearest, closed=closed, archive=archive,
                      seconds=time.perf_counter() - started)
