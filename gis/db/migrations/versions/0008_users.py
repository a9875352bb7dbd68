"""Access control: users with a role and a jurisdiction, the audit log, and the key tokens are signed with.

A user is bound to a unit by its code (a grid, community, street or district code, or a city's code); the city
is stored as well, so a check never has to resolve the code again. ``password_version`` goes up at every reset:
tokens carry it, so a reset signs the user out everywhere. ``service_keys`` holds the token-signing key, made at
the first start, so every worker process (and every restart) signs and checks with the same key.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLES = ("admin", "planner", "dispatcher", "grid_member", "leader", "department")  # models.USER_ROLES
LEVELS = ("all", "city", "district", "street", "community", "grid")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False, server_default=""),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("password_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("unit_level", sa.String(12), nullable=False),
        sa.Column("unit_code", sa.String(15)),
        sa.Column("city_id", sa.Integer, sa.ForeignKey("admin_units.id", ondelete="CASCADE")),
        sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id", ondelete="SET NULL")),
        sa.Column("department_code", sa.String(32), sa.ForeignKey("departments.code")),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN (" + ", ".join(repr(r) for r in ROLES) + ")", name="users_role_check"),
        sa.CheckConstraint("unit_level IN (" + ", ".join(repr(v) for v in LEVELS) + ")", name="users_level_check"),
        sa.CheckConstraint("(unit_level = 'all') = (city_id IS NULL)", name="users_city_check"),
        sa.CheckConstraint("role <> 'department' OR department_code IS NOT NULL", name="users_department_check"),
    )
    op.create_index("users_username_key", "users", [sa.text("lower(username)")], unique=True)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("username", sa.String(64)),
        sa.Column("role", sa.String(16)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8)),
        sa.Column("path", sa.Text),
        sa.Column("status", sa.Integer),
        sa.Column("subject", sa.Text),
        sa.Column("client", sa.Text),
        sa.Column("detail", JSONB),
    )
    op.create_index("audit_log_at_idx", "audit_log", ["at"])
    op.create_index("audit_log_subject_idx", "audit_log", ["subject", "at"])
    op.create_table(
        "service_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_keys")
    op.drop_table("audit_log")
    op.drop_table("users")
