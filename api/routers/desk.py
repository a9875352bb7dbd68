"""The console's own endpoints beside the loop: response templates (read at the desk, edited by an admin), one
step over a selection of cases (previewed, then confirmed: all or nothing), and a case's surroundings for the
map beside the queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.deps import ConnectionDep, get_engine
from api.jurisdiction import event_in_scope
from api.roles import Desk, allow
from api.routers.events import loop_role, staff_in_scope
from api.schemas import BulkSteps, DispatchOptions, Surroundings, Template, documented
from gis.access.scope import User
from gis.dispatch.store import desk
from gis.errors import ForbiddenError, NotFoundError

router = APIRouter(tags=["dispatch"])
EngineDep = Annotated[Engine, Depends(get_engine)]
Admin = Annotated[User, Depends(allow("admin"))]


class TemplateBody(BaseModel):
    step: str = Field(max_length=20, description="the step it serves: reject, close, return, hang, supervise, …")
    body: str = Field(max_length=desk.MAX_TEMPLATE)
    category: str | None = Field(default=None, max_length=16, description="one category's (none: every one)")


class BulkBody(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=desk.MAX_BULK)
    action: str = Field(description=f"one of {', '.join(desk.BULK_ACTIONS)}")
    confirm: bool = Field(default=False, description="false: say what would happen and change nothing; true: do "
                          "it, to every case or to none")
    note: str | None = Field(default=None, max_length=2000)
    staff_id: int | None = Field(default=None, description="dispatch: to this person")
    department: str | None = Field(default=None, max_length=32, description="dispatch: to this department")
    evaluation: int | None = Field(default=None, description="close: a score from 1 to 5")


@router.get("/templates", summary="Response templates for a step (and a category)", response_model=None,
            responses=documented(list[Template]))
def list_templates(conn: ConnectionDep, _: Desk, step: Annotated[str | None, Query(max_length=20)] = None,
                   category: Annotated[str | None, Query(max_length=16)] = None) -> list[dict[str, Any]]:
    return desk.templates(conn, step=step, category=category)


@router.post("/templates", status_code=201, summary="Add a response template", response_model=None,
             responses={**documented(Template, status=201), 422: {"description": "unknown step or category"}})
def add_template(body: TemplateBody, engine: EngineDep, user: Admin) -> dict[str, Any]:
    with engine.begin() as conn:
        return desk.add_template(conn, step=body.step, body=body.body, category=body.category, author=user.username)


@router.put("/templates/{template_id}", summary="Change a response template", response_model=None,
            responses={**documented(Template), 404: {"description": "no such template"}})
def edit_template(template_id: int, body: TemplateBody, engine: EngineDep, user: Admin) -> dict[str, Any]:
    with engine.begin() as conn:
        return desk.edit_template(conn, template_id, step=body.step, body=body.body, category=body.category,
                                  author=user.username)


@router.delete("/templates/{template_id}", status_code=204, summary="Remove a response template",
               responses={404: {"description": "no such template"}})
def remove_template(template_id: int, engine: EngineDep, _: Admin) -> Response:
    with engine.begin() as conn:
        desk.remove_template(conn, template_id)
    return Response(status_code=204)


@router.post("/events/selection", summary="One step over a selection of cases: previewed, then all or none",
             response_model=None,
             responses={**documented(BulkSteps), 409: {"description": "some cases cannot take the step: none did"},
                        422: {"description": "cases outside your jurisdiction, or a step a selection cannot "
                                             "take: nothing done"}})
def bulk_step(body: BulkBody, engine: EngineDep, user: Desk) -> dict[str, Any]:
    """Without ``confirm`` the answer says, case by case, what the step would do and nothing changes; with it every
    case takes the step, or (one cannot) none does."""
    if user.role == "leader":
        raise ForbiddenError("a leader supervises cases one by one; a selection's steps are the centre's")
    with engine.connect() as conn, conn.begin() as transaction:
        if body.staff_id is not None:
            staff_in_scope(conn, user, body.staff_id, active=True)

        def visible(event_id: int) -> bool:
            try:
                event_in_scope(conn, user, event_id)
            except NotFoundError:
                return False
            return True

        done = desk.bulk_step(conn, body.ids, body.action, visible=visible, confirm=body.confirm,
                              actor=user.username, role=loop_role(conn, user), note=body.note,
                              staff_id=body.staff_id, department=body.department, evaluation=body.evaluation,
                              actor_staff_id=user.staff_id)
        if not body.confirm:
            transaction.rollback()
        return done


@router.get("/events/{event_id}/surroundings", summary="A case on its map: its grid, the open cases near it, the "
            "grid's recent cases", response_model=None,
            responses={**documented(Surroundings), 404: {"description": "no such event in your jurisdiction"}})
def surroundings(event_id: int, conn: ConnectionDep, user: Desk,
                 near_m: Annotated[float, Query(gt=0, le=2000)] = desk.NEAR_M) -> dict[str, Any]:
    event_in_scope(conn, user, event_id)
    return desk.surroundings(conn, event_id, near_m=near_m, city_id=user.scope.city_id,
                             unit_code=user.scope.prefix, department=user.department_desk)


@router.get("/events/{event_id}/dispatch-options", summary="Whom a case may be dispatched to: its grid's, community's "
            "and street's staff, and the departments", response_model=None,
            responses={**documented(DispatchOptions), 404: {"description": "no such event in your jurisdiction"}})
def dispatch_options(event_id: int, conn: ConnectionDep, user: Desk) -> dict[str, Any]:
    event_in_scope(conn, user, event_id)
    return desk.dispatch_options(conn, event_id)
