"""A city's working calendar in the database (migration 0023): China's holidays and make-up working days, the city's
own days off or extra working days, and its working hours. The rule that counts with them is
``gis/dispatch/sql/worktime.sql`` (and, in Python, :mod:`gis.dispatch.worktime`)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from gis.dispatch.worktime import DEFAULT_HOURS, CalendarDay, WorkCalendar, national_days, national_source
from gis.errors import ConflictError, InputError, NotFoundError

MAX_NAME = 100


def _settings(conn: Connection, city_id: int) -> tuple[str, list[tuple[time, time]], bool]:
    """The city's time zone, working hours, and whether China's calendar applies (a city with a GB/T 2260 code)."""
    row = conn.exec_driver_sql(
        "SELECT coalesce(s.timezone, 'Asia/Shanghai'), s.work_starts, s.work_ends, u.code IS NOT NULL "
        "FROM admin_units u LEFT JOIN city_settings s ON s.city_id = u.id WHERE u.id = %(c)s AND u.level = 'city'",
        {"c": city_id}).first()
    if row is None:
        raise NotFoundError(f"no city {city_id}")
    tz, starts, ends, national = row
    hours = list(zip(starts, ends, strict=True)) if starts else list(DEFAULT_HOURS)
    return tz, hours, bool(national)


def city_today(conn: Connection, city_id: int, now: datetime) -> date:
    return now.astimezone(ZoneInfo(_settings(conn, city_id)[0])).date()


def work_calendar(conn: Connection, city_id: int) -> WorkCalendar:
    """The city's calendar as :class:`WorkCalendar` (every exception the database holds for it)."""
    tz, hours, national = _settings(conn, city_id)
    rows = conn.exec_driver_sql(
        "SELECT city_id IS NULL, day, working, name FROM calendar_days WHERE city_id = %(c)s "
        "OR (city_id IS NULL AND %(n)s)", {"c": city_id, "n": national}).all()
    return WorkCalendar.of(tz, hours, [CalendarDay(d, w, n) for nat, d, w, n in rows if nat],
                           [CalendarDay(d, w, n) for nat, d, w, n in rows if not nat])


def year_days(conn: Connection, city_id: int, year: int) -> dict[str, Any]:
    """A year of the city's calendar: its working hours, and each exception to Monday–Friday with where it comes
    from (the national calendar or the city's own), the city's winning over the nation's."""
    if not 1900 <= year <= 2200:
        raise InputError("a year between 1900 and 2200")
    tz, hours, national = _settings(conn, city_id)
    rows = conn.exec_driver_sql(
        "SELECT DISTINCT ON (day) day, working, name, city_id IS NOT NULL, source FROM calendar_days "
        "WHERE day BETWEEN %(a)s AND %(b)s AND (city_id = %(c)s OR (city_id IS NULL AND %(n)s)) "
        "ORDER BY day, city_id NULLS LAST",
        {"a": date(year, 1, 1), "b": date(year, 12, 31), "c": city_id, "n": national}).all()
    known = conn.exec_driver_sql("SELECT max(day) FROM calendar_days WHERE city_id IS NULL").scalar_one()
    return {
        "year": year, "timezone": tz,
        "working_hours": [f"{a:%H:%M}-{b:%H:%M}" for a, b in hours],
        "national_calendar": national,
        "national_known_until": known.isoformat() if national and known else None,
        "days": [{"day": d.isoformat(), "working": w, "name": n, "own": own, "source": src}
                 for d, w, n, own, src in rows],
    }


def add_day(conn: Connection, city_id: int, day: date, *, working: bool, name: str, author: str,
            now: datetime) -> dict[str, Any]:
    """A city's own day off (or extra working day). Never in the past: deadlines already counted stand."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise InputError(f"a calendar day has a name of 1 to {MAX_NAME} characters (e.g. 城市纪念日)")
    today = city_today(conn, city_id, now)
    if day <= today:
        raise InputError(f"{day.isoformat()} is not after today ({today.isoformat()}): a day already begun or "
                         "past cannot change, the deadlines counted over it stand")
    conn.exec_driver_sql(
        "INSERT INTO calendar_days (city_id, day, working, name, source) VALUES (%(c)s, %(d)s, %(w)s, %(n)s, %(s)s) "
        "ON CONFLICT (coalesce(city_id, 0), day) DO UPDATE SET working = EXCLUDED.working, name = EXCLUDED.name, "
        "source = EXCLUDED.source",
        {"c": city_id, "d": day, "w": working, "n": name, "s": f"entered by {author}"})
    return {"day": day.isoformat(), "working": working, "name": name, "own": True}


def remove_day(conn: Connection, city_id: int, day: date, *, now: datetime) -> None:
    today = city_today(conn, city_id, now)
    if day <= today:
        raise InputError(f"{day.isoformat()} is not after today ({today.isoformat()}): it cannot change")
    done = conn.exec_driver_sql("DELETE FROM calendar_days WHERE city_id = %(c)s AND day = %(d)s",
                                {"c": city_id, "d": day}).rowcount
    if not done:
        raise NotFoundError(f"the city has no day of its own on {day.isoformat()}")


def set_work_hours(conn: Connection, city_id: int, periods: list[tuple[time, time]]) -> None:
    _settings(conn, city_id)
    if not 1 <= len(periods) <= 4:
        raise InputError("a working day has 1 to 4 periods")
    conn.exec_driver_sql("UPDATE city_settings SET work_starts = %(a)s, work_ends = %(b)s, updated_at = now() "
                         "WHERE city_id = %(c)s",
                         {"a": [a for a, _ in periods], "b": [b for _, b in periods], "c": city_id})


def load_national(conn: Connection) -> dict[str, Any]:
    """China's days as the installed chinesecalendar package knows them (after an update of the package: the new
    year's holidays); days already stored are kept as they are (a conflicting one is reported)."""
    source = national_source()
    stored: dict[date, bool] = dict(conn.exec_driver_sql(  # type: ignore[arg-type]
        "SELECT day, working FROM calendar_days WHERE city_id IS NULL").all())
    new = [d for d in national_days() if d.day not in stored]
    differ = [d.day.isoformat() for d in national_days() if d.day in stored and stored[d.day] != d.working]
    if differ:
        raise ConflictError(f"the package's calendar differs from the stored one on {', '.join(differ[:10])}: "
                            "check the State Council's notice, then correct the stored days by hand")
    for d in new:
        conn.exec_driver_sql("INSERT INTO calendar_days (day, working, name, source) VALUES (%(d)s, %(w)s, %(n)s, "
                             "%(s)s)", {"d": d.day, "w": d.working, "n": d.name, "s": source})
    return {"source": source, "added": len(new), "known_until": max(d.day for d in national_days()).isoformat()}
