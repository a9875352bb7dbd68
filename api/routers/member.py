"""The grid member's phone page (``/m/``) and what it needs beyond the other routers: photos, volunteer tasks.

The page itself is static (``maps/static/member``): it reads the member's grid, route and events from the API,
works offline through its service worker, and queues what the member sends without a signal (reports, visits,
tracks, photos) on the phone until it returns, each with its idempotency key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from api.deps import ConnectionDep, get_engine
from api.jurisdiction import event_visible, require_code
from api.ratelimit import Reporter
from api.roles import Dispatcher, FieldMember, Viewer
from api.tokens import CurrentUser
from gis.db.engine import writing
from gis.errors import ForbiddenError, NotFoundError
from gis.member.store import photos as member
from gis.member.store import tasks

router = APIRouter(tags=["grid member"])
EngineDep = Annotated[Engine, Depends(get_engine)]
PAGE = Path(__file__).resolve().parents[2] / "maps" / "static" / "member"


@router.get("/m/", response_class=FileResponse, summary="The grid member's phone page: my grid, my route, "
            "one-key report, my visits and events (works offline)")
def member_page(_: CurrentUser) -> FileResponse:
    return FileResponse(PAGE / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/m/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    """The page's service worker (a static script, like /static: no data in it)."""
    return FileResponse(PAGE / "sw.js", media_type="text/javascript",
                        headers={"Service-Worker-Allowed": "/m/", "Cache-Control": "no-cache"})


@router.post("/photos", status_code=201, summary="Keep a photo for a report or a feedback; its key for `photos`",
             responses={413: {"description": "larger than 5 MB"}, 422: {"description": "not a JPEG, PNG or WebP"}})
async def upload_photo(request: Request, engine: EngineDep, user: Reporter) -> dict[str, Any]:
    """The body is the picture. The same picture sent twice gets the same key and is stored once."""
    data = await request.body()
    return await run_in_threadpool(writing, engine, member.store_photo, data, uploaded_by=user.username)


@router.get("/photos/{key}", summary="A stored photo, to those who may see an event or step that shows it",
            responses={404: {"description": "no such photo, or none you may see"}})
def photo(key: str, conn: ConnectionDep, user: CurrentUser) -> Response:
    """To its uploader, and to whoever may see one of the events that show it (as reported or in a step's
    feedback). Anyone else gets the same 404 as for a photo that does not exist."""
    if len(key) > 80 or (member.photo_uploader(conn, key) != user.username and not any(
            event_visible(user, *where) for where in member.photo_events(conn, key))):
        raise NotFoundError(f"no photo {key}")
    data, media = member.get_photo(conn, key)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


class TaskBody(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["帮独居老人买药 Buy medicine for an old neighbour"])
    description: str = Field(default="", max_length=2000)


class CloseBody(BaseModel):
    note: str = Field(default="", max_length=2000)


@router.post("/grids/{code}/tasks", status_code=201, summary="Post a volunteer task for a grid (the community)",
             responses={404: {"description": "no such grid"}})
def new_task(code: str, body: TaskBody, engine: EngineDep, user: Dispatcher) -> dict[str, Any]:
    with engine.begin() as conn:
        require_code(conn, user, code)
        return tasks.post_task(conn, code, body.title, body.description, posted_by=user.username)


@router.get("/grids/{code}/tasks", summary="A grid's open and taken volunteer tasks")
def grid_tasks(code: str, conn: ConnectionDep, user: Viewer) -> list[dict[str, Any]]:
    require_code(conn, user, code)
    return tasks.list_tasks(conn, [code])


def _own_task(conn: Connection, user: Any, task_id: int) -> None:
    try:
        require_code(conn, user, tasks.task_grid(conn, task_id))
    except ForbiddenError:
        raise NotFoundError(f"no task {task_id}") from None


@router.post("/tasks/{task_id}/take", summary="Take a volunteer task (409 when someone took it first)",
             responses={404: {"description": "no such task in your grids"}, 409: {"description": "taken already"}})
def take(task_id: int, engine: EngineDep, user: FieldMember) -> dict[str, Any]:
    with engine.begin() as conn:
        _own_task(conn, user, task_id)
        return tasks.take_task(conn, task_id, by=user.username)


@router.post("/tasks/{task_id}/close", summary="Close a volunteer task you took",
             responses={404: {"description": "no such task in your grids"},
                        409: {"description": "not taken by you"}})
def close(task_id: int, body: CloseBody, engine: EngineDep, user: FieldMember) -> dict[str, Any]:
    with engine.begin() as conn:
        _own_task(conn, user, task_id)
        return tasks.close_task(conn, task_id, by=user.username, note=body.note)
