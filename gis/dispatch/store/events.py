"""Events: intake and assignment by location, the closed loop, deadlines and escalation (DOMAIN.md "Events").

Assignment rules, in order (the event stores which one placed it, in ``assignment_rule``):

1. **Grid.** The grid that contains the point (the lowest code on a shared edge), else the nearest grid within
   ``radius_m`` (default 50 m), else the **centre queue of the nearest street** within 1 km, flagged for a person
   to look at; farther than that the point is outside the service area (a 422). The rule is written once, in
   ``gis/dispatch/sql/placement.sql``, which single and bulk intake both use.
2. **Person.** By the category's route: ``police`` categories go to the grid's embedded police officer (the
   community's, failing that), ``department`` categories straight to the category's department; ``grid``
   categories to the member on duty by the roster at the moment of the report (the city's local time), failing
   that the grid chief. No one at all: the event stays in the grid's queue, flagged.

The loop: reported → accepted → dispatched → handled (feedback) → verified → closed (evaluated), with reject and
merge (a duplicate) before dispatch, rework (verification failed: back to dispatched), suspend/resume (the clock
stops), extend (a later deadline) and escalate. With auto-dispatch (the default) intake accepts and dispatches in
the same transaction, as the system, so the deadline clock starts at once. Each step is a row in
``event_transitions`` with actor, role, time and note; a step the state does not allow is a ConflictError (409),
a step the role may not take a ForbiddenError (403).

Deadlines count the city's working time (``gis.dispatch.worktime``: its working hours, China's holidays and
make-up working days, its own days off), except urgent reports and wall-clock categories (safety, police), and
there is a clock per stage: accept (立案) within the category's ``accept_hours`` of the report, dispatch within
its ``dispatch_hours`` of the acceptance, handling within its hours for the priority. A passed deadline escalates
grid → community → street → department, each level getting a fresh period; the event is then marked
``missed_deadline`` and cannot count as closed on time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg2
from sqlalchemy.engine import Connection, Engine

from gis.db.prepared import Prepared
from gis.dispatch.queries import EVENT_PLACE
from gis.dispatch.rules import (
    ASSIGNING,
    DEFAULT_RADIUS_M,
    DUPLICATE_RADIUS_M,
    DUPLICATE_WINDOW,
    OPEN_STATES,
    STREET_RADIUS_M,
    EventIn,
    EventNow,
    Intake,
    plan_step,
)
from gis.errors import ConflictError, GridpatrolError, InputError, NotFoundError
from gis.geo.coords import system, to_wgs84


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_row_to_dict(row: Sequence[Any], *, with_contact: bool = False) -> dict[str, Any]:
    """An event as clients see it, from a row of the view ``event_rows`` (migration 0005)."""
    (eid, state, cat, cat_name, cat_en, priority, source, description, photos, lon, lat, in_crs, in_lon, in_lat,
     grid, community, street, queue, staff_id, staff_name, staff_role, department, rule, flagged, duplicate_of,
     level, reported, dispatched, due, closed, on_time, missed, reworks, extensions, escalations, suspended_s,
     evaluation, updated, contact, accept_due, accepted, accept_late, dispatch_due, dispatch_late, supervised,
     supervision_due, supervision_unit, supervision_note, assisting) = row
    out = {
        "id": eid, "state": state, "category": cat, "category_name": cat_name, "category_name_en": cat_en,
        "priority": priority, "source": source, "description": description, "photos": photos,
        "location": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
        "input": {"crs": in_crs, "lon": in_lon, "lat": in_lat},
        "grid": grid, "community": community, "street": street, "queue": queue, "level": level,
        "assignee": {"id": staff_id, "name": staff_name, "role": staff_role} if staff_id is not None else None,
        "department": department, "assignment_rule": rule, "flagged": flagged, "duplicate_of": duplicate_of,
        "reported_at": _iso(reported), "dispatched_at": _iso(dispatched), "due_at": _iso(due),
        "closed_at": _iso(closed), "closed_on_time": on_time, "missed_deadline": missed, "reworks": reworks,
        "extensions": extensions, "escalations": escalations, "suspended_seconds": suspended_s,
        "evaluation": evaluation, "updated_at": _iso(updated),
        "accept_due_at": _iso(accept_due), "accepted_at": _iso(accepted), "accept_late": accept_late,
        "dispatch_due_at": _iso(dispatch_due), "dispatch_late": dispatch_late,
        "supervision": {"since": _iso(supervised), "due_at": _iso(supervision_due), "unit": supervision_unit,
                        "note": supervision_note} if supervised is not None else None,
        "assisting": list(assisting or []),
    }
    if with_contact:
        out["reporter_contact"] = contact
    return out


_INTAKE = Prepared("gridpatrol_intake_batch", """
    SELECT r.ord, r.replayed, r.error_code, r.error, (r.event).* FROM gridpatrol_intake_batch(%(reports)s, %(auto)s,
        %(radius)s, %(street_radius)s, %(timezone)s, %(window)s, %(dup_radius)s) r""", {
    "reports": "jsonb", "auto": "bool", "radius": "float8", "street_radius": "float8", "timezone": "text",
    "window": "interval", "dup_radius": "float8"})
_CLIENT_ERRORS: dict[str, type[GridpatrolError]] = {"GP422": InputError, "GP409": ConflictError}


def intake(engine: Engine, report: EventIn, *, auto_dispatch: bool = True, radius_m: float = DEFAULT_RADIUS_M,
           timezone: str = "Asia/Shanghai", now: datetime | None = None) -> Intake:
    """Place, assign and store one report (the rules of the module docstring); committed before it returns. A
    retry with the same idempotency key returns the first result; the same key with a different report is a
    ConflictError."""
    (result,) = intake_many(engine, [(report, now or datetime.now(UTC))], auto_dispatch=auto_dispatch,
                            radius_m=radius_m, timezone=timezone)
    if isinstance(result, Exception):
        raise result
    return result


def intake_many(engine: Engine, reports: Sequence[tuple[EventIn, datetime]], *, auto_dispatch: bool = True,
                radius_m: float = DEFAULT_RADIUS_M, timezone: str = "Asia/Shanghai") -> list[Intake | Exception]:
    """Store ``reports`` (each with the moment it was reported) in one database call and one commit, in order,
    each by the rules of the module docstring (carried out by ``gridpatrol_intake_batch``, migration 0010).
    Answers, per report, its :class:`Intake` or what refused it: the error a client can fix (InputError,
    ConflictError), or a database error only that report caused; a bad report refuses only itself. All are
    committed before it returns. A database that cannot be reached raises, for the whole batch.

    Batching is what lets intake keep up under load: the round trip, the statement and the commit are shared by
    the batch (``api.intake`` hands it every report waiting at once)."""
    answers: list[Intake | Exception | None] = [None] * len(reports)
    items: list[bytes] = []  # each report as the JSON object gridpatrol_intake_batch reads
    sent: list[int] = []  # the index in ``reports`` of each item sent
    for i, (report, at) in enumerate(reports):
        try:
            report.check()
            lon, lat = to_wgs84(report.lon, report.lat, report.crs)
            items.append(orjson.dumps({
                "key": report.idempotency_key, "hash": report.fingerprint() if report.idempotency_key else None,
                "category": report.category, "priority": report.priority, "source": report.source,
                "description": report.description, "contact": report.reporter_contact, "photos": report.photos,
                "crs": system(report.crs), "in_lon": report.lon, "in_lat": report.lat, "x": lon, "y": lat,
                "at": at.isoformat(), "dup_deg": _degrees(DUPLICATE_RADIUS_M, lat), "publish": report.publish}))
        except (GridpatrolError, orjson.JSONEncodeError) as exc:
            answers[i] = exc
            continue
        sent.append(i)

    def params(batch: list[bytes]) -> dict[str, Any]:
        return {"reports": (b"[" + b",".join(batch) + b"]").decode(), "auto": auto_dispatch, "radius": radius_m,
                "street_radius": STREET_RADIUS_M, "timezone": timezone, "window": DUPLICATE_WINDOW,
                "dup_radius": DUPLICATE_RADIUS_M}

    rows: list[tuple[Any, ...]] = []
    try:
        rows = _run_intake(engine, params(items)) if items else []
    except psycopg2.OperationalError:  # the database, not a report: the whole batch
        raise
    except psycopg2.Error:
        if len(items) == 1:
            raise
        # something no rule foresaw failed the batch (nothing of it is stored): each report on its own, so that
        # the failure is the one report's that caused it
        for n, item in enumerate(items, 1):
            try:
                rows += [(n, *row[1:]) for row in _run_intake(engine, params([item]))]
            except psycopg2.Error as exc:
                answers[sent[n - 1]] = exc
    for ord_, replayed, code, message, *event in rows:
        i = sent[ord_ - 1]
        if code is not None:
            answers[i] = _CLIENT_ERRORS[code](message)
        else:
            answers[i] = Intake(event_row_to_dict(event, with_contact=True), replayed)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def _run_intake(engine: Engine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    for attempt in (1, 2):
        raw = engine.raw_connection()  # the pool's DBAPI connection: SQLAlchemy's layer costs more than the call
        db: Any = raw.dbapi_connection
        try:
            db.autocommit = True  # one statement, its own transaction: committed when it returns
            cur = db.cursor()
            _INTAKE.run(cur, params)
            return cur.fetchall()  # type: ignore[no-any-return]
        except psycopg2.Error as exc:
            if db.closed and attempt == 1:
                # the pooled connection was broken (the database restarted since it was last used): once more on
                # a fresh one. (Should it break after the commit, before the answer, a report without an
                # idempotency key would be stored twice: clients that retry send a key.) The pool's other
                # connections date from before the same restart: a fresh pool, as SQLAlchemy does on a disconnect.
                raw.invalidate(exc)
                engine.dispose(close=False)
                continue
            raise
        finally:
            if not db.closed:
                db.autocommit = False
            raw.close()  # back to the pool (a broken one is dropped there)
    raise AssertionError("unreachable")


def _degrees(metres: float, lat: float) -> float:
    """At least ``metres`` in degrees of longitude and latitude at ``lat``: a search box the GiST index can use."""
    return metres / (111_320 * max(math.cos(math.radians(lat)), 0.01)) * 1.01


def _cursor(conn: Connection) -> Any:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return raw.cursor()


def _read(cur: Any, event_id: int, *, with_contact: bool) -> dict[str, Any]:
    cur.execute("SELECT * FROM event_rows WHERE id = %s", (event_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError(f"no event {event_id}")
    return event_row_to_dict(row, with_contact=with_contact)


def event_place(conn: Connection, event_id: int) -> tuple[int, str | None, str | None, str, str] | None:
    """Where an event lies, as a jurisdiction check reads it: ``(city id, grid or street code, department, level,
    queue)``; ``None`` when there is no such event."""
    row = conn.exec_driver_sql(f"{EVENT_PLACE} WHERE e.id = %(i)s", {"i": event_id}).first()
    return tuple(row) if row is not None else None  # type: ignore[return-value]


def get_event(conn: Connection, event_id: int, *, with_contact: bool = False) -> dict[str, Any]:
    return _read(_cursor(conn), event_id, with_contact=with_contact)


def history(conn: Connection, event_id: int) -> list[dict[str, Any]]:
    cur = _cursor(conn)
    cur.execute("SELECT 1 FROM events WHERE id = %s", (event_id,))
    if cur.fetchone() is None:
        raise NotFoundError(f"no event {event_id}")
    # an event loaded from a file begins with its import (one record per file: migration 0011)
    cur.execute("SELECT 'import', NULL, i.state, i.author, 'system', e.reported_at, i.note, NULL::jsonb, 0 AS id "
                "FROM events e JOIN event_imports i ON i.id = e.import_id WHERE e.id = %(e)s UNION ALL "
                "SELECT action, from_state, to_state, actor, role, at, note, data, id FROM event_transitions "
                "WHERE event_id = %(e)s ORDER BY 6, 9", {"e": event_id})
    return [{"action": a, "from": f, "to": t, "actor": who, "role": r, "at": at.isoformat(), "note": n,
             "data": d} for a, f, t, who, r, at, n, d, _ in cur.fetchall()]


def act(engine: Engine, event_id: int, action: str, *, actor: str, role: str, note: str | None = None,
        actor_staff_id: int | None = None, now: datetime | None = None, **options: Any) -> dict[str, Any]:
    """:func:`take_step` in a transaction of its own."""
    with engine.begin() as conn:
        return take_step(conn, event_id, action, actor=actor, role=role, note=note, actor_staff_id=actor_staff_id,
                         now=now, **options)


def take_step(conn: Connection, event_id: int, action: str, *, actor: str, role: str, note: str | None = None,
              actor_staff_id: int | None = None, now: datetime | None = None, into: int | None = None,
              **options: Any) -> dict[str, Any]:
    """Take one step of the loop on an event, in the caller's transaction (it never commits): the rule is
    :func:`gis.dispatch.rules.plan_step` (``options``: its keywords); this loads the event (locked), applies the
    plan and records the step with actor, role, time and note. ``actor_staff_id``: the actor's staff record (the
    assignee alone may receive and handle)."""
    at = now or datetime.now(UTC)
    cur = _cursor(conn)
    cur.execute("SELECT e.state, e.level, e.priority, e.due_at, e.suspended_at, e.missed_deadline, e.updated_at, "
                "e.assignee_staff_id, e.community_id, e.street_id, c.department_code, "
                "c.hours_urgent, c.hours_high, c.hours_normal, "
                "(SELECT t.actor FROM event_transitions t WHERE t.event_id = e.id AND t.action = 'handle' "
                " ORDER BY t.at DESC, t.id DESC LIMIT 1), "
                "(SELECT t.action FROM event_transitions t WHERE t.event_id = e.id "
                " ORDER BY t.at DESC, t.id DESC LIMIT 1), "
                "e.city_id, e.priority = 'urgent' OR c.clock = 'wall', c.dispatch_hours, e.accept_due_at, "
                "e.dispatch_due_at, e.dispatch_late, e.department_code, e.assisting "
                "FROM events e JOIN categories c ON c.code = e.category_code WHERE e.id = %s FOR UPDATE OF e",
                (event_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError(f"no event {event_id}")
    (state, level, priority, due, suspended_at, missed, updated_at, assignee, community_id, street_id, department,
     urgent, high, normal, handled_by, last_action, city_id, wall, dispatch_hours, accept_due, dispatch_due,
     dispatch_late, event_department, assisting) = row
    period = timedelta(hours={"urgent": urgent, "high": high, "normal": normal}[priority])
    event = EventNow(event_id, state, level, priority, period, due, suspended_at, missed, updated_at, assignee,
                     handled_by, last_action, clock=SqlClock(cur, city_id, wall),
                     dispatch_period=timedelta(hours=dispatch_hours), accept_due_at=accept_due,
                     dispatch_due_at=dispatch_due, dispatch_late=dispatch_late, department=event_department,
                     assisting=tuple(assisting or ()))
    _check_codes(cur, options)
    into_state = None
    if action == "merge" and into is not None:
        cur.execute("SELECT state FROM events WHERE id = %s", (into,))
        found = cur.fetchone()
        into_state = found[0] if found else None
    plan = plan_step(event, action, actor=actor, role=role, actor_staff_id=actor_staff_id, at=at, into=into,
                     into_state=into_state, note=note, **options)
    if plan.holder_level is not None:
        plan.sets.update(_level_holder(cur, plan.holder_level, community_id, street_id, department))
    if "paused_seconds" in plan.data:
        cur.execute("UPDATE events SET suspended_seconds = suspended_seconds + %s WHERE id = %s",
                    (plan.data["paused_seconds"], event_id))
    for counter in plan.counters:
        cur.execute(f"UPDATE events SET {counter} = {counter} + 1 WHERE id = %s", (event_id,))
    assignments = ", ".join(f"{k} = %({k})s" for k in plan.sets)
    cur.execute(f"UPDATE events SET {assignments} WHERE id = %(id)s", {**plan.sets, "id": event_id})
    cur.execute("INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note, "
                "data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (event_id, action, state, plan.target, actor, role, at, note,
                 json.dumps(plan.data) if plan.data else None))
    return _read(cur, event_id, with_contact=True)


def _check_codes(cur: Any, options: dict[str, Any]) -> None:
    """The departments a dispatch names and the unit a supervision names exist (an InputError naming the one that
    does not)."""
    for code in [options.get("department"), *(options.get("assisting") or ())]:
        if code is None:
            continue
        cur.execute("SELECT 1 FROM departments WHERE code = %s", (code,))
        if cur.fetchone() is None:
            cur.execute("SELECT string_agg(code, ', ' ORDER BY code) FROM departments")
            raise InputError(f"no department {code!r}: use one of {cur.fetchone()[0]}")
    unit = options.get("unit")
    if unit:
        cur.execute("SELECT 1 FROM admin_units WHERE code = %(u)s UNION ALL SELECT 1 FROM grids WHERE code = %(u)s "
                    "UNION ALL SELECT 1 FROM departments WHERE code = %(u)s LIMIT 1", {"u": unit.strip()})
        if cur.fetchone() is None:
            raise InputError(f"no unit, grid or department {unit!r} to answer for the case")


class SqlClock:
    """A city's deadlines as the database counts them (``gridpatrol_deadline``, ``gridpatrol_working_hours``:
    gis/dispatch/sql/worktime.sql), on the step's own cursor."""

    def __init__(self, cur: Any, city_id: int | None, wall: bool) -> None:
        self.cur, self.city_id, self.wall = cur, city_id, wall

    def deadline(self, start: datetime, hours: float) -> datetime:
        self.cur.execute("SELECT gridpatrol_deadline(%s, %s, %s, %s)", (self.city_id, start, hours, self.wall))
        return self.cur.fetchone()[0]  # type: ignore[no-any-return]

    def hours_between(self, start: datetime, end: datetime) -> float:
        self.cur.execute("SELECT gridpatrol_working_hours(%s, %s, %s, %s)", (self.city_id, start, end, self.wall))
        return float(self.cur.fetchone()[0])


