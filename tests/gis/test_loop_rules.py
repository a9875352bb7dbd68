"""The loop's rules with no database (gis.dispatch.rules.plan_step): who may take which step, from which state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gis.dispatch.rules import EventNow, plan_step
from gis.errors import ConflictError, ForbiddenError, InputError, NotFoundError

AT = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def _event(state: str = "dispatched", *, assignee: int | None = 7, handled_by: str | None = None) -> EventNow:
    return EventNow(id=1, state=state, level="grid", priority="normal", period=timedelta(hours=72),
                    due_at=AT + timedelta(hours=72), suspended_at=None, missed_deadline=False, updated_at=AT,
                    assignee_id=assignee, handled_by=handled_by)


def test_only_the_assignee_receives_and_handles() -> None:
    for action in ("receive", "handle"):
        assert plan_step(_event(), action, actor="m", role="grid_member", actor_staff_id=7, at=AT)
        with pytest.raises(ForbiddenError, match="assignee"):
            plan_step(_event(), action, actor="n", role="grid_member", actor_staff_id=8, at=AT)
        with pytest.raises(ForbiddenError, match="assignee"):
            plan_step(_event(), action, actor="c", role="centre_staff", actor_staff_id=None, at=AT)
    assert plan_step(_event(assignee=None), "handle", actor="d", role="department", actor_staff_id=None,
                     at=AT).target == "handled"  # a department handles what went to it


def test_a_handler_never_verifies_their_own_work() -> None:
    handled = _event("handled", handled_by="m")
    for action in ("verify", "rework"):
        with pytest.raises(ForbiddenError, match="someone else"):
            plan_step(handled, action, actor="m", role="grid_member", actor_staff_id=7, at=AT)
    assert plan_step(handled, "verify", actor="chief", role="grid_chief", actor_staff_id=3, at=AT).target == "verified"
    assert plan_step(handled, "rework", actor="c", role="centre_staff", actor_staff_id=None, at=AT).counters == \
        ["reworks"]


def test_states_roles_and_values() -> None:
    with pytest.raises(ConflictError, match="'close' cannot be taken now"):
        plan_step(_event(), "close", actor="c", role="centre_staff", actor_staff_id=None, at=AT)
    with pytest.raises(ForbiddenError):
        plan_step(_event("reported"), "accept", actor="m", role="grid_member", actor_staff_id=7, at=AT)
    with pytest.raises(InputError):
        plan_step(_event(), "extend", actor="c", role="centre_staff", actor_staff_id=None, at=AT, hours=0)
    with pytest.raises(NotFoundError):
        plan_step(_event("reported"), "merge", actor="c", role="centre_staff", actor_staff_id=None, at=AT, into=9)
    with pytest.raises(ConflictError, match="changed"):
        plan_step(_event(), "extend", actor="c", role="centre_staff", actor_staff_id=None, at=AT, hours=1,
                  seen_updated_at=AT - timedelta(seconds=1))
    up = plan_step(_event(), "escalate", actor="c", role="centre_staff", actor_staff_id=None, at=AT)
    assert up.holder_level == "community" and up.sets["due_at"] == AT + timedelta(hours=72)
