"""The closed loop's rules, with no database: which step may follow which state and by whom, what a report
must hold, and the placement distances (the store in ``gis.dispatch.store`` applies them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from gis.dispatch.worktime import Clock, WallClock
from gis.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from gis.geo.coords import system
from gis.vocabulary import PRIORITIES, SOURCES

DEFAULT_RADIUS_M = 50.0


STREET_RADIUS_M = 1000.0


DUPLICATE_RADIUS_M = 50.0


DUPLICATE_WINDOW = timedelta(hours=72)


MAX_DESCRIPTION = 4000


MAX_CONTACT = 200


MAX_PHOTOS = 20
MAX_PHOTO_REF = 500
"""A photo reference's length (a POST /photos key, or a URL), the same in a report and in a step's feedback."""


OPEN_STATES = ("reported", "accepted", "dispatched", "suspended", "handled", "verified", "hung")


LEVEL_ORDER = ("grid", "community", "street", "department")


ASSIGNING = ("dispatch", "rework", "escalate", "reassign")
"""The steps after which an event sits with (possibly) a new person: what a member's stream reports."""


HANDLERS = frozenset({"grid_member", "grid_chief", "police", "auxiliary_police", "judge", "mediator", "lawyer",
                      "department", "centre_staff"})


CENTRE = frozenset({"centre_staff", "system"})


VERIFIERS = frozenset({"grid_member", "grid_chief", "centre_staff"})


STAFF = HANDLERS | {"system"}


RETURN_REASONS = {
    "not_our_duty": "不属本部门职责 not this unit's duty",
    "wrong_location": "属地不符 not this unit's area",
    "unclear_ownership": "权属不清 ownership unclear",
    "overlapping_duties": "职能交叉 duties overlap",
}
"""Why a department (or an assignee) may send a case back (退单) to the centre, which then decides (审定)."""


SUPERVISABLE = frozenset({"accepted", "dispatched", "suspended", "handled", "verified", "hung"})
MAX_ASSISTING = 5


@dataclass(frozen=True)
class Step:
    sources: frozenset[str]
    target: str | None  # None: the state does not change
    roles: frozenset[str]


STEPS: dict[str, Step] = {
    "accept": Step(frozenset({"reported"}), "accepted", CENTRE),
    "reject": Step(frozenset({"reported", "accepted"}), "rejected", CENTRE),
    "merge": Step(frozenset({"reported", "accepted"}), "merged", CENTRE | {"grid_chief"}),
    "dispatch": Step(frozenset({"accepted"}), "dispatched", CENTRE),
    "receive": Step(frozenset({"dispatched"}), None, HANDLERS),  # 签收: the handler confirms they have it
    "handle": Step(frozenset({"dispatched"}), "handled", HANDLERS),
    "verify": Step(frozenset({"handled"}), "verified", VERIFIERS),
    "rework": Step(frozenset({"handled"}), "dispatched", VERIFIERS),
    "close": Step(frozenset({"verified"}), "closed", CENTRE),
    "suspend": Step(frozenset({"dispatched"}), "suspended", CENTRE),
    "resume": Step(frozenset({"suspended"}), "dispatched", CENTRE),
    "extend": Step(frozenset({"dispatched"}), None, CENTRE),
    "escalate": Step(frozenset({"dispatched", "handled"}), None, STAFF),
    # 退单: the handler sends the case back to the centre with a reason; the centre decides (审定): it dispatches
    # it anew (``dispatch``, to someone else) or overrules the return and sends it back (``overrule``)
    "return": Step(frozenset({"dispatched"}), "accepted", HANDLERS),
    "overrule": Step(frozenset({"accepted"}), "dispatched", CENTRE),
    # 挂账: a case that cannot be solved now (no funds, it needs a project) is parked with a reason and a date to
    # look at it again; its clock stops, it stays open and is counted apart; ``unhang`` takes it up again
    "hang": Step(frozenset({"dispatched"}), "hung", CENTRE),
    "unhang": Step(frozenset({"hung"}), "dispatched", CENTRE),
    # 协办: a department assisting the lead one (主办) reports its part; the case closes when the lead's handling
    # is verified and closed
    "assist": Step(frozenset({"dispatched", "handled"}), None, frozenset({"department"})),
    # 督办: a leader or a higher centre puts an open case under supervision: a note, a new deadline, the unit
    # answerable; the state does not change, the case is flagged on every list and counted in the figures
    "supervise": Step(SUPERVISABLE, None, frozenset({"centre_staff", "leader"})),
}


