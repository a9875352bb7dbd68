"""Grid files: export a city's grids, replace a community's grids from a file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from api.deps import ConnectionDep, get_engine
from api.jurisdiction import require_city, require_code_async
from api.roles import Planner, Viewer
from gis.errors import InputError
from gis.planning.exchange import FORMATS, grids_to_bytes
from gis.planning.store.city import find_city
from gis.planning.store.exchange import grids_frame, import_grids

router = APIRouter(tags=["planning"])
Format = Annotated[str, Query(pattern="^(geojson|gpkg|shp)$", description="geojson, gpkg, or shp (zipped)")]


@router.get("/grids/export", summary="A city's grids as GeoJSON, GeoPackage or zipped Shapefile",
            responses={200: {"content": {m: {} for _, _, m in FORMATS.values()}}})
def export(conn: ConnectionDep, user: Viewer, city: Annotated[str, Query(max_length=100)],
           format: Format = "geojson") -> Response:
    """Only the grids of the user's jurisdiction."""
    row = find_city(conn, city)
    require_city(user, row.id)
    frame = grids_frame(conn, row.id)
    if user.scope.prefix is not None:
        frame = frame[frame["code"].str.startswith(user.scope.prefix)]
    payload = grids_to_bytes(frame, format)
    _, suffix, media = FORMATS[format]
    name = f"grids-{(row.name_en or str(row.id)).lower()}{'.zip' if format == 'shp' else suffix}"
    return Response(payload, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/communities/{code}/grids/import", summary="Replace a community's grids from a file (body)",
             responses={404: {"description": "no such community"}, 409: {"description": "a grid changed meanwhile"},
                        413: {"description": "file too large"},
                        422: {"description": "unreadable file, bad polygons, or the grids would not tile"}})
async def import_file(
    code: str, request: Request, engine: Annotated[Engine, Depends(get_engine)], user: Planner,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
    format: Format = "geojson", dry_run: bool = False,
) -> Any:
    """The request body is the file itself (a zip for a shapefile). Features with a ``code`` of the community
    update that grid; features without one become new grids; grids missing from the file are retired. The
    change is recorded as the signed-in user's."""
    await require_code_async(engine, user, code)
    body = await request.body()  # at most api.limits.MAX_GRID_FILE_BYTES: the body guard refused anything larger
    if not body:
        raise InputError("the request body is empty: send the grid file as the body")
    suffix = ".zip" if format == "shp" else FORMATS[format][1]

    def load() -> Any:  # reading the file and checking the tiling take seconds: off the event loop
        with tempfile.TemporaryDirectory(prefix="gridpatrol-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(body)
            with engine.begin() as conn:
                return import_grids(conn, path, community_code=code, author=user.username, reason=reason,
                                    dry_run=dry_run)
    result = await run_in_threadpool(load)
    return result.as_dict()