def _level_holder(cur: Any, level: str, community_id: int | None, street_id: int | None,
                  department: str) -> dict[str, Any]:
    """Who holds an event escalated to ``level``: the unit's centre staff, or the category's department."""
    if level == "department":
        return {"queue": "department", "department_code": department, "assignee_staff_id": None}
    unit = community_id if level == "community" else street_id
    cur.execute("SELECT id FROM staff WHERE active AND role = 'centre_staff' AND unit_id = %s ORDER BY id LIMIT 1",
                (unit,))
    row = cur.fetchone()
    return {"queue": "street_centre" if level == "street" else "grid", "assignee_staff_id": row[0] if row else None}


def escalate_overdue(engine: Engine, *, now: datetime | None = None, city_id: int | None = None,
                     prefix: str | None = None) -> list[dict[str, Any]]:
    """Escalate every dispatched event whose deadline has passed by one level (grid → community → street →
    department), with a fresh period there; the event is marked as having missed its deadline. Returns what
    was escalated. Run every minute by the service, and by ``gridpatrol escalate``; ``city_id`` and ``prefix``
    keep it to a jurisdiction (a dispatcher's run of ``POST /escalations/run``)."""
    at = now or datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT e.id FROM events e LEFT JOIN admin_units su ON su.id = e.street_id WHERE e.state = 'dispatched' "
            "AND e.due_at < %(t)s AND e.level <> 'department' AND (%(city)s::int IS NULL OR e.city_id = %(city)s) "
            "AND (%(prefix)s::text IS NULL OR coalesce(e.grid_code, su.code) LIKE %(prefix)s || '%%') "
            "ORDER BY e.due_at", {"t": at, "city": city_id, "prefix": prefix}).all()
    done = []
    for (event_id,) in rows:
        try:
            event = act(engine, event_id, "escalate", actor="gridpatrol", role="system", now=at,
                        note="the deadline passed", deadline_passed=True)
        except ConflictError:  # moved on meanwhile
            continue
        done.append({"id": event_id, "level": event["level"], "due_at": event["due_at"]})
    return done


