"""The monthly analysis and bulletin (每月一研判, 考核通报) of a unit: its children and the departments ranked, the top
event categories and their trend, hot spots, patrol compliance, supervised and hung cases, and a written summary.

Every figure is the service's own, computed by the function the API answers with, for the same unit and period:

* the rankings' on-time closure, closure and rework: :func:`gis.oversight.store.kpis.kpis` by the children's level
  (``GET /kpis?by=…&unit=…&start=…&end=…``), and by department;
* patrol coverage (streets walked): the leaders' coverage, :func:`gis.oversight.store.leaders.cached_coverage`
  (``GET /leaders/figures``, ``GET /coverage``); a city with no street network has none, and the bulletin says so;
* patrol compliance: :func:`gis.patrol.store.visits.compliance_many`, the set-based form of
  ``GET /grids/{code}/compliance``.

The period is the calendar month in the city's time zone, ``[first day 00:00, next month's first day 00:00)``; the
current month is cut at ``now`` (a bulletin of a month in progress says ``partial``); a month in the future is
refused. Hot spots are places where the same kind of event repeated: DBSCAN (``ST_ClusterDBSCAN``) over the month's
events of each category in the city's UTM zone, :data:`HOT_SPOT_M` apart at most and :data:`HOT_SPOT_MIN` events at
least (one category at a time, so that a busy neighbourhood's many different events do not chain into one "spot").
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine

from gis.errors import InputError
from gis.geo.crs import utm_crs_for
from gis.oversight.bulletin import RANKINGS, ranking, summary
from gis.oversight.store.kpis import kpis
from gis.oversight.store.leaders import Unit, cached_coverage
from gis.oversight.store.screen import child_names, city_timezone, event_filter, unit_kpis
from gis.patrol.store.visits import compliance_many, month_bounds, month_weeks

HOT_SPOT_M = 50.0
HOT_SPOT_MIN = 3
TOP_CATEGORIES = 10
TREND_MONTHS = 6
HOT_SPOTS = 10
CASE_ROWS = 200
FIGURES = ("reported", "dispatched", "due", "closed", "closed_on_time", "on_time_closure_rate", "closure_rate",
           "rework_rate", "open_overdue", "supervised", "hung")
COUNTS = ("reported", "dispatched", "due", "closed", "closed_on_time", "open_overdue", "supervised", "hung")
"""The figures that are counts (0 for a unit with no case; the rates are then None)."""


def month_period(month: str, timezone: str, now: datetime) -> tuple[datetime, datetime, bool]:
    """The month's ``[start, end)`` in ``timezone``, cut at ``now`` when it is in progress, and whether it was."""
    first, last = month_bounds(month)
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    if start > now:
        raise InputError(f"{month} has not begun: a bulletin covers a past month or the current one")
    return start, min(end, now), end > now


def asked_month(conn: Connection, unit: Unit, month: str | None, *, timezone: str,
                now: datetime | None = None) -> tuple[str, str]:
    """The month a bulletin is asked for (default: last month, in the city's time zone), refused when it has not
    begun, and the city's time zone: what the API and the command check before any work."""
    zone = city_timezone(conn, unit.city_id, timezone)
    at = (now or datetime.now(ZoneInfo(zone))).astimezone(ZoneInfo(zone))
    month = month or previous_month(f"{at.year:04d}-{at.month:02d}")
    month_period(month, zone, at)
    return month, zone


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    before = first - timedelta(days=1)
    return f"{before.year:04d}-{before.month:02d}"


def _coverage(engine: Engine, unit: Unit, level: str, start: datetime, end: datetime) -> tuple[dict[str, Any], str]:
    """Walked shares by ``level`` code (the leaders' coverage), or why there are none."""
    try:
        report = cached_coverage(engine, unit.city_id, start, end, by=level, mode="ebike", minutes=5.0)
    except InputError as exc:
        return {}, str(exc)
    return {str(r["code"]): r for r in report["rows"]}, ""


