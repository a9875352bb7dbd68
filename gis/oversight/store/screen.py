"""The command centre's big screen (指挥大屏): a unit's state now, in one read of a few milliseconds per panel.

Every figure is the API's own where the API has it: the month's on-time closure and the children's league table are
:func:`gis.oversight.store.kpis.kpis` for the month so far (``GET /kpis`` with the same unit and period), open
overdue is its ``open_overdue``, patrol compliance is :func:`gis.patrol.store.visits.week_summary` (the weekly
basic patrol of ``GET /grids/{code}/compliance``, counted), and the response circles are the leaders' cached coverage
(``GET /coverage``), computed apart because they take seconds on a large city (see :func:`response_circles`).

The feed carries no personal data: category, grid, source, state and time, never a description, a contact or a
photo. The heat map is the last 24 hours' reports rounded to about 100 m (``HEAT_DIGITS``) and counted, so a busy
city's screen carries a few thousand weighted points at most.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine

from gis.dispatch.queries import OPEN_STATES_SQL
from gis.oversight.store.kpis import OVERDUE_STATES_SQL, kpis, kpis_and_children
from gis.oversight.store.leaders import BELOW, Unit, cached_coverage
from gis.patrol.store.visits import week_summary

FEED_ROWS = 12
DUE_SOON_H = 2
HEAT_DIGITS = 3  # 0.001°: about 100 m


def event_filter(unit: Unit) -> tuple[str, dict[str, Any]]:
    """A WHERE condition on ``events e`` selecting a unit's events the way :func:`kpis` groups them (a grid by its
    code, a community or street by its id, a district by its streets' codes, a city by its id)."""
    if unit.level == "city":
        return "e.city_id = %(u_id)s", {"u_id": unit.id}
    if unit.level == "district":
        return ("e.street_id IN (SELECT id FROM admin_units WHERE level = 'street' AND code LIKE %(u_prefix)s "
                "AND city_id = %(u_city)s)", {"u_prefix": f"{unit.code}%", "u_city": unit.city_id})
    if unit.level == "street":
        return "e.street_id = %(u_id)s", {"u_id": unit.id}
    if unit.level == "community":
        return "e.community_id = %(u_id)s", {"u_id": unit.id}
    return "e.grid_code = %(u_code)s", {"u_code": unit.code}


def unit_kpis(conn: Connection, unit: Unit, start: datetime, end: datetime, *, now: datetime | None = None,
              children: str | None = None) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The unit's own row of :func:`kpis` for the period (``GET /kpis?by=<its level>&unit=<its code>``, or
    ``by=city`` for a city) and, with ``children`` (the level under it), its children's rows by code
    (``GET /kpis?by=<children>&unit=<its code>``), read in one pass."""
    by, prefix = ("city", None) if unit.level == "city" else (unit.level, unit.code)
    under: list[dict[str, Any]] = []
    if children is None:
        own = kpis(conn, by, start, end, now=now, prefix=prefix, city_id=unit.city_id)
    else:
        own, under = kpis_and_children(conn, by, children, start, end, now=now, prefix=prefix,
                                       city_id=unit.city_id)
    key = str(unit.id) if unit.level == "city" else str(unit.code)
    return next((r for r in own if r["unit"] == key), None), {str(r["unit"]): r for r in under}


def child_names(conn: Connection, unit: Unit) -> tuple[str | None, dict[str, str]]:
    """The level under ``unit`` and its units' names by code (a grid has none under it)."""
    level = BELOW.get(unit.level)
    if level is None:
        return None, {}
    if level == "grid":
        rows = conn.exec_driver_sql("SELECT code, coalesce(name, code) FROM grids WHERE community_id = %(i)s",
                                    {"i": unit.id}).all()
    elif unit.level == "city":
        rows = conn.exec_driver_sql("SELECT code, name FROM admin_units WHERE level = 'district' AND city_id = "
                                    "%(i)s AND code IS NOT NULL", {"i": unit.id}).all()
    else:
        rows = conn.exec_driver_sql("SELECT code, name FROM admin_units WHERE parent_id = %(i)s AND code IS NOT NULL",
                                    {"i": unit.id}).all()
    return level, {str(c): str(n) for c, n in rows}


