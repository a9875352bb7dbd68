"""The closed loop's rules, with no database: which step may follow which state and by whom, what a report
must hold, and the placement distances (the store in ``gis.dispatch.store`` applies them)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gis.errors import InputError
from gis.geo.coords import system
from gis.vocabulary import PRIORITIES, SOURCES

DEFAULT_RADIUS_M = 50.0


STREET_RADIUS_M = 1000.0


DUPLICATE_RADIUS_M = 50.0


DUPLICATE_WINDOW = timedelta(hours=72)


MAX_DESCRIPTION = 4000


MAX_CONTACT = 200


MAX_PHOTOS = 20


OPEN_STATES = ("reported", "accepted", "dispatched", "suspended", "handled", "verified")


LEVEL_ORDER = ("grid", "community", "street", "department")


ASSIGNING = ("dispatch", "rework", "escalate", "reassign")
"""The steps after which an event sits with (possibly) a new person: what a member's stream reports."""


HANDLERS = frozenset({"grid_member", "grid_chief", "police", "auxiliary_police", "judge", "mediator", "lawyer",
                      "department", "centre_staff"})


CENTRE = frozenset({"centre_staff", "system"})


VERIFIERS = frozenset({"grid_member", "grid_chief", "centre_staff"})


STAFF = HANDLERS | {"system"}


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
        if len(self.photos) > MAX_PHOTOS or any(len(p) > 500 for p in self.photos):
            raise InputError(f"at most {MAX_PHOTOS} photo references of at most 500 characters each")
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
