"""A city's working calendar: the days its deadlines do not count (China's holidays, its own days off), the make-up
working days, and its working hours. Everyone of the city reads it; an admin changes it, never for a day already
begun (the deadlines counted over it stand)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.deps import ConnectionDep, get_engine
from api.jurisdiction import require_city
from api.roles import allow
from api.schemas import CalendarEntry, WorkingCalendar, documented
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.dispatch.store import calendar
from gis.dispatch.worktime import parse_hours
from gis.planning.store.city import find_city

router = APIRouter(tags=["dispatch"])
EngineDep = Annotated[Engine, Depends(get_engine)]
Admin = Annotated[User, Depends(allow("admin"))]


class DayBody(BaseModel):
    day: date = Field(description="YYYY-MM-DD, after today")
    working: bool = Field(default=False, description="false: a day off (the default); true: an extra working day")
    name: str = Field(min_length=1, max_length=calendar.MAX_NAME, description="e.g. 城市纪念日")


class HoursBody(BaseModel):
    hours: str = Field(max_length=100, description="the periods of a working day, e.g. 08:30-12:00,13:30-17:30")


@router.get("/cities/{city}/calendar", summary="A year of the city's working calendar: days off, make-up days, "
            "working hours", response_model=None,
            responses={**documented(WorkingCalendar), 404: {"description": "no such city"}})
def read_calendar(city: str, conn: ConnectionDep, user: CurrentUser,
                  year: Annotated[int | None, Query(ge=1900, le=2200)] = None) -> dict[str, Any]:
    row = find_city(conn, city)
    require_city(user, row.id)
    return calendar.year_days(conn, row.id, year or datetime.now(UTC).year)


@router.post("/cities/{city}/calendar/days", status_code=201, summary="Add a day off (or an extra working day) of "
             "the city's own", response_model=None,
             responses={**documented(CalendarEntry, status=201),
                        422: {"description": "a day already begun or past, or no name"}})
def add_day(city: str, body: DayBody, engine: EngineDep, user: Admin) -> dict[str, Any]:
    with engine.begin() as conn:
        row = find_city(conn, city)
        require_city(user, row.id)
        return calendar.add_day(conn, row.id, body.day, working=body.working, name=body.name,
                                author=user.username, now=datetime.now(UTC))


@router.delete("/cities/{city}/calendar/days/{day}", status_code=204, summary="Remove a day of the city's own",
               responses={404: {"description": "no such day of the city's own"},
                          422: {"description": "a day already begun or past"}})
def remove_day(city: str, day: date, engine: EngineDep, user: Admin) -> Response:
    with engine.begin() as conn:
        row = find_city(conn, city)
        require_city(user, row.id)
        calendar.remove_day(conn, row.id, day, now=datetime.now(UTC))
    return Response(status_code=204)


@router.put("/cities/{city}/calendar/hours", summary="Set the city's working hours", response_model=None,
            responses={**documented(WorkingCalendar), 422: {"description": "periods that do not parse or overlap"}})
def set_hours(city: str, body: HoursBody, engine: EngineDep, user: Admin) -> dict[str, Any]:
    periods = list(parse_hours(body.hours))
    with engine.begin() as conn:
        row = find_city(conn, city)
        require_city(user, row.id)
        calendar.set_work_hours(conn, row.id, periods)
        return calendar.year_days(conn, row.id, datetime.now(UTC).year)
