"""Planners' grid edits: create, reshape (replace the outline),
split, merge, delete; history and "which grid was this point in on date D".

Every edit names the version it was made on (409 if the grid has moved on since) and a reason (the author is the
signed-in planner), and
may be a dry run that returns the impact without storing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.deps import ConnectionDep, aware, get_engine
from api.jurisdiction import require_code
from api.roles import Planner, Viewer
from api.schemas import GridAt, GridChange, GridVersion, documented
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.errors import ForbiddenError, InputError
from gis.planning.store.editing import diff, edit_grids, grid_at, history, revert

router = APIRouter(tags=["planning"])


def _mine(user: User) -> Callable[[str], bool]:
    """Whether a grid (or community) code lies in the planner's jurisdiction: a change may move only those."""
    return lambda code: user.scope.prefix is None or code.startswith(user.scope.prefix)
EngineDep = Annotated[Engine, Depends(get_engine)]
CODE = r"^\d{15}$"


class Edit(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why")
    dry_run: bool = Field(default=False, description="return the impact; store nothing")


class Reshape(Edit):
    version: int = Field(ge=1, description="the version of the grid the new outline was drawn on")
    geometry: dict[str, Any] = Field(description="the grid's new outline: a GeoJSON Polygon in WGS-84")


class Split(Edit):
    version: int = Field(ge=1)
    line: dict[str, Any] = Field(description="a GeoJSON LineString drawn across the grid, edge to edge")


class Revert(Edit):
    version: int = Field(ge=1, description="the grid's current version")
    to_version: int = Field(ge=1, description="the version whose outline to restore")


class Create(Edit):
    geometry: dict[str, Any] = Field(description="the new grid's outline: a GeoJSON Polygon in WGS-84")
    versions: dict[Annotated[str, Field(pattern=CODE)], Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="the versions of the grids the outline was drawn over (grid code → version); a grid that "
                    "has moved on since is a 409")


class Merge(Edit):
    codes: tuple[Annotated[str, Field(pattern=CODE)], Annotated[str, Field(pattern=CODE)]]
    versions: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such grid"},
    409: {"description": "the grid has a newer version than the one edited"},
    422: {"description": "invalid geometry, or the change would leave a gap, an overlap or a grid outside its "
                         "community (the gaps are returned)"},
}


@router.post(
    "/communities/{community}/grids",
    summary="Create a grid from a drawn outline; the grids under it give the area up",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def create_grid(community: str, body: Create, engine: EngineDep, user: Planner) -> dict[str, Any]:
    with engine.begin() as conn:
        if not (len(community) == 12 and community.isdigit()):
            raise InputError(f"a community code has 12 digits; got {community!r}")
        require_code(conn, user, community)
        return edit_grids(conn, "create", community=community, codes=list(body.versions),
                          versions=list(body.versions.values()), geometry=body.geometry, author=user.username,
                          reason=body.reason, dry_run=body.dry_run,
                          may_change=_mine(user)).as_dict()


@router.post(
    "/grids/{code}/reshape",
    summary="Move a grid's boundary; neighbours follow",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def reshape_grid(code: str, body: Reshape, engine: EngineDep, user: Planner) -> dict[str, Any]:
    with engine.begin() as conn:
        _check_code(code)
        require_code(conn, user, code)
        return edit_grids(conn, "reshape", codes=[code], versions=[body.version], geometry=body.geometry,
                          author=user.username, reason=body.reason, dry_run=body.dry_run,
                          may_change=_mine(user)).as_dict()


@router.post(
    "/grids/{code}/split",
    summary="Split a grid by a drawn line",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def split_grid(code: str, body: Split, engine: EngineDep, user: Planner) -> dict[str, Any]:
    with engine.begin() as conn:
        _check_code(code)
        require_code(conn, user, code)
        return edit_grids(conn, "split", codes=[code], versions=[body.version], line=body.line,
                          author=user.username, reason=body.reason, dry_run=body.dry_run,
                          may_change=_mine(user)).as_dict()


@router.post(
    "/grids/merge",
    summary="Merge two adjacent grids",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def merge_grids(body: Merge, engine: EngineDep, user: Planner) -> dict[str, Any]:
    with engine.begin() as conn:
        for code in body.codes:
            require_code(conn, user, code)
        return edit_grids(conn, "merge", codes=list(body.codes), versions=list(body.versions),
                          author=user.username, reason=body.reason, dry_run=body.dry_run,
                          may_change=_mine(user)).as_dict()


@router.delete(
    "/grids/{code}",
    summary="Delete a grid; its area goes to its neighbours",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def delete_grid(
    code: str, engine: EngineDep, user: Planner,
    version: Annotated[int, Query(ge=1)],
    reason: Annotated[str, Query(min_length=1, max_length=500)],
    dry_run: bool = False,
) -> dict[str, Any]:
    with engine.begin() as conn:
        _check_code(code)
        require_code(conn, user, code)
        return edit_grids(conn, "delete", codes=[code], versions=[version], author=user.username, reason=reason,
                          dry_run=dry_run, may_change=_mine(user)).as_dict()


@router.get(
    "/grids/{code}/history",
    summary="Every version of a grid: who, when, why, and its outline",
    response_model=None,
    responses={**documented(list[GridVersion]), 404: {"description": "no such code, ever"}},
)
def grid_history(code: str, conn: ConnectionDep, user: Viewer) -> list[dict[str, Any]]:
    _check_code(code)
    require_code(conn, user, code)
    return history(conn, code)


@router.post(
    "/grids/{code}/revert",
    summary="Restore an earlier outline (as a new version)",
    response_model=None,
    responses={**documented(GridChange), **_RESPONSES},
)
def revert_grid(code: str, body: Revert, engine: EngineDep, user: Planner) -> dict[str, Any]:
    with engine.begin() as conn:
        _check_code(code)
        require_code(conn, user, code)
        return revert(conn, code, to_version=body.to_version, version=body.version, author=user.username,
                      reason=body.reason, dry_run=body.dry_run,
                          may_change=_mine(user)).as_dict()


@router.get("/grids/{code}/diff", responses={404: {"description": "no such grid or version"}},
            summary="What a grid gained and lost between two versions")
def grid_diff(code: str, conn: ConnectionDep, user: Viewer, from_version: Annotated[int, Query(ge=1)],
              to_version: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    _check_code(code)
    require_code(conn, user, code)
    return diff(conn, code, from_version, to_version)


@router.get(
    "/grid-at",
    summary="Which grid covered a point at a moment (default: now)",
    response_model=None,
    responses=documented(GridAt),
)
def which_grid(
    conn: ConnectionDep, user: CurrentUser,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    at: datetime | None = None,
) -> dict[str, Any]:
    """``grid`` is null when no grid of the user's jurisdiction covered the point."""
    when = aware(at) or datetime.now(UTC)
    found = grid_at(conn, lon, lat, when)
    if found is not None:
        try:
            require_code(conn, user, found["code"])
        except ForbiddenError:
            found = None
    return {"lon": lon, "lat": lat, "at": when.isoformat(), "grid": found}


def _check_code(code: str) -> None:
    if not (len(code) == 15 and code.isdigit()):
        raise InputError(f"a grid code has 15 digits; got {code!r}")