def _jurisdiction(*, city_id: int | None, department: str | None,
                  unit_code: str | None) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions (on ``event_rows v``) for the events of a city, a department's queue, or a unit's code."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    if city_id is not None:
        where.append("v.id IN (SELECT id FROM events WHERE city_id = %(city)s)")
        params["city"] = city_id
    if department is not None:
        where.append("((v.department = %(dep)s AND (v.level = 'department' OR v.queue = 'department')) "
                     "OR %(dep)s = ANY(v.assisting))")
        params["dep"] = department
    if unit_code is not None:
        where.append("(v.grid LIKE %(prefix)s OR v.street LIKE %(prefix)s)")
        params["prefix"] = unit_code + "%"
    return where, params


_RUNNING = "v.state IN ('dispatched', 'handled')"
"""Cases whose handling clock runs (overdue, due soon)."""
_DUPLICATE = "v.duplicate_of IS NOT NULL AND v.state IN ('reported', 'accepted')"
"""Possible duplicates waiting for a person."""
_RETURNED = ("v.state = 'accepted' AND (SELECT t.action FROM event_transitions t WHERE t.event_id = v.id "
             "ORDER BY t.at DESC, t.id DESC LIMIT 1) = 'return'")
"""Returned by a department (退单), waiting for the centre's decision."""
_SUPERVISED = "v.supervised_at IS NOT NULL AND v.state = ANY(%(open)s)"
"""Open cases under supervision (督办)."""