@dataclass
class EventIn:
    """A report as it arrives: a point in some coordinate system and what was seen there."""

    lon: float
    lat: float
    category: str
    source: str
    crs: str = "wgs84"
    priority: str = "normal"
    description: str = ""
    reporter_contact: str | None = None
    photos: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    publish: bool = False
    """The reporter lets the public see the description and photo (where the category is public too)."""

    def fingerprint(self) -> str:
        """What "the same request" means for an idempotency key: every field of the report. (``publish`` counts
        only when set, so that the reports stored before it existed keep their fingerprints.)"""
        body = {k: getattr(self, k) for k in ("lon", "lat", "crs", "category", "source", "priority",
                                              "description", "reporter_contact", "photos")}
        if self.publish:
            body["publish"] = True
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def check(self) -> None:
        system(self.crs)
        if self.priority not in PRIORITIES:
            raise InputError(f"unknown priority {self.priority!r}: use one of {', '.join(PRIORITIES)}")
        if self.source not in SOURCES:
            raise InputError(f"unknown source {self.source!r}: use one of {', '.join(SOURCES)}")
        if len(self.description) > MAX_DESCRIPTION:
            raise InputError(f"the description has {len(self.description):,} characters; at most {MAX_DESCRIPTION:,}")
        if self.reporter_contact is not None and len(self.reporter_contact) > MAX_CONTACT:
            raise InputError(f"the reporter contact has more than {MAX_CONTACT} characters")
        if len(self.photos) > MAX_PHOTOS or any(len(p) > MAX_PHOTO_REF for p in self.photos):
            raise InputError(f"at most {MAX_PHOTOS} photo references of at most {MAX_PHOTO_REF} characters each")
        if self.idempotency_key is not None and not 1 <= len(self.idempotency_key) <= 128:
            raise InputError("an idempotency key has 1 to 128 characters")
        texts = [self.category, self.description, self.reporter_contact or "", self.idempotency_key or ""]
        if any("\x00" in t for t in texts + self.photos):
            raise InputError("text must not contain NUL (\\u0000) characters")
        try:
            "".join(texts + self.photos).encode()
        except UnicodeEncodeError:
            raise InputError("text must be valid Unicode (a lone surrogate such as \\ud800 is not)") from None


@dataclass
class Intake:
    event: dict[str, Any]
    replayed: bool  # a retry with the same idempotency key: the first result, nothing stored again


ASSIGNEE_ONLY = frozenset({"receive", "handle", "return"})
"""Steps only the event's assignee takes (or, for an event at its department, the department)."""
CHECKS_OTHERS = frozenset({"verify", "rework"})
"""Steps that judge a handling: never by whoever handled it."""


@dataclass(frozen=True)
class EventNow:
    """An event as a step of the loop sees it (locked, in the step's transaction)."""

    id: int
    state: str
    level: str
    priority: str
    period: timedelta
    """The category's deadline for the event's priority."""
    due_at: datetime | None
    suspended_at: datetime | None
    missed_deadline: bool
    updated_at: datetime
    assignee_id: int | None
    handled_by: str | None
    """Who took the last ``handle`` step (``None``: no one yet)."""
    last_action: str | None = None
    """The event's latest step (an ``overrule`` answers a ``return``, and nothing else)."""
    clock: Clock = field(default_factory=WallClock)
    """How the event's deadlines count: the city's working time, or the wall clock (urgent, safety, police)."""
    dispatch_period: timedelta = timedelta(hours=1)
    """派遣: the time from acceptance to dispatch the category allows."""
    accept_due_at: datetime | None = None
    dispatch_due_at: datetime | None = None
    dispatch_late: bool | None = None
    department: str | None = None
    """The department it went to (the lead one, 主办, in joint handling)."""
    assisting: tuple[str, ...] = ()
    """The departments assisting (协办)."""


@dataclass
class StepPlan:
    """What a step changes: the new state, the columns to set, what the step records, the counters it adds to,
    and (an escalation) the level whose holder the store looks up."""

    target: str
    sets: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    counters: list[str] = field(default_factory=list)
    holder_level: str | None = None