def city_timezone(conn: Connection, city_id: int, default: str) -> str:
    zone = conn.exec_driver_sql("SELECT timezone FROM city_settings WHERE city_id = %(c)s", {"c": city_id}).scalar()
    return str(zone or default)


def screen(conn: Connection, unit: Unit, *, timezone: str, now: datetime | None = None) -> dict[str, Any]:
    """Every panel of the big screen but the response circles, for ``unit`` at ``now``."""
    tz = ZoneInfo(timezone)
    at = (now or datetime.now(tz)).astimezone(tz)
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    month_start = today.replace(day=1)
    where, params = event_filter(unit)
    conn.exec_driver_sql("SET LOCAL jit = off")  # milliseconds of work each: compiling them would cost more
    params |= {"now": at, "today": today, "yesterday": yesterday, "ago": at - timedelta(days=1),
               "soon": at + timedelta(hours=DUE_SOON_H), "month": month_start}

    counts = conn.exec_driver_sql(
        f"""SELECT count(*) FILTER (WHERE e.reported_at >= %(today)s AND e.reported_at < %(now)s),
                   count(*) FILTER (WHERE e.reported_at >= %(yesterday)s AND e.reported_at < %(ago)s),
                   count(*) FILTER (WHERE e.state IN {OPEN_STATES_SQL}),
                   count(*) FILTER (WHERE e.state IN {OVERDUE_STATES_SQL} AND e.due_at < %(now)s),
                   count(*) FILTER (WHERE e.state IN {OVERDUE_STATES_SQL} AND e.due_at >= %(now)s
                                    AND e.due_at < %(soon)s)
            FROM events e
            WHERE {where} AND (e.reported_at >= %(yesterday)s OR e.state IN {OPEN_STATES_SQL})""", params).one()
    hours = conn.exec_driver_sql(
        f"""SELECT floor(extract(epoch FROM e.reported_at - %(today)s) / 3600)::int AS h, count(*)
            FROM events e WHERE {where} AND e.reported_at >= %(yesterday)s AND e.reported_at < %(now)s
            GROUP BY 1""", params).all()
    today_by_hour, yesterday_by_hour = [0] * 24, [0] * 24
    for h, n in hours:
        if 0 <= h < 24:
            today_by_hour[h] = int(n)
        elif -24 <= h < 0:
            yesterday_by_hour[h + 24] = int(n)

    feed = conn.exec_driver_sql(
        f"""SELECT e.id, e.category_code, cat.name, cat.name_en, e.grid_code, g.name, e.source, e.state,
                   e.reported_at
            FROM events e JOIN categories cat ON cat.code = e.category_code LEFT JOIN grids g ON g.id = e.grid_id
            WHERE {where} AND e.reported_at <= %(now)s AND e.duplicate_of IS NULL AND e.state <> 'merged'
            ORDER BY e.reported_at DESC, e.id DESC LIMIT {FEED_ROWS}""", params).all()
    heat = conn.exec_driver_sql(
        f"""SELECT round(ST_X(e.geom)::numeric, {HEAT_DIGITS})::float8, round(ST_Y(e.geom)::numeric,
                   {HEAT_DIGITS})::float8, count(*)
            FROM events e WHERE {where} AND e.reported_at >= %(ago)s AND e.reported_at < %(now)s
              AND e.duplicate_of IS NULL AND e.state <> 'merged' GROUP BY 1, 2""", params).all()
    month_counts = conn.exec_driver_sql(  # by category and by source, in one pass over the month
        f"""SELECT e.category_code, e.source, count(*) FROM events e
            WHERE {where} AND e.reported_at >= %(month)s AND e.reported_at < %(now)s
            GROUP BY GROUPING SETS ((e.category_code), (e.source))""", params).all()
    labels = {c: (n, e) for c, n, e in conn.exec_driver_sql("SELECT code, name, name_en FROM categories").all()}
    by_category = sorted(((c, *labels.get(c, (c, None)), int(k)) for c, s, k in month_counts if c is not None),
                         key=lambda r: (-r[3], r[0]))
    by_source = sorted(((s, int(k)) for c, s, k in month_counts if s is not None), key=lambda r: (-r[1], r[0]))

    level, names = child_names(conn, unit)
    mine, rows = unit_kpis(conn, unit, month_start, at, now=at, children=level)
    own = mine or {}
    league = []
    for code, name in names.items():
        r = rows.get(code, {})
        league.append({"code": code, "name": name, "on_time_closure_rate": r.get("on_time_closure_rate"),
                       "reported": r.get("reported", 0), "open_overdue": r.get("open_overdue", 0)})
    league.sort(key=lambda u: (u["on_time_closure_rate"] is None, -(u["on_time_closure_rate"] or 0),
                               u["open_overdue"], u["code"]))

    table = "grids" if unit.level == "grid" else "admin_units"
    box = conn.exec_driver_sql(f"SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM {table} "
                               "WHERE id = %(i)s AND geom IS NOT NULL", {"i": unit.id}).first()

    monday = today - timedelta(days=today.weekday())
    patrol = week_summary(conn, city_id=unit.city_id, prefix=unit.code if unit.level != "city" else None,
                          monday=monday.date(), timezone=timezone)

    return {
        "unit": {"level": unit.level, "code": unit.code, "name": unit.name, "city_id": unit.city_id},
        "at": at.isoformat(), "timezone": timezone, "bbox": [float(v) for v in box] if box else None,
        "intake": {"today": int(counts[0]), "yesterday_same_time": int(counts[1]), "today_by_hour": today_by_hour,
                   "yesterday_by_hour": yesterday_by_hour},
        "open": {"open": int(counts[2]), "overdue": int(counts[3]), "due_soon": int(counts[4]),
                 "due_soon_hours": DUE_SOON_H},
        "month": {"start": month_start.isoformat(), "on_time_closure_rate": own.get("on_time_closure_rate"),
                  "closure_rate": own.get("closure_rate"), "reported": own.get("reported", 0),
                  "closed_on_time": own.get("closed_on_time", 0), "due": own.get("due", 0),
                  "open_overdue": own.get("open_overdue", 0)},
        "league": {"level": level, "units": league},
        "feed": [{"id": i, "category": cat, "category_name": name, "category_name_en": name_en, "grid": grid,
                  "grid_name": grid_name, "source": source, "state": state, "reported_at": t.isoformat()}
                 for i, cat, name, name_en, grid, grid_name, source, state, t in feed],
        "heat": [[x, y, int(n)] for x, y, n in heat],
        "categories": [{"code": c, "name": n, "name_en": e, "events": int(k)} for c, n, e, k in by_category],
        "sources": [{"source": s, "events": int(k)} for s, k in by_source],
        "patrol": {**patrol, "done_share": round(patrol["done"] / patrol["grids"], 4) if patrol["grids"] else None},
    }


