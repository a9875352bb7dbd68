"""What the API answers: the response models of the main resources (events, grids, units, patrols, visits, KPIs,
coverage), so that ``/openapi.json`` says what each endpoint returns.

- Times are ISO 8601 strings exactly as the stores write them (``Timestamp``), not re-formatted on the way out.
- Codes from a closed list (a state, a level, a role) are documented with their values (``one_of``); the
  database's CHECK constraints, built from :mod:`gis.vocabulary`, are what enforces them.
- The models document the answers (``responses=documented(Model)`` on a route); they are not checked per
  request. The stores build the answers (the layers are text straight from PostGIS), and an answer that strayed
  from its model would be a server bug: checked on the way out, it would turn a request that did nothing wrong
  into a 500. ``tests/api/test_response_models.py`` is the check instead: it reads real answers of every endpoint
  below and fails on a field a model does not declare, or one it requires and the answer lacks. (On its first run
  it caught two: an event's evaluation is a score, and a moved event has no assignee unless held by a grid.)
- Every model allows fields it does not declare (``extra="allow"``), so that the test sees them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from geojson_pydantic import Feature, FeatureCollection, LineString, MultiPolygon, Point, Polygon
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gis.vocabulary import (
    CATEGORY_KINDS,
    EVENT_STATES,
    GRID_DUTIES,
    INPUT_CRS,
    LEVELS,
    PRIORITIES,
    QUEUES,
    ROUTES,
    SOURCES,
    STAFF_ROLES,
    UNIT_LEVELS,
    USER_LEVELS,
    USER_ROLES,
    VISIT_KINDS,
)

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"},
                                 examples=["2026-12-04T09:30:00.123456+08:00"])]
Day = Annotated[str, Field(json_schema_extra={"format": "date"}, examples=["2026-12-07"])]


def one_of(values: Sequence[str], description: str = "") -> Any:
    """A field whose value is one of ``values`` (documented as an enum)."""
    return Field(description=description or None, json_schema_extra={"enum": list(values)})


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- events

class Assignee(Model):
    id: int
    name: str
    role: str = one_of(STAFF_ROLES)


class ReportedLocation(Model):
    """The location as the reporter sent it, before conversion to WGS-84."""
    crs: str = one_of(INPUT_CRS)
    lon: float
    lat: float


class Supervision(Model):
    since: Timestamp
    due_at: Timestamp = Field(description="the supervision's deadline")
    unit: str = Field(description="the unit answerable (a unit's code or a department's)")
    note: str | None


class Event(Model):
    """An event (事件) and where it stands in the closed loop."""
    id: int
    state: str = one_of(EVENT_STATES)
    category: str = Field(description="the category code (GET /categories)")
    category_name: str
    category_name_en: str | None
    priority: str = one_of(PRIORITIES)
    source: str = one_of(SOURCES)
    description: str
    photos: list[str] = Field(description="photo references (keys from POST /photos, or URLs)")
    location: Point = Field(description="WGS-84")
    input: ReportedLocation
    grid: str | None = Field(description="the grid's code; null when no grid took it (a street's centre queue)")
    community: str | None
    street: str | None
    queue: str = one_of(QUEUES)
    level: str = one_of(LEVELS, "who holds it now: grid, then community, street, department as it escalates")
    assignee: Assignee | None
    department: str | None
    assignment_rule: str = Field(description="which placement rule put it where it is, in words")
    flagged: bool = Field(description="a person should look at where it was placed")
    duplicate_of: int | None
    reported_at: Timestamp
    dispatched_at: Timestamp | None
    due_at: Timestamp | None
    closed_at: Timestamp | None
    closed_on_time: bool | None
    missed_deadline: bool
    reworks: int
    extensions: int
    escalations: int
    suspended_seconds: float
    evaluation: int | None = Field(description="the score given at closing")
    updated_at: Timestamp
    reporter_contact: str | None = Field(default=None, description="personal data: only to those handling it "
                                         "(each read audited); absent otherwise")
    accept_due_at: Timestamp | None = Field(default=None, description="立案: the acceptance's deadline (working "
                                            "time)")
    accepted_at: Timestamp | None = None
    accept_late: bool | None = Field(default=None, description="accepted after its deadline")
    dispatch_due_at: Timestamp | None = Field(default=None, description="派遣: the dispatch's deadline (null when "
                                              "dispatched with the acceptance)")
    dispatch_late: bool | None = None
    supervision: Supervision | None = Field(default=None, description="督办: under supervision (the latest)")
    assisting: list[str] = Field(default_factory=list, description="协办: departments assisting the lead one "
                                 "(department)")


class Template(Model):
    """A response template (an admin edits them)."""
    id: int
    step: str
    category: str | None = Field(description="one category's; null: every category's")
    body: str
    updated_by: str
    updated_at: Timestamp


class BulkCase(Model):
    id: int
    ok: bool = Field(description="whether the step is (was) possible for this case")
    state: str | None = None
    assignee: str | None = None
    department: str | None = None
    error: str | None = Field(default=None, description="why not")


class BulkSteps(Model):
    action: str
    confirmed: bool = Field(description="false: a preview, nothing changed")
    count: int
    possible: int
    cases: list[BulkCase]


class NearEvent(Event):
    distance_m: float | None = None


class Surroundings(Model):
    id: int
    grid: dict[str, Any] | None = Field(description="the case's grid as a GeoJSON Feature (code, name)")
    nearby: list[NearEvent] = Field(description="open cases within the distance (same category first): the "
                                    "duplicate candidates")
    recent: list[Event] = Field(description="the grid's cases of the last 90 days, newest first")


class DispatchPerson(Model):
    id: int
    name: str
    role: str = one_of(STAFF_ROLES)
    duty: str | None = Field(description="their duty in the case's grid (chief, member, embedded); null: of its "
                             "community or street")
    grid: str | None


class DepartmentRef(Model):
    code: str
    name: str
    name_en: str | None


class DispatchOptions(Model):
    people: list[DispatchPerson]
    departments: list[DepartmentRef]


class EventStep(Model):
    """One step of an event's loop: who took it, in which role, when and why."""
    action: str
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str
    actor: str
    role: str
    at: Timestamp
    note: str | None
    data: dict[str, Any] | None


