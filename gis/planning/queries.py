"""SQL text of the city model that other stores read too: plain strings, no driver (each store runs them on
its own connection)."""

from __future__ import annotations

GRID_TOTALS = "g.households, g.buildings"
"""A grid's households and buildings, as SQL select items over ``grids g``: the one definition every reader uses
(kept on the grid's row by triggers on the buildings, migration 0033)."""
GRID_CITY = "(SELECT a.city_id FROM admin_units a WHERE a.id = {alias}.community_id)"
"""A grid's city, over ``grids {alias}``: its community's, looked up for the one grid (not a join of every grid to the
units, which a zoom-10 tile of thousands of grids would pay for)."""
GRID_PENDING = """LEFT JOIN (
    SELECT c.grid_id, sum(c.open_delta) AS open,
           sum(coalesce(width_bucket(now() - interval '1 microsecond', c.added), 0)
               - coalesce(width_bucket(now() - interval '1 microsecond', c.removed), 0)) AS overdue
    FROM grid_case_changes c GROUP BY c.grid_id) AS pending ON pending.grid_id = {alias}.id"""
"""The cases' changes not yet folded into the grids' rows (migration 0034), per grid, as a join to ``grids
{alias}``: what :data:`GRID_OPEN` and :data:`GRID_OVERDUE` add (a handful of rows between two folds)."""
GRID_OPEN = "({alias}.open_cases + coalesce(pending.open, 0))::int"
"""A grid's open cases, over ``grids {alias}`` joined to :data:`GRID_PENDING`: its row's, and the changes since."""
GRID_OVERDUE = ("(coalesce(width_bucket(now() - interval '1 microsecond', {alias}.open_dues), 0)"
                " + coalesce(pending.overdue, 0))::int")
"""A grid's open cases past their handling deadline now, over ``grids {alias}`` joined to :data:`GRID_PENDING`: its
row's sorted deadlines already passed, found by binary search (those ≤ now − 1 µs are those < now: the clock's
resolution is a microsecond), as ``gis.dispatch.queries.OVERDUE_SQL`` says of one case; plus those of the changes
since (a count of the deadlines passed adds up over the deadlines added and taken away)."""
