"""A grid's figures on its row (migrations 0033, 0034): the cases' changes, appended by their trigger, folded into the
grids' rows (``grid_cases_fold()`` in ``gis/planning/sql/grid_figures.sql``). Readers are exact either way (they add
the changes not yet folded: ``gis.planning.queries.GRID_PENDING``); folding keeps that addition small."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def fold_case_changes(conn: Connection) -> int:
    """Fold the cases' appended changes into the grids' rows, in the caller's transaction: how many (0 as well when
    another fold is under way)."""
    return int(conn.execute(text("SELECT grid_cases_fold()")).scalar_one())
