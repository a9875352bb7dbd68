"""The cases' changes to a grid's figures appended, and folded in later: no grid row locked by the intake.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06

Migration 0033's triggers on the cases updated the grid's row in the statement that changed a case. The intake
runs such a statement for every report, many at once: a report's transaction then held its grid's row until it
committed, and two transactions that had reported on two grids in opposite orders deadlocked (the intake
benchmark: 12 deadlocks, and 411 reports/s where the same machine made 650/s without the triggers).

Now the trigger appends the statement's change per grid to ``grid_case_changes`` (insert only: no row of anyone
else's is locked), through ``grid_cases_append`` (the changed cases' ``grid_case_row``s, as they were and as they
are) with static statements, whose plans a session keeps (0033's dynamic statement was planned for every report).
A reader adds the changes not yet folded in to the grid's row (``gis.planning.queries``:
``GRID_OPEN``, ``GRID_OVERDUE``: overdue counts add up over the deadlines added and removed), so it reads the same
figures at once. ``grid_cases_fold()`` folds them into the grids' rows in one transaction (a reader sees a change
either appended or folded), one folder at a time; the service runs it every few seconds. The buildings' trigger
stays as it was: buildings change in imports, divisions and edits, not at the intake's rate. The functions' text
is the frozen copy ``0034_grid_case_changes.sql`` beside this file (current: ``gis/planning/sql/grid_figures.sql``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE grid_case_changes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        grid_id integer NOT NULL,
        open_delta integer NOT NULL,
        added timestamptz[],
        removed timestamptz[])""")
    op.execute("CREATE TYPE grid_case_row AS (grid_id integer, archive integer, state text, due_at timestamptz)")
    op.execute(Path(__file__).with_name("0034_grid_case_changes.sql").read_text())


def downgrade() -> None:
    op.execute("SELECT grid_cases_fold()")
    op.execute(Path(__file__).with_name("0033_grid_figures.sql").read_text())
    op.execute("DROP FUNCTION grid_cases_fold(), grid_cases_append(grid_case_row[], grid_case_row[])")
    op.execute("DROP TYPE grid_case_row")
    op.execute("DROP TABLE grid_case_changes")
