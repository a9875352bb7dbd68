"""The placement rule written once: three SQL functions that single and bulk intake both call.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

``gridpatrol_grid_at`` (the grid containing a point, lowest code on a shared edge), ``gridpatrol_grid_near`` (the
nearest grid within the radius) and ``gridpatrol_street_near`` (the nearest street's centre queue) hold the rule
that ``gridpatrol_intake_one`` wrote out inline; it now calls them (and, for a point outside every grid, measures
the spheroid distance only to grids that can be within the radius). Bulk intake calls ``gridpatrol_grid_near``
too. The texts are the frozen copies ``0017_placement.sql`` and ``0017_intake_batch.sql`` beside this file.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_HERE = Path(__file__).parent


def upgrade() -> None:
    op.execute((_HERE / "0017_placement.sql").read_text())
    op.execute((_HERE / "0017_intake_batch.sql").read_text())


def downgrade() -> None:
    op.execute((_HERE / "0015_intake_batch.sql").read_text())  # intake with the rule written out again
    op.execute("DROP FUNCTION gridpatrol_street_near(geometry)")
    op.execute("DROP FUNCTION gridpatrol_grid_near(geometry, float8)")
    op.execute("DROP FUNCTION gridpatrol_grid_at(geometry)")
