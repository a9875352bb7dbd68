"""Working time with no database: the working day's periods, weekends, China's holidays and make-up days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from gis.dispatch.worktime import (
    DEFAULT_HOURS,
    CalendarDay,
    WallClock,
    WorkCalendar,
    national_days,
    parse_hours,
)
from gis.errors import InputError

BEIJING = timedelta(hours=8)


def local(*args: int) -> datetime:
    """A moment given in Beijing time, as UTC."""
    return datetime(*args, tzinfo=UTC) - BEIJING


def test_a_deadline_skips_the_lunch_break_the_night_and_the_weekend() -> None:
    cal = WorkCalendar()
    assert cal.deadline(local(2026, 11, 23, 11, 0), 2) == local(2026, 11, 23, 14, 30)  # 11–12, then 13:30–14:30
    assert cal.deadline(local(2026, 11, 23, 20, 0), 1) == local(2026, 11, 24, 9, 30)  # reported at night
    assert cal.deadline(local(2026, 11, 27, 17, 0), 1) == local(2026, 11, 30, 9, 0)  # Friday → Monday
    assert cal.hours_between(local(2026, 11, 27, 17, 0), local(2026, 11, 30, 9, 0)) == 1.0
    assert cal.hours_between(local(2026, 11, 23, 0, 0), local(2026, 11, 24, 0, 0)) == 7.5


def test_china_s_holidays_and_make_up_days_come_from_the_maintained_package() -> None:
    days = {d.day: d for d in national_days()}
    assert days[date(2026, 10, 1)].working is False and "National Day" in days[date(2026, 10, 1)].name
    assert days[date(2026, 10, 10)].working is True  # a Saturday worked in exchange (调休)
    cal = WorkCalendar.of("Asia/Shanghai", DEFAULT_HOURS, national_days(), [])
    # Wednesday 30 September 16:30: an hour that day, then the National Day week, then Thursday 8 October
    assert cal.deadline(local(2026, 9, 30, 16, 30), 3) == local(2026, 10, 8, 10, 30)
    # two full days later the make-up Saturday counts, not the Monday after it
    assert cal.deadline(local(2026, 9, 30, 16, 30), 1 + 15 + 2) == local(2026, 10, 10, 10, 30)
    # the city's own day off wins over the nation's working day
    own = WorkCalendar.of("Asia/Shanghai", DEFAULT_HOURS, national_days(), [CalendarDay(date(2026, 10, 8), False)])
    assert own.deadline(local(2026, 9, 30, 16, 30), 3) == local(2026, 10, 9, 10, 30)


def test_a_city_abroad_counts_in_its_own_time_zone() -> None:
    vaduz = WorkCalendar(timezone="Europe/Vaduz", hours=parse_hours("08:00-12:00,13:00-17:00"))
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 16:00 in Vaduz
    assert vaduz.deadline(start, 2) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 16–17, then 08–09 local


def test_the_wall_clock_is_the_clock() -> None:
    start = local(2026, 10, 1, 23, 0)
    assert WallClock().deadline(start, 2) == start + timedelta(hours=2)
    assert WallClock().hours_between(start, start - timedelta(hours=1)) == 0.0


@pytest.mark.parametrize("text", ["", "9-5", "08:00-07:00", "08:00-12:00,11:00-14:00", "8点-12点"])
def test_working_hours_that_make_no_sense_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_hours(text)


def test_working_hours_parse() -> None:
    assert parse_hours("08:30-12:00，13:30-17:30") == DEFAULT_HOURS
    assert parse_hours("09:00-17:00") == ((time(9), time(17)),)