def _children(engine: Engine, conn: Connection, unit: Unit, level: str | None, names: dict[str, str],
              start: datetime, end: datetime, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """The unit's own figures, its children's (KPIs and walked share) and why coverage is missing, if it is."""
    own, figures = unit_kpis(conn, unit, start, end, now=now, children=level)
    if level is None:
        return own or {}, [], ""
    cover, missing = _coverage(engine, unit, level, start, end)
    rows = []
    for code, name in names.items():
        k = figures.get(code, {})
        rows.append({"code": code, "name": name, **{f: k.get(f, 0 if f in COUNTS else None) for f in FIGURES},
                     "walked_share": cover.get(code, {}).get("walked_share")})
    return own or {}, rows, missing


def _categories(conn: Connection, where: str, params: dict[str, Any], start: datetime, end: datetime,
                tz: ZoneInfo, names: dict[str, tuple[str, str | None]]) -> list[dict[str, Any]]:
    """The month's top categories, with last month's count and the counts of the last :data:`TREND_MONTHS`."""
    first = start
    for _ in range(TREND_MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    rows = conn.exec_driver_sql(
        f"""SELECT to_char(e.reported_at AT TIME ZONE %(tz)s, 'YYYY-MM'), e.category_code, count(*)
            FROM events e WHERE {where} AND e.reported_at >= %(first)s AND e.reported_at < %(end)s
            GROUP BY 1, 2""", {**params, "tz": str(tz), "first": first, "end": end}).all()
    months = []
    m = first
    while m < end:
        months.append(f"{m.year:04d}-{m.month:02d}")
        m = (m + timedelta(days=32)).replace(day=1)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for month, code, n in rows:
        counts[code][month] = int(n)
    this, last = months[-1], months[-2] if len(months) > 1 else None
    top = sorted((c for c in counts if counts[c].get(this)), key=lambda c: (-counts[c][this], c))[:TOP_CATEGORIES]
    out = []
    for code in top:
        now_n, before = counts[code].get(this, 0), counts[code].get(last, 0) if last else 0
        out.append({"code": code, "name": names.get(code, (code, None))[0], "name_en": names.get(code, (code, None))[1],
                    "events": now_n, "previous_events": before,
                    "change": round((now_n - before) / before, 4) if before else None,
                    "trend": [{"month": mm, "events": counts[code].get(mm, 0)} for mm in months]})
    return out


def _hot_spots(conn: Connection, where: str, params: dict[str, Any], start: datetime, end: datetime,
               names: dict[str, tuple[str, str | None]]) -> list[dict[str, Any]]:
    centre = conn.exec_driver_sql(
        f"""SELECT avg(ST_X(e.geom)), avg(ST_Y(e.geom)) FROM events e WHERE {where}
            AND e.reported_at >= %(s)s AND e.reported_at < %(e)s""", {**params, "s": start, "e": end}).one()
    if centre[0] is None:
        return []
    srid = utm_crs_for(float(centre[0]), float(centre[1])).to_epsg()
    rows = conn.exec_driver_sql(
        f"""WITH month AS (
                SELECT e.id, e.geom, e.category_code, e.grid_code,
                       ST_ClusterDBSCAN(ST_Transform(e.geom, {int(srid or 3857)}), eps := %(eps)s,
                                        minpoints := %(min)s) OVER (PARTITION BY e.category_code) AS cluster
                FROM events e WHERE {where} AND e.reported_at >= %(s)s AND e.reported_at < %(e)s
                  AND e.duplicate_of IS NULL AND e.state <> 'merged')
            SELECT cluster, count(*), ST_X(ST_Centroid(ST_Collect(geom))), ST_Y(ST_Centroid(ST_Collect(geom))),
                   mode() WITHIN GROUP (ORDER BY category_code), mode() WITHIN GROUP (ORDER BY grid_code),
                   count(DISTINCT category_code),
                   ST_MaxDistance(ST_Transform(ST_Collect(geom), {int(srid or 3857)}),
                                  ST_Transform(ST_Collect(geom), {int(srid or 3857)}))
            FROM month WHERE cluster IS NOT NULL GROUP BY category_code, cluster ORDER BY 2 DESC, 1
            LIMIT {HOT_SPOTS}""",
        {**params, "s": start, "e": end, "eps": HOT_SPOT_M, "min": HOT_SPOT_MIN}).all()
    grids: dict[str, str] = dict(conn.exec_driver_sql(
        "SELECT code, coalesce(name, code) FROM grids WHERE code = ANY(%(c)s)",
        {"c": [r[5] for r in rows if r[5]]}).all())
    return [{"events": int(n), "lon": round(float(x), 6), "lat": round(float(y), 6), "category": cat,
             "category_name": names.get(cat, (cat, None))[0], "category_name_en": names.get(cat, (cat, None))[1],
             "categories": int(kinds), "grid": grid, "grid_name": grids.get(grid), "across_m": round(float(d), 1)}
            for _c, n, x, y, cat, grid, kinds, d in rows]


def _cases(conn: Connection, where: str, params: dict[str, Any], start: datetime, end: datetime,
           now: datetime) -> dict[str, Any]:
    """The month's supervised cases (督办: supervision deadline in the month, or open past it now) and the hung
    ones (挂账), with no personal data."""
    p = {**params, "s": start, "e": end, "now": now}
    columns = ("e.id, e.category_code, cat.name, e.grid_code, e.state, e.reported_at, e.due_at, "
               "e.supervision_due_at, e.supervision_unit, e.closed_at")
    supervised = conn.exec_driver_sql(
        f"""SELECT {columns} FROM events e JOIN categories cat ON cat.code = e.category_code
            WHERE {where} AND ((e.supervision_due_at >= %(s)s AND e.supervision_due_at < %(e)s)
                OR (e.supervision_due_at < %(now)s AND e.closed_at IS NULL AND e.state NOT IN ('rejected', 'merged')))
            ORDER BY e.supervision_due_at, e.id LIMIT {CASE_ROWS}""", p).all()
    hung = conn.exec_driver_sql(
        f"""SELECT {columns} FROM events e JOIN categories cat ON cat.code = e.category_code
            WHERE {where} AND e.state = 'hung' ORDER BY e.due_at NULLS LAST, e.id LIMIT {CASE_ROWS}""", p).all()

    def row(r: Any) -> dict[str, Any]:
        return {"id": r[0], "category": r[1], "category_name": r[2], "grid": r[3], "state": r[4],
                "reported_at": r[5].isoformat(), "due_at": r[6].isoformat() if r[6] else None,
                "supervision_due_at": r[7].isoformat() if r[7] else None, "supervision_unit": r[8],
                "closed_at": r[9].isoformat() if r[9] else None,
                "supervision_open_overdue": bool(r[7] and r[7] < now and r[9] is None
                                                 and r[4] not in ("rejected", "merged"))}
    return {"supervised_cases": [row(r) for r in supervised], "hung_cases": [row(r) for r in hung]}


def _patrol(conn: Connection, unit: Unit, month: str, level: str | None, timezone: str,
            now: datetime) -> dict[str, Any]:
    prefix = unit.code if unit.level != "city" else None
    grids = compliance_many(conn, city_id=unit.city_id, prefix=prefix, weeks=month_weeks(month), month=month,
                            timezone=timezone, now=now)
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"grids": 0, "grid_weeks": 0, "basic_done": 0,
                                                            "inspections_done": 0})
    width = {"district": 6, "street": 9, "community": 12, "grid": 15}.get(level or "", 15)
    totals = {"grids": 0, "grid_weeks": 0, "basic_done": 0, "inspections_done": 0}
    for code, g in grids.items():
        for target in (groups[code[:width]], totals):
            target["grids"] += 1
            target["grid_weeks"] += g["weeks_in_month"]
            target["basic_done"] += g["basic_patrols_done"]
            target["inspections_done"] += g["full_inspection"] == "done"

    def shares(d: dict[str, int]) -> dict[str, Any]:
        return {**d, "basic_share": round(d["basic_done"] / d["grid_weeks"], 4) if d["grid_weeks"] else None,
                "inspection_share": round(d["inspections_done"] / d["grids"], 4) if d["grids"] else None}
    return {"weeks": [w.isoformat() for w in month_weeks(month)], "totals": shares(totals),
            "units": {code: shares(d) for code, d in groups.items()}}


