"""The service's code lists (DOMAIN.md's vocabulary): the values a level, role, state or source may take.

Pure data, shared by the domains' rules and the database models (whose CHECK constraints are built from them)."""

from __future__ import annotations

UNIT_LEVELS = ("city", "district", "street", "community")


NETWORKS = ("walk", "drive")


STAFF_ROLES = ("grid_chief", "grid_member", "police", "auxiliary_police", "judge", "mediator", "lawyer",
               "centre_staff", "department")


GRID_DUTIES = ("chief", "member", "embedded")


PRIORITIES = ("urgent", "high", "normal")


SOURCES = ("grid_member", "resident_app", "hotline", "video", "referral")


INPUT_CRS = ("wgs84", "gcj02", "bd09")


EVENT_STATES = ("reported", "accepted", "rejected", "dispatched", "suspended", "handled", "verified", "closed",
                "merged", "hung")


LEVELS = ("grid", "community", "street", "department")


QUEUES = ("grid", "street_centre", "police", "department")


CATEGORY_KINDS = ("component", "event", "social")


ROUTES = ("grid", "police", "department")


VISIT_KINDS = ("basic", "inspection", "budgeted")


USER_ROLES = ("admin", "planner", "dispatcher", "grid_member", "leader", "department", "screen")
"""``screen``: the command centre's wall display, which reads the big screen of its unit and nothing else."""


USER_LEVELS = ("all", "city", "district", "street", "community", "grid")


TASK_STATES = ("open", "taken", "closed")