class DeadlineHours(Model):
    urgent: int
    high: int
    normal: int


class Category(Model):
    code: str
    name: str
    name_en: str | None
    kind: str = one_of(CATEGORY_KINDS)
    route: str = one_of(ROUTES, "where its events go: the grid's member, the embedded police, the department")
    department: str | None
    public: bool = Field(description="its events are published on Open311 (GET /open311/v2/requests)")
    deadline_hours: DeadlineHours
    clock: str = one_of(("working", "wall"), "how its deadlines count: the city's working time, or the clock "
                        "(safety, police; an urgent report of any category runs on the clock too)")
    accept_hours: float = Field(description="立案: accepted within so many hours of the report")
    dispatch_hours: float = Field(description="派遣: dispatched within so many hours of the acceptance")


class CalendarEntry(Model):
    day: str = Field(description="YYYY-MM-DD")
    working: bool = Field(description="false: a day off; true: a working day (a make-up day, 调休)")
    name: str
    own: bool = Field(description="the city's own entry (it wins over the national one)")
    source: str | None = None


class WorkingCalendar(Model):
    """The exceptions to Monday–Friday in a year of a city's working time."""
    year: int
    timezone: str
    working_hours: list[str] = Field(description="the periods of a working day, e.g. 08:30-12:00")
    national_calendar: bool = Field(description="China's holidays and make-up days apply (a city with a GB/T 2260 "
                                    "code)")
    national_known_until: str | None = Field(description="the last day the national calendar knows (the "
                                             "chinesecalendar package's): later years count Monday–Friday")
    days: list[CalendarEntry]


class Escalated(Model):
    id: int
    level: str = one_of(LEVELS)
    due_at: Timestamp | None


class Escalations(Model):
    escalated: int
    events: list[Escalated]


class BulkLoad(Model):
    """What a bulk file did: how many rows were stored, and where the placement put them."""
    rows: int
    stored: int
    in_grid: int
    nearest: int
    street_queue: int
    closed: int
    archives: list[str] = Field(description="the archive partitions the closed cases went into")
    seconds: float
    events_per_s: int | None


class StaffGrid(Model):
    code: str
    duty: str = one_of(GRID_DUTIES)


