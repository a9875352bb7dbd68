"""A grid's figures kept on its row: households, buildings, open cases and the deadlines of those being handled.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05

Every map colours grids by these figures, and every reader computed them again: the households and buildings by a
lookup of the grid's buildings, the open and overdue cases by a join of the cases. A zoom-10 tile of a province holds
9,000 grids; the join of the cases was 14 of its 35 ms, and a zoom-13 tile took 1.8x the bare tile's query.

The figures now live on the grid's row, kept by statement-level triggers (with transition tables, so a bulk import
or a division's reassignment of thousands of buildings costs one update per grid it touches, not one per row):

- ``households``, ``buildings``: the sum and count of the buildings whose ``grid_id`` is the grid;
- ``open_cases``: its cases in an open state (``gis.dispatch.rules.OPEN_STATES``), not archived;
- ``open_dues``: the handling deadlines (``due_at``) of its cases being handled (``dispatched``, ``handled``), sorted,
  NULL for none. "Overdue" changes with the clock, not with a write, so it is not stored: a reader counts the
  deadlines already passed, ``width_bucket(now() - 1 µs, open_dues)`` (a binary search: the deadlines ≤ the
  operand, so < now()), as ``due_at < now()`` does for a case.

Triggers apply deltas (``+ n``), so two transactions adding cases to one grid both count; the grid rows a statement
touches are locked in id order first (``FOR NO KEY UPDATE``, which a case's foreign key check does not wait for), so
two bulk writes do not deadlock on each other. A statement that changes nothing a figure depends on (a case's
description, a building's name) touches no grid. TRUNCATE of the cases or buildings zeroes the figures it empties.
The functions' text is the frozen copy ``0033_grid_figures.sql`` beside this file (current:
``gis/planning/sql/grid_figures.sql``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

OPEN = "('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')"
HANDLING = "('dispatched', 'handled')"
CASES = ("events", "events_live")
"""Where the cases' triggers sit: a statement-level trigger fires for the table a statement names, so the live
partition (which some statements write directly) has its own; a statement on ``events`` fires only ``events``'s.
The archive partitions hold closed cases only (``archive`` <> 0), which no figure counts."""


def upgrade() -> None:
    op.execute("""ALTER TABLE grids
        ADD COLUMN households integer NOT NULL DEFAULT 0,
        ADD COLUMN buildings integer NOT NULL DEFAULT 0,
        ADD COLUMN open_cases integer NOT NULL DEFAULT 0,
        ADD COLUMN open_dues timestamptz[]""")
    op.execute(Path(__file__).with_name("0033_grid_figures.sql").read_text())
    for name, referencing in (("insert", "NEW TABLE AS new_rows"), ("delete", "OLD TABLE AS old_rows"),
                              ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
        for cases in CASES:
            op.execute(f"CREATE TRIGGER {cases}_grid_figures_{name} AFTER {name.upper()} ON {cases} "
                       f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION grid_cases_changed()")
        op.execute(f"CREATE TRIGGER buildings_grid_figures_{name} AFTER {name.upper()} ON buildings "
                   f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION grid_buildings_changed()")
    for cases in CASES:
        op.execute(f"CREATE TRIGGER {cases}_grid_figures_truncate AFTER TRUNCATE ON {cases} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION grid_figures_emptied('cases')")
    op.execute("CREATE TRIGGER buildings_grid_figures_truncate AFTER TRUNCATE ON buildings "
               "FOR EACH STATEMENT EXECUTE FUNCTION grid_figures_emptied('buildings')")
    op.execute(f"""UPDATE grids g SET
        households = coalesce((SELECT sum(b.households) FROM buildings b WHERE b.grid_id = g.id), 0),
        buildings = (SELECT count(*) FROM buildings b WHERE b.grid_id = g.id),
        open_cases = (SELECT count(*) FROM events e WHERE e.grid_id = g.id AND e.archive = 0 AND e.state IN {OPEN}),
        open_dues = (SELECT array_agg(e.due_at ORDER BY e.due_at) FROM events e WHERE e.grid_id = g.id
                     AND e.archive = 0 AND e.state IN {HANDLING} AND e.due_at IS NOT NULL)""")


def downgrade() -> None:
    for table in (*CASES, "buildings"):
        for name in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_grid_figures_{name} ON {table}")
    op.execute("DROP FUNCTION grid_figures_emptied(), grid_buildings_changed(), grid_cases_changed(), "
               "grid_dues_apply(timestamptz[], timestamptz[], timestamptz[])")
    op.execute("ALTER TABLE grids DROP COLUMN households, DROP COLUMN buildings, DROP COLUMN open_cases, "
               "DROP COLUMN open_dues")