def response_circles(engine: Engine, unit: Unit, *, timezone: str, mode: str = "ebike", minutes: float = 5.0,
                     now: datetime | None = None) -> dict[str, Any]:
    """The unit's households within ``minutes`` of a police station and of a grid base (the leaders' coverage,
    :func:`cached_coverage`, for the month so far): seconds on a large city, so the API computes it apart and the
    screen shows it when ready. Raises :class:`~gis.errors.InputError` when the city has no street network."""
    tz = ZoneInfo(timezone)
    at = (now or datetime.now(tz)).astimezone(tz)
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today.replace(day=1), today + timedelta(days=1)  # a stable key: one computation a day
    report = cached_coverage(engine, unit.city_id, start, end, by=unit.level, mode=mode, minutes=minutes)
    key = str(unit.code) if unit.level != "city" else None
    row = next((r for r in report["rows"] if unit.level == "city" or str(r.get("code")) == key), None)
    tag = f"{minutes:g}min"
    if row is None:
        return {"mode": mode, "minutes": minutes, "households": 0, "police_share": None, "base_share": None}
    return {"mode": mode, "minutes": minutes, "households": row.get("households", 0),
            "police_share": row.get(f"households_police_{tag}_share"),
            "base_share": row.get(f"households_base_{tag}_share")}