class StaffMember(Model):
    id: int
    name: str
    role: str = one_of(STAFF_ROLES)
    unit: str | None = Field(description="the code of their community or street")
    grids: dict[str, str] = Field(description="grid code → duty (chief, member, embedded)")


# ---------------------------------------------------------------- KPIs

class KpiRow(Model):
    """One unit's figures for the period (GB/T 30428.4 style). Rates are null when their denominator is 0."""
    unit: str = Field(description="the unit's code (a department's code, by department)")
    reported: int
    dispatched: int
    due: int = Field(description="events whose deadline fell in the period")
    suspended: int
    hung: int = Field(description="cases hung now (挂账): parked with a reason and a review date, counted apart")
    hung_due: int = Field(description="of the events due in the period, those hung now (left out of on-time closure)")
    closed_on_time: int
    closed: int
    on_time_closure_rate: float | None = Field(description="closed on time / (due − suspended − hung)")
    on_time_rate_with_open_overdue: float | None = Field(
        description="closed on time / (closed + open overdue now), over the period's closed cases (Austin 311)")
    closure_rate: float | None = Field(description="closed of those dispatched / dispatched")
    rework_rate: float | None
    extension_rate: float | None
    mean_handling_hours: float | None
    open_overdue: int
    returns: int = Field(description="cases sent back to the centre (退单) in the period")
    bounced: int = Field(description="of those, the cases returned more than once in all")
    late_accept: int = Field(description="立案 late: of the cases reported in the period")
    late_dispatch: int = Field(description="派遣 late: of the cases reported in the period")
    late_handling: int = Field(description="handling late: of the cases due in the period")
    supervised: int = Field(description="督办: cases whose supervision deadline fell in the period")
    supervised_on_time: int = Field(description="of those, closed by the supervision deadline")
    supervised_open_overdue: int = Field(description="supervised cases open past their supervision deadline now")


class Kpis(Model):
    by: str = one_of(("city", "grid", "community", "street", "district", "department", "source"))
    start: Timestamp
    end: Timestamp
    units: list[KpiRow]


# ---------------------------------------------------------------- cities, units, grids

class City(Model):
    id: int
    name: str
    name_en: str | None
    code: str | None
    buildings: int
    households: int
    households_est: int
    buildings_confirmed: int
    key_places: int
    admin_units: int
    walk_edges: int
    drive_edges: int


class UnitProperties(Model):
    id: int
    level: str = one_of(UNIT_LEVELS)
    code: str | None
    name: str
    name_en: str | None
    parent_id: int | None
    city_id: int | None
    source: str


class GridProperties(Model):
    id: int
    code: str = Field(description="15 digits: community (12) + grid (3)")
    name: str
    community_id: int
    households: int = Field(description="confirmed counts where given, else estimates")
    buildings: int
    source: str
    note: str | None
    version: int
    city_id: int


class BuildingProperties(Model):
    id: int
    osm_type: str
    osm_id: int
    name: str | None
    building_type: str | None
    use: str
    levels: float | None
    levels_source: str | None
    area_m2: float
    households: int
    households_est: int
    households_override: int | None
    households_source: str | None
    residents: int | None
    grid_id: int | None
    city_id: int


class KeyPlaceProperties(Model):
    id: int
    osm_type: str
    osm_id: int
    kind: str
    name: str | None
    city_id: int


Area = Polygon | MultiPolygon


class Layer(Model):
    """A page of a layer (RFC 7946 FeatureCollection) with OGC API Features' paging counts."""
    type: Literal["FeatureCollection"]
    numberMatched: int
    numberReturned: int


class UnitLayer(Layer):
    features: list[Feature[Area, UnitProperties]]


class GridLayer(Layer):
    features: list[Feature[Area, GridProperties]]


class BuildingLayer(Layer):
    features: list[Feature[Area, BuildingProperties]]


class KeyPlaceLayer(Layer):
    features: list[Feature[Point | Area, KeyPlaceProperties]]


class GridTotals(Model):
    code: str
    version: int
    households: int
    buildings: int
    in_band: bool


class BuildingMove(Model):
    building_id: int
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None
    households: int


