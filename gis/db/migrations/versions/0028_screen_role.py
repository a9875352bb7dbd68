"""A screen-only role: the command centre's wall display reads the big screen and nothing else.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05

The role joins ``users_role_check`` (the vocabulary's ``USER_ROLES``); the API lets such a user reach the screen,
its data and the basemap under it only (``api.tokens.current_user``).
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

BEFORE = ("admin", "planner", "dispatcher", "grid_member", "leader", "department")
AFTER = (*BEFORE, "screen")


def _check(roles: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE users DROP CONSTRAINT users_role_check")
    op.execute("ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ("
               + ", ".join(f"'{r}'" for r in roles) + "))")


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role = 'screen'")
    _check(BEFORE)
