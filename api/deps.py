"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.engine import Connection, Engine

from api.settings import Settings
from gis.errors import InputError
from gis.geo.bbox import BBox, parse_bbox

YEARS = (1900, 2200)
"""The years a date in a request may fall in: periods are computed from them, and year 1 minus 30 days is not a
date."""


def aware(value: datetime | None) -> datetime | None:
    """A query's date-time without a zone is taken as UTC; one outside :data:`YEARS` is refused."""
    if value is None:
        return None
    check_year(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def check_year(value: date | datetime) -> None:
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise InputError(f"{value.isoformat()} is not a date this service plans for: give one between "
                         f"{YEARS[0]} and {YEARS[1]}")


# ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off per request for a lookup
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    with engine.connect() as conn:
        yield conn


def get_bbox(
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84), e.g. "
                                      "118.77,32.04,118.79,32.05", examples=["118.77,32.04,118.79,32.05"])] = None,
) -> BBox | None:
    return parse_bbox(bbox) if bbox is not None else None


class Page:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=10_000, description="features per page (1–10,000)")] = 1000,
        offset: Annotated[int, Query(ge=0, description="features to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[Connection, Depends(get_connection)]
BBoxDep = Annotated[BBox | None, Depends(get_bbox)]
PageDep = Annotated[Page, Depends(Page)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