class StaffToReassign(Model):
    staff_id: int
    name: str
    role: str = one_of(STAFF_ROLES)
    grid: str
    duty: str = one_of(GRID_DUTIES)
    what: str


class EventMoved(Model):
    event_id: int
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None
    assignee: int | None = Field(default=None, description="the grid's person, for an event held at grid level")


class GridChange(Model):
    """What a grid edit changes (or would change, with ``dry_run``)."""
    change: str
    dry_run: bool
    grids: list[GridTotals] = Field(description="the grids after the change (empty for a dry run)")
    created: list[str]
    retired: list[str]
    buildings_moved: int
    households_moved: int
    moves: list[BuildingMove] = Field(description="buildings that change grid (the first hundreds)")
    staff: list[StaffToReassign] = Field(description="staff whose grid is retired")
    events_reassigned: int
    events: list[EventMoved] = Field(description="open events moved to the grid that now holds them")
    warnings: list[str]


class GridVersion(Model):
    version: int
    change: str
    author: str
    reason: str
    valid_from: Timestamp
    valid_to: Timestamp | None
    geometry: Area


class GridAtTime(Model):
    code: str
    version: int
    valid_from: Timestamp
    valid_to: Timestamp | None


class GridAt(Model):
    lon: float
    lat: float
    at: Timestamp
    grid: GridAtTime | None = Field(description="null when no grid of your jurisdiction covered the point")


class UnitAt(Model):
    lon: float
    lat: float
    at: Timestamp
    level: str
    unit: GridAtTime | None = Field(description="null when no unit of your jurisdiction covered the point")


# ---------------------------------------------------------------- patrols

class Turn(Model):
    at_m: float
    name: str | None
    length_m: float


class StepProperties(Model):
    kind: Literal["step"]
    seq: int
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    name: str | None
    length_m: float
    required: bool
    repeat: bool


class StopProperties(Model):
    kind: Literal["stop"]
    number: int
    place_kind: str
    name: str | None
    after_step: int
    off_route_m: float
    dwell_min: float


class BaseProperties(Model):
    kind: Literal["base"]
    node: int
    given: bool
    snapped_m: float


class RouteSummary(Model):
    grid: str
    length_m: float
    required_m: float
    deadhead_m: float
    deadhead_share: float
    minutes: float
    required_edges: int
    covered_edges: int
    unreachable_edges: int
    optimal: bool = Field(description="true when the route is the shortest walk (the postman optimum, or the rural "
                                      "postman solved exactly by CP-SAT)")
    required_pieces: int
    lower_bound_m: float | None = Field(None, description="a proven lower bound on the shortest walk")
    gap: float | None = Field(None, description="(length − lower bound) ÷ length: 0 when optimal")
    stops: int
    dwell_min: float
    minutes_with_stops: float
    unreachable: list[list[int]]
    turns: list[Turn]
    optional_edges: int
    hot_spots: int
    hot_spot_rule: str


class BasicPatrol(Model):
    """The weekly basic patrol: a closed walk over every required street of the grid (a rural postman tour),
    its steps in order, the key places and hot spots on the way, and where it starts."""
    type: Literal["FeatureCollection"]
    properties: RouteSummary
    features: list[Feature[LineString, StepProperties] | Feature[Point, StopProperties]
                   | Feature[Point, BaseProperties]]


class TourProperties(Model):
    kind: Literal["tour"]
    tour: int
    length_m: float
    minutes: float
    stops: int
    label: str
    buildings: int | None = None
    risk: float | None = None


class Reason(Model):
    """Why a place is risky: a recent event (``id``, ``category``, ``open``) or a key place (``kind``, ``name``)."""
    what: str = one_of(("event", "key place"))
    id: int | None = None
    category: str | None = None
    open: bool | None = None
    kind: str | None = None
    name: str | None = None


class TourStopProperties(Model):
    kind: Literal["stop"]
    tour: int
    seq: int
    node: int
    label: str
    buildings: list[int] | None = None
    risk: float | None = None
    why: list[Reason] | None = None


class DroppedProperties(Model):
    kind: Literal["dropped"]
    node: int
    risk: float
    why: list[Reason]
    label: str


class InspectionSummary(Model):
    grid: str
    title: str
    tours: int
    length_m: float
    buildings: int
    unreachable_buildings: list[int]
    shift_min: float
    minutes_per_building: float
    base_node: int
    base_snapped_m: float