def bulletin(engine: Engine, unit: Unit, month: str, *, timezone: str = "Asia/Shanghai",
             now: datetime | None = None) -> dict[str, Any]:
    """The bulletin of ``unit`` for ``month`` (``YYYY-MM``), as a dict the XLSX and the printable page are drawn
    from (:mod:`maps.bulletin`)."""
    with engine.connect() as conn:
        zone = city_timezone(conn, unit.city_id, timezone)
    tz = ZoneInfo(zone)
    at = (now or datetime.now(tz)).astimezone(tz)
    start, end, partial = month_period(month, zone, at)
    before = previous_month(month)
    p_start, p_end, _ = month_period(before, zone, at)
    where, params = event_filter(unit)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL jit = off")  # a second of work in many statements: compiling costs more
        level, names = child_names(conn, unit)
        totals, children, missing = _children(engine, conn, unit, level, names, start, end, at)
        previous_totals, last, _ = _children(engine, conn, unit, level, names, p_start, p_end, at)
        previous = {r["code"]: r for r in last}
        within = unit.code if unit.level != "city" else None
        departments = {c: (n, e) for c, n, e in conn.exec_driver_sql(
            "SELECT code, name, name_en FROM departments").all()}

        def by_department(a: datetime, b: datetime) -> list[dict[str, Any]]:
            rows = kpis(conn, "department", a, b, now=at, city_id=unit.city_id, within=within)
            return [{**r, "code": r["unit"], "name": departments.get(r["unit"], (r["unit"], None))[0],
                     "name_en": departments.get(r["unit"], (r["unit"], None))[1]} for r in rows]
        dept_rows = by_department(start, end)
        dept_previous = {r["code"]: r for r in by_department(p_start, p_end)}
        labels = {c: (n, e) for c, n, e in conn.exec_driver_sql("SELECT code, name, name_en FROM categories").all()}
        categories = _categories(conn, where, params, start, end, tz, labels)
        hot_spots = _hot_spots(conn, where, params, start, end, labels)
        cases = _cases(conn, where, params, start, end, at)
        patrol = _patrol(conn, unit, month, level, zone, at)
    rankings = {m.key: ranking(children, previous, m) for m in RANKINGS} if children else {}
    dept_rankings = {m.key: ranking(dept_rows, dept_previous, m) for m in RANKINGS if m.key != "walked_share"}
    data: dict[str, Any] = {
        "unit": {"level": unit.level, "code": unit.code, "name": unit.name, "city_id": unit.city_id},
        "month": month, "previous_month": before, "timezone": zone, "partial": partial,
        "start": start.isoformat(), "end": end.isoformat(), "generated_at": at.isoformat(),
        "totals": {f: totals.get(f, 0 if f in COUNTS else None) for f in FIGURES},
        "previous_totals": {f: previous_totals.get(f, 0 if f in COUNTS else None) for f in FIGURES},
        "level": level, "children": children, "rankings": rankings,
        "departments": dept_rows, "department_rankings": dept_rankings,
        "categories": categories, "hot_spots": hot_spots,
        "hot_spot_rule": {"within_m": HOT_SPOT_M, "min_events": HOT_SPOT_MIN},
        "patrol": patrol,
        "supervision": {"supervised": int(totals.get("supervised") or 0),
                        "supervised_on_time": int(totals.get("supervised_on_time") or 0),
                        "supervised_open_overdue": int(totals.get("supervised_open_overdue") or 0),
                        "hung": int(totals.get("hung") or 0), **cases},
        "notes": [f"no patrol coverage figures: {missing}"] if missing else [],
    }
    data["summary"] = summary(data)
    return data