def plan_step(event: EventNow, action: str, *, actor: str, role: str, actor_staff_id: int | None, at: datetime,
              hours: float | None = None, evaluation: int | None = None, into: int | None = None,
              into_state: str | None = None, to_level: str | None = None, staff_id: int | None = None,
              deadline_passed: bool = False, seen_updated_at: datetime | None = None,
              photos: Sequence[str] = (), reason: str | None = None, note: str | None = None,
              review_on: date | None = None, department: str | None = None, assisting: Sequence[str] = (),
              due: datetime | None = None, unit: str | None = None,
              actor_department: str | None = None) -> StepPlan:
    """The rule of one step of the loop (see :data:`STEPS`), with no database: who may take it, from which
    state, and what it changes. Refusals: InputError (a bad value), ForbiddenError (not this role or person),
    NotFoundError (a merge into nothing), ConflictError (the state, or someone changed the event meanwhile)."""
    step = STEPS.get(action)
    if step is None:
        raise InputError(f"unknown action {action!r}: use one of {', '.join(STEPS)}")
    if not actor.strip():
        raise InputError("every step names its actor")
    if role not in step.roles:
        raise ForbiddenError(f"a {role} may not {action} an event; that is for: {', '.join(sorted(step.roles))}")
    if action in ASSIGNEE_ONLY and role != "department" and (actor_staff_id is None
                                                             or actor_staff_id != event.assignee_id):
        raise ForbiddenError(f"only the event's assignee may {action} it (event {event.id} is assigned to "
                             f"{'no one' if event.assignee_id is None else 'someone else'})")
    if action in ASSIGNEE_ONLY and role == "department" and actor_department is not None \
            and actor_department != event.department:
        raise ForbiddenError(f"only the lead department ({event.department}) may {action} event {event.id}; an "
                             "assisting one reports its part (assist)")
    if action == "assist" and (actor_department is None or actor_department not in event.assisting):
        raise ForbiddenError(f"only a department assisting with event {event.id} reports on it (assisting: "
                             f"{', '.join(event.assisting) or 'none'})")
    if action in CHECKS_OTHERS and event.handled_by is not None and event.handled_by == actor:
        raise ForbiddenError(f"you handled event {event.id}: someone else verifies it")
    if event.state not in step.sources:  # first: what the state allows says more than "it changed"
        allowed = sorted(a for a, s in STEPS.items() if event.state in s.sources)
        raise ConflictError(f"event {event.id} is {event.state}: {action!r} cannot be taken now; possible steps: "
                            f"{', '.join(allowed) or 'none (the loop is over)'}")
    if seen_updated_at is not None and seen_updated_at != event.updated_at:
        raise ConflictError(f"event {event.id} changed at {event.updated_at.isoformat()}, after you read it "
                            f"({seen_updated_at.isoformat()}): read it again, then decide")
    plan = StepPlan(target=step.target or event.state, sets={"state": step.target or event.state, "updated_at": at})
    if photos:  # a feedback's pictures (POST /photos keys), kept with the step
        if len(photos) > MAX_PHOTOS or not all(isinstance(k, str) and 0 < len(k) <= MAX_PHOTO_REF
                                               for k in photos):
            raise InputError(f"at most {MAX_PHOTOS} photo references of at most {MAX_PHOTO_REF} characters")
        plan.data["photos"] = list(photos)
    clock = event.clock
    if action == "accept":
        plan.sets.update(accepted_at=at, accept_late=event.accept_due_at is not None and at > event.accept_due_at,
                         dispatch_due_at=clock.deadline(at, _hours(event.dispatch_period)))
    elif action == "dispatch":
        plan.sets.update(dispatched_at=at, due_at=clock.deadline(at, _hours(event.period)))
        if event.dispatch_late is None and event.dispatch_due_at is not None:  # the first dispatch ends its clock
            plan.sets["dispatch_late"] = at > event.dispatch_due_at
        if staff_id is not None and department is not None:
            raise InputError("dispatch to a person (staff_id) or to a department, not both")
        if staff_id is not None:
            plan.sets.update(assignee_staff_id=staff_id, queue="grid", department_code=None, assisting=[])
        if department is not None:
            helpers = list(dict.fromkeys(assisting))
            if department in helpers:
                raise InputError(f"the lead department {department} cannot also assist")
            if len(helpers) > MAX_ASSISTING:
                raise InputError(f"at most {MAX_ASSISTING} assisting departments")
            plan.sets.update(queue="department", department_code=department, assignee_staff_id=None,
                             assisting=helpers)
            plan.data.update(department=department, assisting=helpers)
        elif assisting:
            raise InputError("assisting departments (协办) go with a lead department (department)")
        if event.last_action == "return":
            plan.data["decision"] = "redispatched"
    elif action == "return":
        if reason not in RETURN_REASONS:
            raise InputError(f"a return names its reason: one of {', '.join(RETURN_REASONS)}")
        plan.data["reason"] = reason
    elif action == "overrule":
        if event.last_action != "return":
            raise ConflictError(f"event {event.id} was not returned: there is no return to overrule")
        plan.data["decision"] = "overruled"  # back to the same handler, on the deadline it had
    elif action == "supervise":
        if not (note or "").strip():
            raise InputError("a supervision says what is wanted (note)")
        if due is None or due <= at:
            raise InputError("a supervision sets a new deadline (due) after now")
        if not unit or not unit.strip() or len(unit) > 40:
            raise InputError("a supervision names the unit answerable for the case (unit: a unit's or department's "
                             "code)")
        plan.sets.update(supervised_at=at, supervision_due_at=due, supervision_unit=unit.strip(),
                         supervision_note=(note or "").strip())
        plan.data.update(due_at=due.isoformat(), unit=unit.strip())
    elif action == "assist":
        if not (note or "").strip() and not photos:
            raise InputError("an assisting department's report says what it did (note, photos)")
        plan.data["department"] = actor_department
    elif action == "suspend":
        plan.sets["suspended_at"] = at
    elif action in ("resume", "unhang"):
        assert event.suspended_at is not None and event.due_at is not None
        paused = at - event.suspended_at
        if event.due_at > event.suspended_at:  # the clock resumes with the (working) time that was left
            due = clock.deadline(at, clock.hours_between(event.suspended_at, event.due_at))
        else:  # it was already late: as late as it was
            due = event.due_at + paused
        plan.sets.update(suspended_at=None, due_at=due)
        plan.data["paused_seconds"] = int(paused.total_seconds())
    elif action == "hang":
        if not (note or "").strip():
            raise InputError("a hung case names why it cannot be solved now (note)")
        if review_on is None or review_on <= at.date():
            raise InputError("a hung case names the date to look at it again (review_on), after today")
        plan.sets["suspended_at"] = at
        plan.data["review_on"] = review_on.isoformat()
    elif action == "extend":
        if hours is None or not 0 < hours <= 24 * 30:
            raise InputError("an extension gives the extra hours (more than 0, at most 720)")
        if not (note or "").strip():
            raise InputError("an extension says why (note)")
        assert event.due_at is not None
        plan.sets["due_at"] = clock.deadline(event.due_at, hours)
        plan.counters.append("extensions")
        plan.data["hours"] = hours
    elif action == "rework":
        plan.counters.append("reworks")
    elif action == "close":
        if evaluation is not None and not 1 <= evaluation <= 5:
            raise InputError("an evaluation is a score from 1 to 5")
        plan.sets.update(closed_at=at, evaluation=evaluation, closed_on_time=bool(
            not event.missed_deadline and event.due_at is not None and at <= event.due_at))
    elif action == "merge":
        if into is None or into == event.id:
            raise InputError("merge names the event this one duplicates (into)")
        if into_state is None:
            raise NotFoundError(f"no event {into} to merge into")
        if into_state not in OPEN_STATES:
            raise ConflictError(f"event {into} is {into_state}: merge into an open event")
        plan.sets["duplicate_of"] = into
        plan.data["into"] = into
    elif action == "escalate":
        target_level = to_level or LEVEL_ORDER[min(LEVEL_ORDER.index(event.level) + 1, len(LEVEL_ORDER) - 1)]
        if target_level not in LEVEL_ORDER or LEVEL_ORDER.index(target_level) <= LEVEL_ORDER.index(event.level):
            higher = ", ".join(LEVEL_ORDER[LEVEL_ORDER.index(event.level) + 1:]) or "it is at the top"
            raise ConflictError(f"event {event.id} is at the {event.level} level: it can only go up ({higher})")
        plan.holder_level = target_level
        plan.sets.update(level=target_level, due_at=clock.deadline(at, _hours(event.period)))
        if deadline_passed:
            plan.sets["missed_deadline"] = True
        plan.counters.append("escalations")
        plan.data.update(from_level=event.level, to_level=target_level)
    return plan


def _hours(period: timedelta) -> float:
    return period.total_seconds() / 3600
