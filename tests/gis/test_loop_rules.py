"""The loop's rules with no database (gis.dispatch.rules.plan_step): who may take which step, from which state."""

from __future__ import annotations

from dataclasses import replace
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
                  note="materials late", seen_updated_at=AT - timedelta(seconds=1))
    with pytest.raises(InputError, match="says why"):
        plan_step(_event(), "extend", actor="c", role="centre_staff", actor_staff_id=None, at=AT, hours=8)
    up = plan_step(_event(), "escalate", actor="c", role="centre_staff", actor_staff_id=None, at=AT)
    assert up.holder_level == "community" and up.sets["due_at"] == AT + timedelta(hours=72)


def test_a_return_needs_its_reason_and_an_overrule_needs_a_return() -> None:
    from gis.dispatch.rules import RETURN_REASONS

    dispatched = _event("dispatched")
    with pytest.raises(InputError, match="a return names its reason"):
        plan_step(dispatched, "return", actor="w", role="department", actor_staff_id=None, at=AT)
    plan = plan_step(dispatched, "return", actor="w", role="department", actor_staff_id=None, at=AT,
                     reason="wrong_location")
    assert plan.target == "accepted" and plan.data == {"reason": "wrong_location"} and len(RETURN_REASONS) == 4
    with pytest.raises(ForbiddenError, match="only the event's assignee"):
        plan_step(dispatched, "return", actor="m", role="grid_member", actor_staff_id=8, at=AT, reason="not_our_duty")
    accepted = _event("accepted")
    with pytest.raises(ConflictError, match="was not returned"):
        plan_step(accepted, "overrule", actor="c", role="centre_staff", actor_staff_id=None, at=AT)
    returned = replace(accepted, last_action="return")
    assert plan_step(returned, "overrule", actor="c", role="centre_staff", actor_staff_id=None,
                     at=AT).target == "dispatched"
    assert plan_step(returned, "dispatch", actor="c", role="centre_staff", actor_staff_id=None,
                     at=AT).data == {"decision": "redispatched"}


def test_a_case_hangs_with_a_reason_and_a_review_date_and_its_clock_stops() -> None:
    from datetime import date

    with pytest.raises(InputError, match="names why"):
        plan_step(_event(), "hang", actor="c", role="centre_staff", actor_staff_id=None, at=AT,
                  review_on=date(2026, 12, 10))
    with pytest.raises(InputError, match="after today"):
        plan_step(_event(), "hang", actor="c", role="centre_staff", actor_staff_id=None, at=AT, note="no funds",
                  review_on=AT.date())
    plan = plan_step(_event(), "hang", actor="c", role="centre_staff", actor_staff_id=None, at=AT, note="no funds",
                     review_on=date(2026, 12, 10))
    assert plan.target == "hung" and plan.sets["suspended_at"] == AT and plan.data == {"review_on": "2026-12-10"}
    hung = replace(_event("hung"), suspended_at=AT)
    back = plan_step(hung, "unhang", actor="c", role="centre_staff", actor_staff_id=None, at=AT + timedelta(days=3))
    assert back.target == "dispatched" and back.sets["due_at"] == AT + timedelta(hours=72) + timedelta(days=3)
