"""Key figures per unit for a period (DOMAIN.md "KPIs"): reported, dispatched, closed on time, rework, overdue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from gis.dispatch.queries import EVENT_FROM as _EVENT_FROM
from gis.dispatch.queries import OPEN_STATES_SQL
from gis.errors import InputError

KPI_FIELDS = ("unit", "reported", "dispatched", "due", "suspended", "hung", "hung_due", "closed_on_time", "closed",
              "on_time_closure_rate", "on_time_rate_with_open_overdue", "closure_rate", "rework_rate",
              "extension_rate", "mean_handling_hours", "open_overdue", "returns", "bounced", "late_accept",
              "late_dispatch", "late_handling", "supervised", "supervised_on_time", "supervised_open_overdue")


KPI_LEVELS = {"city": "e.city_id::text", "grid": "e.grid_code", "community": "cu.code", "street": "su.code",
              "district": "left(su.code, 6)", "department": "cat.department_code", "source": "e.source"}
"""Units KPIs roll up to: a district is its streets' first 6 digits (codes are hierarchical, DOMAIN.md); by
department, the responsible department of the category (the owner a bulletin ranks); by source, where the reports
came from (patrol, hotline, app, video, referral), which has figures of its own; by city, the city's id (a whole
city's own figures: the big screen and the bulletin of a city)."""

OVERDUE_STATES_SQL = "('dispatched', 'handled', 'verified')"
"""The states in which a case past its handling deadline counts as open overdue (``open_overdue``)."""

_COUNTED = f"""(greatest(e.reported_at, e.dispatched_at, e.due_at, e.closed_at, e.supervision_due_at) >= %(s)s
        OR e.state IN {OPEN_STATES_SQL}
        OR e.id = ANY(ARRAY(SELECT t.event_id FROM event_transitions t WHERE t.action = 'return' AND t.at >= %(s)s
                            AND t.at < %(e)s)))"""
"""The events that can count in a period starting at ``s``: every figure below counts an event that was reported,
dispatched, due, closed, under supervision or sent back in the period, or is open now. Every other one (all its
clocks before the period began) is left out before the figures are counted, each arm on an index of its own
(migration 0029: the latest clock, the open cases; the transitions' time), so a month of a city with years of history
reads the month's events and the open ones, not the whole history."""


def kpis(conn: Connection, by: str, start: datetime, end: datetime, *, now: datetime | None = None,
         prefix: str | None = None, city_id: int | None = None,
         within: str | None = None) -> list[dict[str, Any]]:
    """The figures units are ranked by (GB/T 30428.4 style), per unit, for events of the period [start, end).

    * on-time closure rate (按期结案率) = closed on time ÷ (due − suspended − hung), over the events due in the
      period (a hung case, 挂账, is parked like a suspended one, and counted apart: ``hung``, every one open now);
    * on-time rate with open overdue = closed on time ÷ (closed + open overdue), over the events closed in the
      period and those open past their deadline at ``now`` (Austin 311's figure: a backlog of overdue cases
      lowers it, where the GB/T figure only sees the cases whose deadline fell in the period);
    * closure rate = share of the events dispatched in the period that are closed;
    * rework rate = share of the events closed in the period that were sent back at least once;
    * extension rate = share of the events dispatched in the period that got a later deadline;
    * mean handling hours = dispatch to close, less suspended time, over the events closed in the period;
    * open overdue = open events past their deadline at ``now`` (an on-time rate over closed cases hides them);
    * returns = the cases sent back to the centre (退单) in the period; bounced = of the cases returned in the
      period, those returned more than once in all (cases "flying back and forth", 工单在天上飞);
    * which stage was late: ``late_accept`` (立案 after its deadline, or not yet and past it), ``late_dispatch``
      (派遣 likewise), of the events reported in the period; ``late_handling``, of those due in the period, closed
      late, escalated for a missed deadline, or open past it;
    * supervision (督办): ``supervised``, the cases whose supervision deadline fell in the period;
      ``supervised_on_time``, of those closed by it; ``supervised_open_overdue``, open past it now.

    ``prefix``: only units whose code starts so; ``city_id``: one city's events; ``within``: only the events whose
    grid (or, outside every grid, street) code starts so (a unit's view of its departments' figures).
    """
    return _kpis(conn, (by,), start, end, now=now, prefix=prefix, city_id=city_id, within=within)[0]