def list_events(conn: Connection, *, staff_id: int | None = None, states: Sequence[str] | None = None,
                grid: str | None = None, overdue_at: datetime | None = None, unit_code: str | None = None,
                city_id: int | None = None, department: str | None = None, with_contact: bool = False,
                after_id: int | None = None, limit: int = 100, offset: int = 0, category: str | None = None,
                source: str | None = None, due_before: datetime | None = None, duplicates: bool = False,
                returned: bool = False, supervised: bool = False,
                ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Events by assignee, state, grid, unit (district/street/community/grid code prefix), city, overdue at a time,
    or gone or escalated to a department; ``after_id``: only those reported after it (a live queue's new ones, in
    id order). The console's filters: ``category``, ``source``, ``due_before`` (dispatched or handled, due by
    then: "due soon"), ``duplicates`` (possible duplicates waiting for a person), ``returned`` (sent back by a
    department, waiting for the centre's decision), ``supervised`` (督办, open); ``ids``: those events. Sorted by
    deadline. The reporter's contact only ``with_contact``."""
    where, params = _jurisdiction(city_id=city_id, department=department, unit_code=unit_code)
    for key, value, sql in (
            ("ids", list(ids) if ids is not None else None, "v.id = ANY(%(ids)s)"),
            ("cat", category, "v.category = %(cat)s"),
            ("src", source, "v.source = %(src)s"),
            ("due_before", due_before, f"{_RUNNING} AND v.due_at < %(due_before)s"),
            ("after", after_id, "v.id > %(after)s"),
            ("staff", staff_id, "v.assignee_id = %(staff)s"),
            ("states", list(states) if states else None, "v.state = ANY(%(states)s)"),
            ("grid", grid, "v.grid = %(grid)s"),
            ("t", overdue_at, f"{_RUNNING} AND v.due_at < %(t)s")):
        if value is not None:
            where.append(sql)
            params[key] = value
    for wanted, sql in ((duplicates, _DUPLICATE), (returned, _RETURNED), (supervised, _SUPERVISED)):
        if wanted:
            where.append(sql)
    params.update(limit=limit, offset=offset, open=list(OPEN_STATES))
    cur = _cursor(conn)
    order = "v.id" if after_id is not None else "v.due_at NULLS LAST, v.id"
    cur.execute(f"SELECT * FROM event_rows v WHERE {' AND '.join(where)} "
                f"ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s", params)
    return [event_row_to_dict(r, with_contact=with_contact) for r in cur.fetchall()]


def last_event_id(conn: Connection) -> int:
    """The highest event id so far (0 when there is none): where a live queue starts."""
    return int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM events").scalar_one())


def state_counts(conn: Connection, *, unit_code: str | None = None, city_id: int | None = None,
                 department: str | None = None, now: datetime, soon: timedelta = timedelta(hours=2)) -> dict[str, int]:
    """How many events of a jurisdiction are in each open state, and how many are overdue or due within ``soon``,
    under supervision, possible duplicates, or returned and waiting for a decision: the counts a console keeps in
    view."""
    where, params = _jurisdiction(city_id=city_id, department=department, unit_code=unit_code)
    where.append("v.state = ANY(%(open)s)")
    params.update(open=list(OPEN_STATES), now=now, soon=now + soon)
    cur = _cursor(conn)
    cur.execute(f"""
        SELECT v.state, count(*),
               count(*) FILTER (WHERE {_RUNNING} AND v.due_at < %(now)s),
               count(*) FILTER (WHERE {_RUNNING} AND v.due_at >= %(now)s AND v.due_at < %(soon)s),
               count(*) FILTER (WHERE {_SUPERVISED}),
               count(*) FILTER (WHERE {_DUPLICATE}),
               count(*) FILTER (WHERE {_RETURNED})
        FROM event_rows v WHERE {' AND '.join(where)} GROUP BY v.state""", params)
    extra = ("overdue", "due_soon", "supervised", "duplicates", "returned")
    counts = {state: 0 for state in OPEN_STATES} | dict.fromkeys(extra, 0)
    for state, n, *more in cur.fetchall():
        counts[state] = int(n)
        for key, value in zip(extra, more, strict=True):
            counts[key] += int(value)
    return counts


def categories(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.exec_driver_sql(
        "SELECT code, name, name_en, kind, route, department_code, hours_urgent, hours_high, hours_normal, public, "
        "clock, accept_hours, dispatch_hours FROM categories ORDER BY code").all()
    return [{"code": c, "name": n, "name_en": e, "kind": k, "route": r, "department": d, "public": public,
             "deadline_hours": {"urgent": u, "high": h, "normal": m}, "clock": clock, "accept_hours": accept,
             "dispatch_hours": dispatch}
            for c, n, e, k, r, d, u, h, m, public, clock, accept, dispatch in rows]


def reassign_after_edit(cur: Any, community_id: int, *, author: str, reason: str, timezone: str = "Asia/Shanghai",
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """After a boundary change in a community, move its open events to the grid that now holds their point
    (lowest code on a shared edge), re-assign the grid's responsible person for those at grid level, and record
    a ``reassign`` step for each. Runs inside the edit's transaction."""
    at = now or datetime.now(UTC)
    cur.execute("""
        SELECT e.id, e.grid_code, e.level, e.queue, c.route, n.id, n.code
        FROM events e JOIN categories c ON c.code = e.category_code
        CROSS JOIN LATERAL (SELECT g.id, g.code FROM grids g WHERE g.community_id = %(c)s
                            AND ST_Intersects(g.geom, e.geom) ORDER BY g.code LIMIT 1) n
        WHERE e.community_id = %(c)s AND e.state = ANY(%(open)s) AND e.grid_code IS DISTINCT FROM n.code
        ORDER BY e.id""", {"c": community_id, "open": list(OPEN_STATES)})
    moved = []
    for event_id, old, level, queue, route, grid_id, code in cur.fetchall():
        sets: dict[str, Any] = {"grid_id": grid_id, "grid_code": code, "updated_at": at}
        if level == "grid" and queue in ("grid", "police") and route in ("grid", "police"):
            cur.execute("SELECT staff_id FROM gridpatrol_person(%s, %s, %s, %s AT TIME ZONE %s)",
                        (route, grid_id, community_id, at, timezone))
            person = cur.fetchone()
            sets["assignee_staff_id"] = person[0] if person else None
        assignments = ", ".join(f"{k} = %({k})s" for k in sets)
        cur.execute(f"UPDATE events SET {assignments} WHERE id = %(id)s RETURNING state", {**sets, "id": event_id})
        state = cur.fetchone()[0]
        data = {"from": old, "to": code, "assignee": sets.get("assignee_staff_id")}
        cur.execute("INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note, "
                    "data) VALUES (%s, 'reassign', %s, %s, %s, 'system', %s, %s, %s)",
                    (event_id, state, state, author, at, f"grid boundary changed: {reason}", json.dumps(data)))
        moved.append({"event_id": event_id, **data})
    return moved


def assignments_since(conn: Connection, staff_id: int, after: datetime) -> list[tuple[int, datetime]]:
    """(transition id, time) of the steps since ``after`` that left an event with ``staff_id``, oldest first."""
    rows = conn.exec_driver_sql("""
        SELECT t.id, t.at, e.id FROM event_transitions t JOIN events e ON e.id = t.event_id
        WHERE t.at > %(after)s AND t.action = ANY(%(actions)s) AND e.assignee_staff_id = %(staff)s
          AND e.state IN ('dispatched', 'suspended', 'handled')
        ORDER BY t.at, t.id""", {"after": after, "actions": list(ASSIGNING), "staff": staff_id}).all()
    return [(int(event_id), at) for _, at, event_id in rows]
