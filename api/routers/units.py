"""A city's official units: their history, diffs, "which unit covered this point on date D", and importing them.

Units (districts, streets, communities) are versioned like grids (migration 0019): every outline and name a coded
unit has had, who changed it, when and why. ``POST /cities/{city}/units/import`` takes the city's own file of
streets and communities (as ``gridpatrol import-units`` does): checked, repaired and reported before anything is
stored, and with ``dry_run`` nothing is.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from api.deps import ConnectionDep, aware, get_engine
from api.jurisdiction import require_city, require_code
from api.roles import Planner, Viewer
from api.schemas import GridVersion, UnitAt, documented
from api.tokens import CurrentUser
from gis.errors import ForbiddenError, InputError
from gis.planning.exchange import FORMATS
from gis.planning.store.city import find_city
from gis.planning.store.editing import diff, grid_at, history
from gis.planning.store.official import import_units

router = APIRouter(tags=["planning"])
CODE = r"^(\d{6}|\d{9}|\d{12})$"
Code = Annotated[str, Query(pattern=CODE)]


def _check(code: str) -> None:
    if not (code.isdigit() and len(code) in (6, 9, 12)):
        raise InputError(f"a unit code has 6 (district), 9 (street) or 12 (community) digits; got {code!r}")


@router.get("/units/{code}/history", summary="Every version of a district, street or community: who, when, why",
            response_model=None, responses={**documented(list[GridVersion]), 404: {"description": "no such code"}})
def unit_history(code: str, conn: ConnectionDep, user: Viewer) -> list[dict[str, Any]]:
    _check(code)
    require_code(conn, user, code)
    return history(conn, code, kind="unit")


@router.get("/units/{code}/diff", summary="What a unit gained and lost between two versions",
            responses={404: {"description": "no such unit or version"}})
def unit_diff(code: str, conn: ConnectionDep, user: Viewer, from_version: Annotated[int, Query(ge=1)],
              to_version: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    _check(code)
    require_code(conn, user, code)
    return diff(conn, code, from_version, to_version, kind="unit")


@router.get("/unit-at", summary="Which district, street or community covered a point at a moment (default: now)",
            response_model=None, responses=documented(UnitAt))
def which_unit(
    conn: ConnectionDep, user: CurrentUser,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    level: Literal["district", "street", "community"] = "community",
    at: datetime | None = None,
) -> dict[str, Any]:
    """``unit`` is null when no unit of that level in the user's jurisdiction covered the point."""
    when = aware(at) or datetime.now(UTC)
    found = grid_at(conn, lon, lat, when, level=level)
    if found is not None:
        try:
            require_code(conn, user, found["code"])
        except ForbiddenError:
            found = None
    return {"lon": lon, "lat": lat, "at": when.isoformat(), "level": level, "unit": found}


@router.post("/cities/{city}/units/import", summary="Import a city's official streets and communities (the body is "
             "the file)", responses={404: {"description": "no such city"}, 409: {"description": "the district was "
                                     "divided automatically, or a code is another city's"}, 413: {"description":
                                     "file too large"}, 422: {"description": "what to fix, row by row"}})
async def import_file(
    city: str, request: Request, engine: Annotated[Engine, Depends(get_engine)], user: Planner,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
    format: Annotated[str, Query(pattern="^(geojson|gpkg|shp)$")] = "geojson",
    crs: Annotated[str | None, Query(max_length=40, description="an undeclared file's CRS, or gcj02")] = None,
    snap_m: Annotated[float, Query(ge=0, le=50)] = 5.0,
    dry_run: bool = True,
    replace_generated: bool = False,
) -> dict[str, Any]:
    """A planner of the whole city only: official units change every level below it. ``dry_run`` (the default)
    reports everything and stores nothing."""
    body = await request.body()  # at most api.limits' bound for grid files: the body guard refused anything larger
    if not body:
        raise InputError("the request body is empty: send the units file as the body")
    suffix = ".zip" if format == "shp" else FORMATS[format][1]

    def load() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="gridpatrol-") as tmp:
            path = Path(tmp) / f"units{suffix}"
            path.write_bytes(body)
            with engine.begin() as conn:
                row = find_city(conn, city)
                require_city(user, row.id)
                if user.scope.prefix is not None:
                    raise ForbiddenError("official units are imported by a planner of the whole city")
                return import_units(conn, path, city=city, crs=crs, snap_m=snap_m, author=user.username,
                                    reason=reason, dry_run=dry_run, replace_generated=replace_generated).as_dict()
    return await run_in_threadpool(load)