def kpis_and_children(conn: Connection, by: str, child: str, start: datetime, end: datetime, *,
                      now: datetime | None = None, prefix: str | None = None,
                      city_id: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`kpis` by ``by`` and by ``child`` (the level under it) in one pass over the events
    (``GROUPING SETS``): the rows of both, as two calls would give them. The events read are those of the ``by``
    units whose code starts with ``prefix``; a child's code starts with its parent's, so the children's rows are the
    ones ``kpis(conn, child, …, prefix=prefix)`` gives (an event placed in a child of another parent, which
    placement never does, would be counted apart). The big screen and the bulletin ask for a unit and its children
    together."""
    own, children = _kpis(conn, (by, child), start, end, now=now, prefix=prefix, city_id=city_id)
    return own, children


def _kpis(conn: Connection, levels: tuple[str, ...], start: datetime, end: datetime, *, now: datetime | None,
          prefix: str | None, city_id: int | None, within: str | None = None) -> list[list[dict[str, Any]]]:
    """The rows of :func:`kpis` for each of ``levels`` (one or two), read in one pass; filters on the first."""
    keys = [KPI_LEVELS.get(level) for level in levels]
    for level, k in zip(levels, keys, strict=True):
        if k is None:
            raise InputError(f"KPIs are by {', '.join(KPI_LEVELS)}; got {level!r}")
    key = str(keys[0])
    if end <= start:
        raise InputError("the period is empty: its end must come after its start")
    at = now or datetime.now(UTC)
    # a few hundred milliseconds of work at most: compiling it (JIT) would cost more than it saves
    conn.exec_driver_sql("SET LOCAL jit = off")
    if len(keys) == 1:
        selected, grouped = f"{key} AS unit, 0 AS which", "GROUP BY 1 ORDER BY 1"
    else:
        selected = (f"coalesce({key}, {keys[1]}) AS unit, GROUPING({key}) AS which")
        grouped = f"GROUP BY GROUPING SETS (({key}), ({keys[1]})) ORDER BY 2, 1"
    sql = f"""
        SELECT {selected},
            count(*) FILTER (WHERE e.reported_at >= %(s)s AND e.reported_at < %(e)s),
            count(*) FILTER (WHERE e.dispatched_at >= %(s)s AND e.dispatched_at < %(e)s),
            count(*) FILTER (WHERE e.due_at >= %(s)s AND e.due_at < %(e)s AND e.dispatched_at IS NOT NULL),
            count(*) FILTER (WHERE e.due_at >= %(s)s AND e.due_at < %(e)s AND e.state = 'suspended'),
            count(*) FILTER (WHERE e.due_at >= %(s)s AND e.due_at < %(e)s AND e.closed_on_time),
            count(*) FILTER (WHERE e.dispatched_at >= %(s)s AND e.dispatched_at < %(e)s AND e.state = 'closed'),
            count(*) FILTER (WHERE e.closed_at >= %(s)s AND e.closed_at < %(e)s),
            count(*) FILTER (WHERE e.closed_at >= %(s)s AND e.closed_at < %(e)s AND e.reworks > 0),
            count(*) FILTER (WHERE e.dispatched_at >= %(s)s AND e.dispatched_at < %(e)s AND e.extensions > 0),
            avg(extract(epoch FROM e.closed_at - e.dispatched_at) - e.suspended_seconds)
                FILTER (WHERE e.closed_at >= %(s)s AND e.closed_at < %(e)s) / 3600.0,
            count(*) FILTER (WHERE e.state IN {OVERDUE_STATES_SQL} AND e.due_at < %(now)s),
            count(*) FILTER (WHERE e.closed_at >= %(s)s AND e.closed_at < %(e)s AND e.closed_on_time),
            count(*) FILTER (WHERE e.state = 'hung'),
            count(*) FILTER (WHERE e.due_at >= %(s)s AND e.due_at < %(e)s AND e.state = 'hung'),
            coalesce(sum(r.in_period), 0), count(*) FILTER (WHERE r.in_period > 0 AND r.total > 1),
            count(*) FILTER (WHERE e.reported_at >= %(s)s AND e.reported_at < %(e)s AND (e.accept_late
                OR (e.state = 'reported' AND e.accept_due_at < %(now)s))),
            count(*) FILTER (WHERE e.reported_at >= %(s)s AND e.reported_at < %(e)s AND (e.dispatch_late
                OR (e.state = 'accepted' AND e.dispatch_due_at < %(now)s))),
            count(*) FILTER (WHERE e.due_at >= %(s)s AND e.due_at < %(e)s AND e.dispatched_at IS NOT NULL
                AND (e.closed_on_time IS FALSE OR e.missed_deadline OR (e.closed_at IS NULL AND e.due_at < %(now)s
                     AND e.state IN {OVERDUE_STATES_SQL}))),
            count(*) FILTER (WHERE e.supervision_due_at >= %(s)s AND e.supervision_due_at < %(e)s),
            count(*) FILTER (WHERE e.supervision_due_at >= %(s)s AND e.supervision_due_at < %(e)s
                AND e.closed_at <= e.supervision_due_at),
            count(*) FILTER (WHERE e.supervision_due_at < %(now)s AND e.closed_at IS NULL
                AND e.state NOT IN ('rejected', 'merged'))
        {_EVENT_FROM}
        LEFT JOIN (
            SELECT t.event_id, count(*) FILTER (WHERE t.at >= %(s)s AND t.at < %(e)s) AS in_period, count(*) AS total
            FROM event_transitions t WHERE t.action = 'return' GROUP BY t.event_id) r ON r.event_id = e.id
        WHERE {key} IS NOT NULL {"AND " + key + " LIKE %(prefix)s" if prefix else ""}
          {"AND e.city_id = %(city)s" if city_id is not None else ""}
          {"AND coalesce(e.grid_code, su.code) LIKE %(within)s" if within else ""}
          AND (e.reported_at < %(e)s) AND {_COUNTED}
        {grouped}"""
    rows = conn.exec_driver_sql(sql, {"s": start, "e": end, "now": at, "prefix": (prefix or "") + "%",
                                    "city": city_id, "within": (within or "") + "%"}).all()

    def rate(num: int, den: int) -> float | None:
        return round(num / den, 4) if den else None

    out: list[list[dict[str, Any]]] = [[] for _ in levels]
    for (unit, which, reported, dispatched, due, suspended, on_time, closed_of_dispatched, closed, reworked, extended,
         hours, overdue, closed_on_time_in_period, hung, hung_due, returns, bounced, late_accept, late_dispatch,
         late_handling, supervised, supervised_on_time, supervised_overdue) in rows:
        if unit is None:  # the events with no unit at the children's level
            continue
        out[which].append({
            "unit": unit, "reported": reported, "dispatched": dispatched, "due": due, "suspended": suspended,
            "hung": hung, "hung_due": hung_due,
            "closed_on_time": on_time, "closed": closed,
            "on_time_closure_rate": rate(on_time, due - suspended - hung_due),
            "on_time_rate_with_open_overdue": rate(closed_on_time_in_period, closed + overdue),
            "closure_rate": rate(closed_of_dispatched, dispatched),
            "rework_rate": rate(reworked, closed), "extension_rate": rate(extended, dispatched),
            "mean_handling_hours": round(float(hours), 2) if hours is not None else None,
            "open_overdue": overdue, "returns": int(returns), "bounced": int(bounced),
            "late_accept": late_accept, "late_dispatch": late_dispatch, "late_handling": late_handling,
            "supervised": supervised, "supervised_on_time": supervised_on_time,
            "supervised_open_overdue": supervised_overdue,
        })
    return out
