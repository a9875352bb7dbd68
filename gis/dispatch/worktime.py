"""Deadlines in working time, with no database (DOMAIN.md: "Time limits count working time … Public holidays and
the make-up working days (调休) change every year. Urgent safety and police matters run on the clock").

A city works Monday to Friday in its working hours (default 08:30–12:00 and 13:30–17:30, its own time zone),
except the days of its calendar: China's public holidays and make-up working days, from the maintained
``chinesecalendar`` package (for a city with a GB/T 2260 code), and the city's own days off (or extra working days),
which win. The database holds the same rule in ``gis/dispatch/sql/worktime.sql`` (``gridpatrol_deadline``,
``gridpatrol_working_hours``), which intake and every step use; this module is the rule in Python: the calendar a
page shows, and the reference the SQL is tested against.

The chinesecalendar package covers the years the State Council has announced (its version says which); a later
year counts Monday to Friday until the package is updated (``gridpatrol calendar national`` loads the new days) or
the city enters them itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from gis.errors import InputError

DEFAULT_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
"""A working day (7.5 hours): the usual office hours of a Chinese government office, morning and afternoon."""

MAX_REACH = timedelta(days=3660)


class Clock(Protocol):
    """How a deadline counts: working time or the wall clock."""

    def deadline(self, start: datetime, hours: float) -> datetime: ...

    def hours_between(self, start: datetime, end: datetime) -> float: ...


class WallClock:
    """Hours on the clock: urgent matters, and every event in a test that says so."""

    def deadline(self, start: datetime, hours: float) -> datetime:
        return start + timedelta(hours=max(hours, 0.0))

    def hours_between(self, start: datetime, end: datetime) -> float:
        return max((end - start).total_seconds(), 0.0) / 3600


@dataclass(frozen=True)
class CalendarDay:
    day: date
    working: bool
    name: str = ""


def national_days() -> list[CalendarDay]:
    """China's public holidays and make-up working days (调休), as the chinesecalendar package knows them."""
    import chinese_calendar

    days = [CalendarDay(d, False, str(n)) for d, n in chinese_calendar.holidays.items()]
    days += [CalendarDay(d, True, f"{n} (调休 make-up working day)") for d, n in chinese_calendar.workdays.items()]
    return sorted(days, key=lambda d: d.day)


def national_source() -> str:
    import chinese_calendar

    return f"chinesecalendar {chinese_calendar.__version__}"


def parse_hours(text: str) -> tuple[tuple[time, time], ...]:
    """``"08:30-12:00,13:30-17:30"`` → the periods of a working day; a clear error naming what to fix."""
    periods: list[tuple[time, time]] = []
    for part in text.replace("，", ",").split(","):
        try:
            a, b = (time.fromisoformat(p.strip()) for p in part.split("-"))
        except ValueError:
            raise InputError(f"working hours are periods like 08:30-12:00,13:30-17:30; not {part.strip()!r}") from None
        if not a < b or (periods and a < periods[-1][1]):
            raise InputError(f"working hours must run forward without overlapping: {part.strip()!r}")
        periods.append((a, b))
    if not periods:
        raise InputError("a working day has at least one period, like 09:00-17:00")
    return tuple(periods)


@dataclass
class WorkCalendar:
    """A city's working time: its time zone, its working day's periods, and the exceptions to Monday–Friday."""

    timezone: str = "Asia/Shanghai"
    hours: Sequence[tuple[time, time]] = DEFAULT_HOURS
    days: dict[date, bool] = field(default_factory=dict)
    """day → working (the national days overlaid with the city's own)."""

    @classmethod
    def of(cls, timezone: str, hours: Sequence[tuple[time, time]], national: Iterable[CalendarDay],
           own: Iterable[CalendarDay]) -> WorkCalendar:
        days = {d.day: d.working for d in national}
        days.update({d.day: d.working for d in own})
        return cls(timezone, tuple(hours), days)

    def working(self, day: date) -> bool:
        return self.days.get(day, day.isoweekday() < 6)

    def _spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working periods from ``start`` on, as aware datetimes (``start``'s first one clipped)."""
        zone = ZoneInfo(self.timezone)
        here = start.astimezone(zone)
        day = here.date()
        while day <= here.date() + MAX_REACH:
            if self.working(day):
                for a, b in self.hours:
                    lo = max(datetime.combine(day, a, zone), here)
                    hi = datetime.combine(day, b, zone)
                    if hi > lo:
                        yield lo, hi
            day += timedelta(days=1)
        raise InputError(f"no working time within ten years of {start.isoformat()}")

    def deadline(self, start: datetime, hours: float) -> datetime:
        left = timedelta(hours=max(hours, 0.0))
        for lo, hi in self._spans(start):
            if hi - lo >= left:
                return (lo + left).astimezone(UTC)
            left -= hi - lo
        raise AssertionError("unreachable")

    def hours_between(self, start: datetime, end: datetime) -> float:
        total = timedelta()
        if end <= start:
            return 0.0
        for lo, hi in self._spans(start):
            if lo >= end:
                break
            total += min(hi, end) - lo
        return total.total_seconds() / 3600