class Inspection(Model):
    """The monthly full inspection: tours (one a shift or a member) that between them pass every building."""
    type: Literal["FeatureCollection"]
    properties: InspectionSummary
    features: list[Feature[LineString, TourProperties] | Feature[Point, TourStopProperties]]


class PartProperties(Model):
    kind: Literal["tour"]
    tour: int = Field(description="the part's number")
    length_m: float
    minutes: float
    stops: int
    streets: int = Field(description="the street segments this part walks (each in exactly one part)")
    required_m: float
    optimal: bool = Field(description="whether the part's own route is the postman optimum of its streets")
    lower_bound_m: float | None = Field(description="a proven lower bound on the part's own route (its length "
                                        "when optimal)")
    gap: float | None = Field(description="how far the part's route may be above its optimum: 1 − bound ÷ length")
    label: str


class PartStartProperties(Model):
    kind: Literal["start"]
    tour: int
    node: int
    label: str


class SplitSummary(Model):
    grid: str
    title: str
    k: int
    longest_m: float = Field(description="the longest part: what the split minimises")
    total_m: float
    single_route_m: float = Field(description="the basic patrol walked by one member")
    lower_bound_m: float
    ratio_to_lower_bound: float
    local_search_moves: int
    seconds: float
    single_route_optimal: bool
    base_node: int
    base_snapped_m: float
    own_starts: bool
    lower_bound_rule: str


class SharedPatrol(Model):
    """The basic patrol shared among k members: k closed walks, each from its start, that together walk every
    street once or more, the longest as short as the split could make it."""
    type: Literal["FeatureCollection"]
    properties: SplitSummary
    features: list[Feature[LineString, PartProperties] | Feature[Point, PartStartProperties]]


class RiskScores(Model):
    key_place: float
    event: float
    open_event: float


class BudgetedSummary(Model):
    grid: str
    title: str
    budget_min: float
    minutes: float
    length_m: float
    dwell_min: float
    risk: float
    risk_total: float
    risk_share: float
    stops: int
    dropped: int
    events_since_days: int
    key_places: int
    events: int
    base_node: int
    base_snapped_m: float
    risk_scores: RiskScores


class BudgetedRound(Model):
    """A round that fits a time budget and visits the riskiest places first (a prize-collecting tour)."""
    type: Literal["FeatureCollection"]
    properties: BudgetedSummary
    features: list[Feature[LineString, TourProperties] | Feature[Point, TourStopProperties]
                   | Feature[Point, DroppedProperties]]


class StreetProperties(Model):
    id: str = Field(description="u-v-key of the walk network's segment")
    name: str | None
    highway: str | None
    length_m: float
    optional: bool
    marked_by: str | None = None
    reason: str | None = None
    marked_at: Timestamp | None = None


class StreetsSummary(Model):
    grid: str
    segments: int
    required_segments: int
    optional_segments: int
    required_m: float
    optional_m: float
    marked: int | None = Field(default=None, description="after a change: segments newly marked optional")
    unmarked: int | None = Field(default=None, description="after a change: segments required again")


class GridStreets(FeatureCollection[Feature[LineString, StreetProperties]]):
    """The grid's streets, each required or marked optional by a planner."""
    properties: StreetsSummary


# ---------------------------------------------------------------- visits

class Visit(Model):
    """A logged visit, its track matched to the grid's streets."""
    id: int
    grid: str
    staff_id: int | None
    kind: str = one_of(VISIT_KINDS)
    started_at: Timestamp
    ended_at: Timestamp
    track: bool = Field(description="whether a GPS track came with it")
    tolerance_m: float
    required_m: float
    walked_m: float
    walked_share: float | None
    segments_required: int
    segments_walked: int
    buildings: list[int]
    unknown_buildings: list[int] = Field(description="building ids given that are not the grid's")
    note: str
    position: Point | None
    matched_by: str = Field(description="hmm: the track map-matched to the streets; buffer: the buffer test "
                                        "(tolerance_m), where the matcher found no path or was not asked")
    gps_sigma_m: float | None = Field(description="the GPS error the matcher assumed (σ, metres)")
    replayed: bool | None = Field(default=None, description="true: a retry with the same idempotency key")


