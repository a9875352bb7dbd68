"""SQL text of the city model that other stores read too: plain strings, no driver (each store runs them on
its own connection)."""

from __future__ import annotations

GRID_TOTALS = ("COALESCE((SELECT sum(b.households) FROM buildings b WHERE b.grid_id = g.id), 0)::int AS households, "
               "(SELECT count(*) FROM buildings b WHERE b.grid_id = g.id)::int AS buildings")
"""A grid's households and buildings, as SQL select items over ``grids g``: the one definition every reader uses."""
