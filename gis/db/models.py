"""The data model: administrative units, grids, buildings, key places, street networks, staff.

Geometry is stored in WGS-84 (EPSG:4326); lengths and areas are computed in a metric projection and stored in
columns named with their unit (``length_m``, ``area_m2``). Every geometry column has a GiST index. The schema
itself is created by Alembic (``gis/db/migrations``); these classes mirror it, and a test checks that they agree.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gis.vocabulary import (
    CATEGORY_KINDS,
    EVENT_STATES,
    GRID_DUTIES,
    INPUT_CRS,
    LEVELS,
    NETWORKS,
    PRIORITIES,
    QUEUES,
    ROUTES,
    SOURCES,
    STAFF_ROLES,
    TASK_STATES,
    UNIT_LEVELS,
    USER_LEVELS,
    USER_ROLES,
    VISIT_KINDS,
)

SRID = 4326


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class AdminUnit(Base):
    """A city, district (区/县), street (街道/乡镇) or community (社区/村), with its code and polygon."""

    __tablename__ = "admin_units"
    __table_args__ = (
        CheckConstraint(_in("level", UNIT_LEVELS), name="admin_units_level_check"),
        CheckConstraint("(level = 'city') = (city_id IS NULL)", name="admin_units_city_check"),
        UniqueConstraint("city_id", "osm_type", "osm_id", name="admin_units_osm_key"),
        Index("admin_units_one_city_per_name", "name", unique=True, postgresql_where=text("level = 'city'")),
        Index("admin_units_geom_idx", "geom", postgresql_using="gist"),
        Index("admin_units_parent_idx", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"))
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    osm_type: Mapped[str | None] = mapped_column(String(8))
    osm_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # divisions.unit_id points back here: the cycle is closed by ALTER, as the migration does
    division_id: Mapped[int | None] = mapped_column(
        ForeignKey("divisions.id", ondelete="SET NULL", use_alter=True, name="admin_units_division_id_fkey")
    )


class Grid(Base):
    """A grid (网格): the smallest unit, inside exactly one community."""

    __tablename__ = "grids"
    __table_args__ = (
        Index("grids_geom_idx", "geom", postgresql_using="gist"),
        Index("grids_centroid_idx", "centroid", postgresql_using="gist"),
        Index("grids_community_idx", "community_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(Text)
    community_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    centroid: Mapped[Any] = mapped_column(Geometry("POINT", srid=3857, spatial_index=False),
                                          Computed("ST_Transform(ST_Centroid(geom), 3857)", persisted=True))
    """What the grids' tiles draw below zoom 12, in the tiles' own system (migrations 0026, 0027)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    division_id: Mapped[int | None] = mapped_column(ForeignKey("divisions.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), server_default="generated")
    """``generated`` by a division, or ``drawn`` by a planner."""
    note: Mapped[str | None] = mapped_column(Text)
    """Why the grid misses the household band, when it does."""
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    households: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """The figures every map colours by, kept by triggers on the buildings and the cases (migrations 0033, 0034): the
    households and buildings whose ``grid_id`` is the grid, its open cases, and the sorted deadlines of those being
    handled; the cases' changes reach these columns when folded in (:class:`GridCaseChange`), so a reader adds
    those not yet folded (``gis.planning.queries.GRID_OPEN``, ``GRID_OVERDUE``)."""
    buildings: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    open_cases: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    open_dues: Mapped[list[datetime] | None] = mapped_column(ARRAY(DateTime(timezone=True)))


class GridCaseChange(Base):
    """A statement's change to a grid's open cases and deadlines, appended by the cases' trigger and folded into
    the grid's row by ``grid_cases_fold()`` (migration 0034); readers add those not yet folded."""

    __tablename__ = "grid_case_changes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    grid_id: Mapped[int] = mapped_column(Integer)
    open_delta: Mapped[int] = mapped_column(Integer)
    added: Mapped[list[datetime] | None] = mapped_column(ARRAY(DateTime(timezone=True)))
    removed: Mapped[list[datetime] | None] = mapped_column(ARRAY(DateTime(timezone=True)))


class GridVersion(Base):
    """One version of a grid, valid from ``valid_from`` until ``valid_to`` (open while current)."""

    __tablename__ = "grid_versions"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="grid_versions_interval_check"),
        UniqueConstraint("grid_id", "version", name="grid_versions_key"),
        Index("grid_versions_geom_idx", "geom", postgresql_using="gist"),
        Index("grid_versions_code_idx", "code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(15))
    version: Mapped[int] = mapped_column(Integer)
    community_id: Mapped[int] = mapped_column(Integer)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    change: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class UnitVersion(Base):
    """Every outline and name a coded district, street or community has had: its history, diffs and
    "which unit covered this point on date D", as :class:`GridVersion` keeps for grids."""

    __tablename__ = "unit_versions"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="unit_versions_interval_check"),
        UniqueConstraint("unit_id", "version", name="unit_versions_key"),
        Index("unit_versions_geom_idx", "geom", postgresql_using="gist"),
        Index("unit_versions_code_idx", "code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(15))
    level: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    change: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class Building(Base):
    """A building (楼栋) with its estimated households and, when a planner gave one, the real count."""

    __tablename__ = "buildings"
    __table_args__ = (
        UniqueConstraint("city_id", "osm_type", "osm_id", name="buildings_osm_key"),
        CheckConstraint("households_est >= 0", name="buildings_households_est_check"),
        CheckConstraint("households_override >= 0", name="buildings_households_override_check"),
        CheckConstraint("residents >= 0", name="buildings_residents_check"),
        Index("buildings_geom_idx", "geom", postgresql_using="gist"),
        Index("buildings_grid_idx", "grid_id"),
        Index("buildings_ref_key", "city_id", "ref", unique=True, postgresql_where=text("ref IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    osm_type: Mapped[str] = mapped_column(String(8))
    osm_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(Text)
    building_type: Mapped[str] = mapped_column(Text)
    use: Mapped[str] = mapped_column(String(16))
    levels: Mapped[int] = mapped_column(Integer)
    levels_source: Mapped[str] = mapped_column(String(8))
    area_m2: Mapped[float] = mapped_column(Double)
    households_est: Mapped[int] = mapped_column(Integer)
    households_override: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(
        Integer, Computed("COALESCE(households_override, households_est)", persisted=True)
    )
    households_source: Mapped[str] = mapped_column(
        Text,
        Computed("CASE WHEN households_override IS NULL THEN 'estimate' ELSE 'confirmed' END", persisted=True),
    )
    residents: Mapped[int | None] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    tags: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    ref: Mapped[str | None] = mapped_column(Text)
    """The city's own building id (楼栋编码), when it gave one."""
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))


class KeyPlace(Base):
    """A place a patrol stops at: school, hospital, market, police station, elderly home, …"""

    __tablename__ = "key_places"
    __table_args__ = (
        UniqueConstraint("city_id", "osm_type", "osm_id", name="key_places_osm_key"),
        Index("key_places_geom_idx", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    osm_type: Mapped[str] = mapped_column(String(8))
    osm_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))


class RoadNode(Base):
    """A node of the walk or drive network (an intersection or dead end after osmnx simplification)."""

    __tablename__ = "road_nodes"
    __table_args__ = (
        CheckConstraint(_in("network", NETWORKS), name="road_nodes_network_check"),
        UniqueConstraint("city_id", "network", "osm_id", name="road_nodes_key"),
        Index("road_nodes_geom_idx", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    network: Mapped[str] = mapped_column(String(8))
    osm_id: Mapped[int] = mapped_column(BigInteger)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))


class RoadEdge(Base):
    """A directed edge of the walk or drive network as osmnx builds it (u → v, parallel edges by ``key``)."""

    __tablename__ = "road_edges"
    __table_args__ = (
        CheckConstraint(_in("network", NETWORKS), name="road_edges_network_check"),
        CheckConstraint("length_m >= 0", name="road_edges_length_check"),
        UniqueConstraint("city_id", "network", "u", "v", "key", name="road_edges_key"),
        Index("road_edges_geom_idx", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    network: Mapped[str] = mapped_column(String(8))
    u: Mapped[int] = mapped_column(BigInteger)
    v: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[int] = mapped_column(Integer)
    osm_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    name: Mapped[str | None] = mapped_column(Text)
    highway: Mapped[str | None] = mapped_column(Text)
    oneway: Mapped[bool] = mapped_column(Boolean)
    length_m: Mapped[float] = mapped_column(Double)
    geom: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=False))


class Staff(Base):
    """A grid chief, grid member, embedded officer or centre staff member. No resident data lives here."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint(_in("role", STAFF_ROLES), name="staff_role_check"),
        # the community police officer, when a grid has none embedded (migration 0005)
        Index("staff_police_unit_idx", "unit_id", postgresql_where=text("role IN ('police', 'auxiliary_police')")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(24))
    phone: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StaffGrid(Base):
    """Which grids a staff member serves, and as what; one chief per grid."""

    __tablename__ = "staff_grids"
    __table_args__ = (
        CheckConstraint(_in("duty", GRID_DUTIES), name="staff_grids_duty_check"),
        Index("staff_grids_one_chief", "grid_id", unique=True, postgresql_where=text("duty = 'chief'")),
        Index("staff_grids_grid_idx", "grid_id"),
    )

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True)
    duty: Mapped[str] = mapped_column(String(16))


class DivisionRecord(Base):
    """One run of the automatic division over a unit (a district, or a whole city), with its report."""

    __tablename__ = "divisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    grid_low: Mapped[int] = mapped_column(Integer)
    grid_high: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UnitCode(Base):
    """Every code ever issued. A retired code stays here, so it is never issued again."""

    __tablename__ = "unit_codes"
    __table_args__ = (
        CheckConstraint("seq BETWEEN 1 AND 999", name="unit_codes_seq_check"),
        Index("unit_codes_parent_idx", "parent_code"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str] = mapped_column(String(15))
    seq: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_why: Mapped[str | None] = mapped_column(Text)


class Import(Base):
    """One run of ``gridpatrol import-osm``: which file, its bounds, and what it loaded."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    bounds_source: Mapped[str] = mapped_column(String(16))
    bounds: Mapped[Any] = mapped_column(Geometry("POLYGON", srid=SRID, spatial_index=False))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CitySettings(Base):
    """What an import of a city assumes (``gridpatrol city add``): its handle, districts mapped by hand, the
    storeys of an untyped building, the floor area per household, its time zone."""

    __tablename__ = "city_settings"
    __table_args__ = (
        UniqueConstraint("key", name="city_settings_key"),
        CheckConstraint("default_storeys BETWEEN 1 AND 60", name="city_settings_storeys_check"),
        CheckConstraint("m2_per_household BETWEEN 20 AND 500", name="city_settings_m2_check"),
        CheckConstraint("jsonb_typeof(district_codes) = 'object'", name="city_settings_districts_check"),
        CheckConstraint("cardinality(work_starts) BETWEEN 1 AND 4 AND cardinality(work_starts) = "
                        "cardinality(work_ends)", name="city_settings_work_hours_check"),
    )

    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(Text)
    district_codes: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    default_storeys: Mapped[int] = mapped_column(Integer, server_default=text("6"))
    m2_per_household: Mapped[float] = mapped_column(Double, server_default=text("90"))
    timezone: Mapped[str] = mapped_column(Text, server_default=text("'Asia/Shanghai'"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    work_starts: Mapped[list[time]] = mapped_column(ARRAY(Time()), server_default=text("'{08:30,13:30}'"))
    work_ends: Mapped[list[time]] = mapped_column(ARRAY(Time()), server_default=text("'{12:00,17:30}'"))
    """The periods of a working day, in the city's time zone (migration 0023): deadlines count working time."""


class CalendarDay(Base):
    """An exception to "Monday to Friday" (migration 0023): China's public holidays and make-up working days
    (``city_id`` NULL, from the chinesecalendar package) and a city's own days off or extra working days."""

    __tablename__ = "calendar_days"
    __table_args__ = (
        Index("calendar_days_key", text("coalesce(city_id, 0)"), "day", unique=True),
        Index("calendar_days_day_idx", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(Text, server_default=text("''"))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- Events: intake, assignment and the closed loop (issue 4) -------------------------------------------------


class Department(Base):
    """A functional department (职能部门): where escalations end and some categories go straight away."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)


class Category(Base):
    """An event category: component (部件) or event (事件) as in GB/T 30428.2, or a social-governance matter; where
    it goes first, which department ends its escalation, and its deadline per priority."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint(_in("kind", CATEGORY_KINDS), name="categories_kind_check"),
        CheckConstraint(_in("route", ROUTES), name="categories_route_check"),
        CheckConstraint("hours_urgent > 0 AND hours_high > 0 AND hours_normal > 0", name="categories_hours_check"),
        CheckConstraint("NOT public OR (kind <> 'social' AND route <> 'police')", name="categories_never_public"),
        CheckConstraint("clock IN ('working', 'wall')", name="categories_clock_check"),
        CheckConstraint("accept_hours > 0 AND dispatch_hours > 0", name="categories_stage_hours_check"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    hours_urgent: Mapped[int] = mapped_column(Integer)
    hours_high: Mapped[int] = mapped_column(Integer)
    hours_normal: Mapped[int] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    """Whether Open311's public reads may show this category's events at all (migration 0015): never a
    social-governance matter or a police route (``categories_never_public``)."""
    clock: Mapped[str] = mapped_column(Text, server_default=text("'working'"))
    """``working``: deadlines count working time; ``wall``: on the clock (safety, police: migration 0023)."""
    accept_hours: Mapped[float] = mapped_column(Double, server_default=text("1"))
    """立案: accepted within so many hours of the report."""
    dispatch_hours: Mapped[float] = mapped_column(Double, server_default=text("1"))
    """派遣: dispatched within so many hours of the acceptance."""


class DutyRoster(Base):
    """Who is on duty for a grid, by weekday (0 = Monday) and local time of day."""

    __tablename__ = "duty_roster"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="duty_roster_weekday_check"),
        CheckConstraint("starts < ends", name="duty_roster_hours_check"),
        Index("duty_roster_grid_idx", "grid_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    starts: Mapped[Any] = mapped_column(Time)
    ends: Mapped[Any] = mapped_column(Time)


class Event(Base):
    """A reported event, where it was assigned and why, and where it stands in the loop. The reporter's contact is
    personal data: only the staff handling the event see it (never maps, lists for leaders or Open311)."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_in("priority", PRIORITIES), name="events_priority_check"),
        CheckConstraint(_in("source", SOURCES), name="events_source_check"),
        CheckConstraint(_in("input_crs", INPUT_CRS), name="events_input_crs_check"),
        CheckConstraint(_in("state", EVENT_STATES), name="events_state_check"),
        CheckConstraint(_in("level", LEVELS), name="events_level_check"),
        CheckConstraint(_in("queue", QUEUES), name="events_queue_check"),
        Index("events_geom_idx", "geom", postgresql_using="gist"),
        Index("events_grid_state_idx", "grid_id", "state"),
        Index("events_assignee_idx", "assignee_staff_id", "state"),
        Index("events_open_due_idx", "due_at", postgresql_where=text("state IN ('dispatched', 'handled')")),
        Index("events_reported_idx", "reported_at"),  # migration 0013: Open311 lists and leaders read by period
        # migration 0029: a period's figures read the cases whose latest clock is in it, or open ones (kpis)
        Index("events_clock_idx", text("greatest(reported_at, dispatched_at, due_at, closed_at, supervision_due_at)")),
        Index("events_open_idx", "reported_at", postgresql_where=text(
            "state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')")),
        # migration 0016: the events that show a photo (who may see it); only the few rows that have photos
        Index("events_photos_idx", "photos", postgresql_using="gin", postgresql_ops={"photos": "jsonb_path_ops"},
              postgresql_where=text("photos <> '[]'::jsonb")),
        # a client's retry (migration 0010): only reports that carry a key are indexed; unique with the partition
        # key, as a partitioned table's unique index must be (archives hold no keys: unique over the table)
        Index("events_idempotency_key_idx", "idempotency_key", "archive", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
        # the duplicate check at intake (migration 0005): open events not already marked as duplicates
        Index("events_open_geom_idx", "geom", postgresql_using="gist", postgresql_where=text(
            "duplicate_of IS NULL AND state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', "
            "'verified')")),
        # the event clusters of the low zooms (migration 0035): the open cases on no grid, read one by one there
        Index("events_gridless_geom_idx", "geom", postgresql_using="gist", postgresql_where=text(
            "grid_id IS NULL AND state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', "
            "'verified', 'hung')")),
        # partitioned (migration 0012): the live cases in events_live (archive 0), each large historic file's
        # closed cases in an archive partition of their own (archive = its import record): see gis.dispatch.store.bulk
        {"postgresql_partition_by": "LIST (archive)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    priority: Mapped[str] = mapped_column(String(8), server_default="normal")
    source: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, server_default="")
    reporter_contact: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    published: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The reporter chose to publish their description and photo (Open311's public view, where the category is
    public too); the default keeps them to the staff (migration 0015)."""
    input_crs: Mapped[str] = mapped_column(String(8))
    input_lon: Mapped[float] = mapped_column(Double)
    input_lat: Mapped[float] = mapped_column(Double)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    city_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="SET NULL"))
    queue: Mapped[str] = mapped_column(String(16))
    assignee_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    assignment_rule: Mapped[str] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    state: Mapped[str] = mapped_column(String(12), server_default="reported")
    level: Mapped[str] = mapped_column(String(12), server_default="grid")
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    missed_deadline: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    reworks: Mapped[int] = mapped_column(Integer, server_default="0")
    extensions: Mapped[int] = mapped_column(Integer, server_default="0")
    escalations: Mapped[int] = mapped_column(Integer, server_default="0")
    evaluation: Mapped[int | None] = mapped_column(Integer)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    import_id: Mapped[int | None] = mapped_column(ForeignKey("event_imports.id"))
    archive: Mapped[int] = mapped_column(Integer, server_default="0")  # the partition: 0 live, else event_archives.id
    # the stage clocks before handling (migration 0023): accept (立案) and dispatch (派遣), and whether each was late
    accept_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accept_late: Mapped[bool | None] = mapped_column(Boolean)
    dispatch_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatch_late: Mapped[bool | None] = mapped_column(Boolean)
    # supervision (督办, migration 0023): the latest ``supervise`` step's deadline, answerable unit and note
    supervised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    supervision_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    supervision_unit: Mapped[str | None] = mapped_column(Text)
    supervision_note: Mapped[str | None] = mapped_column(Text)
    assisting: Mapped[list[str]] = mapped_column(ARRAY(Text()), server_default=text("'{}'"))
    """Joint handling (主办/协办): the departments assisting the lead one (``department_code``)."""


class ResponseTemplate(Base):
    """A text centre staff pick at a step (a reject reason, the note to the reporter), for one category or all
    (migration 0024); an admin edits them."""

    __tablename__ = "response_templates"
    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 500", name="response_templates_body_check"),
        Index("response_templates_step_idx", "step", "category_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(Text)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(Text, server_default=text("'gridpatrol'"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BasemapFeature(Base):
    """A feature of the offline basemap (migration 0025): a road, river, lake, park, land use, place name or
    landmark of the city's OSM extract, in Web Mercator, with the zoom it first shows at (``gis.geo.basemap``)."""

    __tablename__ = "basemap_features"
    __table_args__ = (
        CheckConstraint(_in("layer", ("water", "green", "landuse", "waterways", "roads", "rail", "places", "pois")),
                        name="basemap_features_layer_check"),
        Index("basemap_features_geom_idx", "geom", postgresql_using="gist"),
        Index("basemap_features_city_idx", "city_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    layer: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)
    minzoom: Mapped[int] = mapped_column(SmallInteger)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=3857, spatial_index=False))


class EventImport(Base):
    """A file of historic events loaded in bulk (migration 0011): one row for the file's cases closed at import,
    one for those still open; each imported event points to its row, which is the first step of its history."""

    __tablename__ = "event_imports"
    __table_args__ = (CheckConstraint(_in("state", ("dispatched", "closed")), name="event_imports_state_check"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventArchive(Base):
    """An archive partition of events (migrations 0012, 0014): closed cases of a historic file, built at once;
    ``events.archive`` is its id. A large file's cases are built as several, one per processor."""

    __tablename__ = "event_archives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("event_imports.id"))
    rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventTransition(Base):
    """One step of an event's history: who (and in which role) did what, when, with a note."""

    __tablename__ = "event_transitions"
    __table_args__ = (Index("event_transitions_event_idx", "event_id", "at"), Index("event_transitions_at_idx", "at"),
                      Index("event_transitions_return_idx", "event_id", "at",  # migration 0029: KPIs' returns
                            postgresql_where=text("action = 'return'")),
                      Index("event_transitions_photos_idx", "data", postgresql_using="gin",
                            postgresql_ops={"data": "jsonb_path_ops"}, postgresql_where=text("data ? 'photos'")))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class PatrolVisit(Base):
    """A patrol a grid member logged: when, by whom, the GPS track and what it was matched to, the buildings
    visited. Kept when the grid is later redrawn or retired (its code stays on the row)."""

    __tablename__ = "patrol_visits"
    __table_args__ = (
        Index("patrol_visits_position_idx", "position", postgresql_using="gist"),
        CheckConstraint(_in("kind", VISIT_KINDS), name="patrol_visits_kind_check"),
        CheckConstraint("ended_at >= started_at", name="patrol_visits_time_check"),
        CheckConstraint("matched_by IN ('hmm', 'buffer')", name="patrol_visits_matched_by_check"),
        Index("patrol_visits_grid_time_idx", "grid_code", "started_at"),
        Index("patrol_visits_staff_idx", "staff_id", "started_at"),
        Index("patrol_visits_track_idx", "track", postgresql_using="gist"),
        Index("patrol_visits_matched_path_idx", "matched_path", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    grid_code: Mapped[str] = mapped_column(String(15))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    track: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=False), nullable=True)
    tolerance_m: Mapped[float] = mapped_column(Double)
    required_m: Mapped[float] = mapped_column(Double)
    walked_m: Mapped[float] = mapped_column(Double)
    segments_required: Mapped[int] = mapped_column(Integer)
    segments_walked: Mapped[int] = mapped_column(Integer)
    buildings: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    unknown_buildings: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    walked_segments: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    note: Mapped[str] = mapped_column(Text, server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    position: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    matched_by: Mapped[str] = mapped_column(String(8), server_default="buffer")
    gps_sigma_m: Mapped[float | None] = mapped_column(Double, nullable=True)
    matched_path: Mapped[Any] = mapped_column(Geometry("MULTILINESTRING", srid=SRID, spatial_index=False),
                                              nullable=True)


class PatrolOptionalStreet(Base):
    """A street segment of a grid that its planner marked optional for the basic patrol (walked if useful, never
    required). The segment is the walk network's undirected ``(least(u, v), greatest(u, v), key)``."""

    __tablename__ = "patrol_optional_streets"
    __table_args__ = (CheckConstraint("u <= v", name="patrol_optional_streets_order_check"),)

    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    u: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    v: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PatrolShare(Base):
    """A grid's basic patrol shared among its people, as set (migration 0031): k parts, each part's street segments
    (``[u, v, key]``, the walk network's undirected keys) and its route's length, computed once when set."""

    __tablename__ = "patrol_shares"
    __table_args__ = (CheckConstraint("k BETWEEN 2 AND 8", name="patrol_shares_k_check"),)

    grid_code: Mapped[str] = mapped_column(String(15), ForeignKey("grids.code", ondelete="CASCADE"),
                                           primary_key=True)
    k: Mapped[int] = mapped_column(SmallInteger)
    parts: Mapped[list[Any]] = mapped_column(JSONB)
    lengths_m: Mapped[list[float]] = mapped_column(ARRAY(Double))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """Someone who signs in: a role and the unit whose jurisdiction they act in (see :mod:`gis.access.store.users`)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", USER_ROLES), name="users_role_check"),
        CheckConstraint(_in("unit_level", USER_LEVELS), name="users_level_check"),
        CheckConstraint("(unit_level = 'all') = (city_id IS NULL)", name="users_city_check"),
        CheckConstraint("role <> 'department' OR department_code IS NOT NULL", name="users_department_check"),
        Index("users_username_key", text("lower(username)"), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(Text, server_default="")
    password_hash: Mapped[str] = mapped_column(Text)
    password_version: Mapped[int] = mapped_column(Integer, server_default="1")
    role: Mapped[str] = mapped_column(String(16))
    unit_level: Mapped[str] = mapped_column(String(12))
    unit_code: Mapped[str | None] = mapped_column(String(15))
    city_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    setup_code_hash: Mapped[str | None] = mapped_column(String(64))
    setup_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEntry(Base):
    """One line of the audit log: a change, a read of personal data, a sign-in; who, when, what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_at_idx", "at"), Index("audit_log_subject_idx", "subject", "at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ServiceKey(Base):
    """A secret the service made for itself: the key tokens are signed with."""

    __tablename__ = "service_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Photo(Base):
    """A picture attached to a report or a feedback, addressed by its SHA-256 (``photo:<hex>``)."""

    __tablename__ = "photos"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VolunteerTask(Base):
    """A task a community posts for a grid, which a member or a volunteer takes and closes."""

    __tablename__ = "volunteer_tasks"
    __table_args__ = (CheckConstraint(_in("state", TASK_STATES), name="volunteer_tasks_state_check"),
                      Index("volunteer_tasks_grid_idx", "grid_code", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    state: Mapped[str] = mapped_column(String(8), server_default="open")
    posted_by: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    taken_by: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class CoverageCache(Base):
    """A coverage report computed once for every instance, kept for a minute (migration 0032)."""

    __tablename__ = "coverage_cache"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