class Week(Model):
    week_of: Day
    visits: int
    walked_share: float
    staff: list[int]
    basic_patrol: str = one_of(("done", "missed", "open"))


class ComplianceRules(Model):
    tolerance_m_default: float
    segment_walked_share: float
    basic_done_share: float
    inspection: str


class Compliance(Model):
    """Was the weekly basic patrol done in each week of the month, and the monthly full inspection?"""
    grid: str
    month: str
    weeks: list[Week]
    basic_patrols_done: int
    weeks_in_month: int
    street_share_walked: float | None
    buildings: int
    buildings_visited: int
    full_inspection: str = one_of(("done", "missed", "open"))
    rules: ComplianceRules


class ScheduleItem(Model):
    date: Day
    kind: str = one_of(("basic", "inspection"))
    staff_id: int | None
    staff_name: str | None
    duty: str | None
    status: str = one_of(("done", "missed", "planned"))
    week_of: Day | None = None
    tour: int | None = None
    part: int | None = Field(None, description="shared: the part of the basic patrol this person walks that week")
    parts: int | None = None
    part_length_m: float | None = None


class ScheduleCompliance(Model):
    basic_patrols_done: int
    weeks_in_month: int
    full_inspection: str
    buildings_visited: int
    buildings: int


class Schedule(Model):
    """A month's patrol plan for a grid and its people, each item with its status."""
    grid: str
    month: str
    people: int
    inspection_tours: int
    shared_parts: int = Field(description="the parts the basic patrol is shared in (0: each person walks it whole)")
    warning: str | None
    items: list[ScheduleItem]
    compliance: ScheduleCompliance


# ---------------------------------------------------------------- coverage

REACH = r"^(households|key_places)_(police|base)_\d+(\.\d+)?min(_share)?$"
"""The per-minute reach columns of a coverage row, one per source and minute asked for."""
_REACH = re.compile(REACH)


class CoverageRow(Model):
    """One unit's coverage. Besides the fields below, for each minute M asked for and each source (``police``:
    the police stations, ``base``: the grid's base), ``households_{source}_{M}min`` and
    ``key_places_{source}_{M}min`` (reached within M minutes) and their ``…_share``."""
    model_config = ConfigDict(extra="allow", json_schema_extra={"patternProperties": {REACH: {"type": "number"}}})
    level: str
    code: str
    name: str
    grids: int
    street_m: float
    planned_m: float
    walked_m: float
    households: int
    households_near_network: int
    buildings: int
    buildings_visited: int
    key_places: int
    key_places_visited: int
    events: int
    planned_share: float | None
    walked_share: float | None
    buildings_visited_share: float | None
    key_places_visited_share: float | None
    households_near_network_share: float | None
    events_per_1000_households: float | None

    @model_validator(mode="after")
    def _reach_only(self) -> CoverageRow:
        odd = [k for k in self.model_extra or {} if not _REACH.match(k)]
        if odd:
            raise ValueError(f"undeclared coverage fields {odd}")
        return self


class Coverage(Model):
    """Per unit, how much of it the patrols walked and the police and grid bases reach in the minutes asked for."""
    city_id: int
    by: str = one_of(("grid", "community", "street", "district"))
    start: Timestamp
    end: Timestamp
    mode: str
    minutes: list[float]
    speed_m_per_min: float
    network: str
    police_stations: int
    seconds: float
    rows: list[CoverageRow]


# ---------------------------------------------------------------- people

class UserUnit(Model):
    level: str = one_of(USER_LEVELS)
    code: str | None
    city_id: int | None


class Me(Model):
    id: int
    username: str
    display_name: str
    role: str = one_of(USER_ROLES)
    unit: UserUnit
    staff_id: int | None
    department: str | None
    active: bool
    grids: list[StaffGrid]



def documented(model: Any, *, status: int = 200, also: Sequence[str] = ()) -> dict[int | str, Any]:
    """The OpenAPI entry of an answer ``model`` (a model, or a list of one) documents, served besides as the media
    types ``also`` (``format=html``, ``gpx``, ``csv``): ``responses=documented(Event)`` on a route."""
    return {status: {"model": model, "content": {media: {} for media in also}}}
