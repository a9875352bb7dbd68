"""SQL text of the city model that other stores read too: plain strings, no driver (each store runs them on
its own connection)."""

from __future__ import annotations

GRID_TOTALS = "g.households, g.buildings"
"""A grid's households and buildings, as SQL select items over ``grids g``: the one definition every reader uses
(kept on the grid's row by triggers on the buildings, migration 0033)."""
GRID_OVERDUE = "coalesce(width_bucket(now() - interval '1 microsecond', {alias}.open_dues), 0)"
"""A grid's open cases past their handling deadline now, over ``grids {alias}``: its sorted deadlines (kept by
triggers on the cases, migration 0033) already passed, by binary search: those ≤ now − 1 µs are those < now (the
clock's resolution is a microsecond), as ``gis.dispatch.queries.OVERDUE_SQL`` says of one case."""
