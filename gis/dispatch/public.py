"""What the public may see of a service request (Open311's reads), and what a signed-in user sees in full.

The rule, as the civic platforms keep it (FixMyStreet's private categories):

* A category says whether it is public (``categories.public``). A social-governance matter (a dispute, a
  resident in need, whose exact point locates a vulnerable person) or a police route never is.
* A public answer carries the state, the category, the responsible unit (the grid, or the street's centre, or the
  department), the times, and the location coarsened to about 100 m (``PUBLIC_DIGITS`` decimals of a degree).
* The description, the latest step's note and the photo go out only where the category is public and the reporter
  chose to publish (``events.published``).
* A signed-in user sees in full what lies inside their jurisdiction; elsewhere, what the public sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PUBLIC_DIGITS = 3
"""Decimals of a degree kept in a public location: 0.001° is 111 m of latitude and 95 m of longitude at 32°N."""
CLOSED = ("closed", "rejected", "merged")
MAX_IDS = 100
"""The most requests one ``service_request_id`` list may ask for: a client follows its own few, not the table."""


@dataclass(frozen=True)
class RequestRow:
    """One event as the Open311 reads load it."""

    id: int
    state: str
    category: str
    category_name: str
    category_public: bool
    published: bool
    description: str
    lon: float
    lat: float
    reported_at: datetime
    updated_at: datetime
    due_at: datetime | None
    photos: list[str]
    grid: str | None
    grid_name: str | None
    street_name: str | None
    department_name: str | None
    level: str
    note: str | None
    city_id: int
    unit_code: str | None
    department: str | None
    queue: str


def agency(row: RequestRow) -> str:
    """The unit responsible: the department once it has the case, else the grid, else the street's centre."""
    if (row.level == "department" or row.grid is None) and row.department_name:
        return row.department_name
    return f"{row.grid_name} ({row.grid})" if row.grid else f"{row.street_name} 综治中心"


def request_view(row: RequestRow, *, full: bool) -> dict[str, Any]:
    """The Open311 request: in full (``full``), or as the public may see it (the module docstring)."""
    shown = full or (row.category_public and row.published)
    digits = 7 if full else PUBLIC_DIGITS
    note = row.note if shown else None
    return {
        "service_request_id": str(row.id), "status": "closed" if row.state in CLOSED else "open",
        "status_notes": f"{row.state}: {note}" if note else row.state, "service_name": row.category_name,
        "service_code": row.category, "description": row.description if shown else "",
        "agency_responsible": agency(row), "service_notice": None,
        "requested_datetime": row.reported_at.isoformat(), "updated_datetime": row.updated_at.isoformat(),
        "expected_datetime": row.due_at.isoformat() if row.due_at else None, "address": None, "address_id": None,
        "zipcode": None, "lat": round(row.lat, digits), "long": round(row.lon, digits),
        "media_url": (row.photos[0] if row.photos else None) if shown else None,
    }
