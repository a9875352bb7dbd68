"""Events: departments, categories, the duty roster, events and their transitions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

The categories seeded here follow GB/T 30428.2's split of components (部件) and events (事件) plus
social-governance matters; their codes (C.., E.., S..) and deadlines are gridpatrol's defaults, not the standard's
code list. Cities edit them (they are rows, not code).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


DEPARTMENTS = [
    ("urban_management", "城市管理局", "Urban management"),
    ("housing", "住房和城乡建设局", "Housing and construction"),
    ("water", "水务局", "Water"),
    ("transport", "交通运输局", "Transport"),
    ("police", "公安分局", "Police"),
    ("market", "市场监督管理局", "Market supervision"),
    ("environment", "生态环境局", "Environment"),
    ("emergency", "应急管理局", "Emergency management"),
    ("civil_affairs", "民政局", "Civil affairs"),
    ("justice", "司法局", "Justice (mediation)"),
]
# code, name, name_en, kind, route, department, hours (urgent, high, normal)
CATEGORIES = [
    ("C01", "井盖破损缺失", "Manhole cover damaged or missing", "component", "grid", "water", 2, 24, 72),
    ("C02", "路灯故障", "Street lamp out", "component", "grid", "urban_management", 4, 24, 72),
    ("C03", "道路破损", "Road surface damaged", "component", "grid", "transport", 4, 48, 120),
    ("C04", "消防设施损坏", "Fire-fighting equipment damaged", "component", "grid", "emergency", 2, 12, 48),
    ("C05", "供水管道泄漏", "Water main leaking", "component", "department", "water", 1, 6, 24),
    ("E01", "乱堆物堆料", "Illegal dumping", "event", "grid", "urban_management", 4, 24, 48),
    ("E02", "违章停车", "Illegal parking", "event", "grid", "police", 1, 4, 24),
    ("E03", "占道经营", "Street vending on the carriageway", "event", "grid", "urban_management", 2, 24, 48),
    ("E04", "违法建设", "Illegal construction", "event", "grid", "housing", 4, 48, 168),
    ("E05", "安全隐患", "Safety hazard", "event", "grid", "emergency", 1, 12, 48),
    ("E06", "噪声扰民", "Noise nuisance", "event", "grid", "environment", 2, 24, 72),
    ("E07", "食品安全", "Food safety", "event", "grid", "market", 2, 24, 72),
    ("S01", "矛盾纠纷", "Dispute between residents", "social", "grid", "justice", 2, 24, 72),
    ("S02", "治安警情", "Public-order incident", "social", "police", "police", 1, 2, 12),
    ("S03", "困难群众帮扶", "Resident in need of help", "social", "grid", "civil_affairs", 4, 48, 120),
]


def upgrade() -> None:
    departments = op.create_table(
        "departments",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
    )
    categories = op.create_table(
        "categories",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("department_code", sa.String(32), sa.ForeignKey("departments.code"), nullable=False),
        sa.Column("hours_urgent", sa.Integer(), nullable=False),
        sa.Column("hours_high", sa.Integer(), nullable=False),
        sa.Column("hours_normal", sa.Integer(), nullable=False),
        sa.CheckConstraint(_in("kind", ("component", "event", "social")), name="categories_kind_check"),
        sa.CheckConstraint(_in("route", ("grid", "police", "department")), name="categories_route_check"),
        sa.CheckConstraint("hours_urgent > 0 AND hours_high > 0 AND hours_normal > 0", name="categories_hours_check"),
    )
    op.bulk_insert(departments, [dict(zip(("code", "name", "name_en"), d, strict=True)) for d in DEPARTMENTS])
    op.bulk_insert(categories, [dict(zip(("code", "name", "name_en", "kind", "route", "department_code",
                                          "hours_urgent", "hours_high", "hours_normal"), c, strict=True))
                                for c in CATEGORIES])
    op.create_table(
        "duty_roster",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="duty_roster_weekday_check"),
        sa.CheckConstraint("starts < ends", name="duty_roster_hours_check"),
    )
    op.create_index("duty_roster_grid_idx", "duty_roster", ["grid_id", "weekday"])
    # who serves a grid is looked up by grid at every intake (the key leads with staff_id)
    op.create_index("staff_grids_grid_idx", "staff_grids", ["grid_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("category_code", sa.String(16), sa.ForeignKey("categories.code"), nullable=False),
        sa.Column("priority", sa.String(8), server_default="normal", nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("reporter_contact", sa.Text(), nullable=True),
        sa.Column("photos", JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("input_crs", sa.String(8), nullable=False),
        sa.Column("input_lon", sa.Double(), nullable=False),
        sa.Column("input_lat", sa.Double(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="SET NULL"), nullable=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL"), nullable=True),
        sa.Column("grid_code", sa.String(15), nullable=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("street_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="SET NULL"), nullable=True),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("assignee_staff_id", sa.Integer(), sa.ForeignKey("staff.id", ondelete="SET NULL"), nullable=True),
        sa.Column("department_code", sa.String(32), sa.ForeignKey("departments.code"), nullable=True),
        sa.Column("assignment_rule", sa.Text(), nullable=False),
        sa.Column("flagged", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("state", sa.String(12), server_default="reported", nullable=False),
        sa.Column("level", sa.String(12), server_default="grid", nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_on_time", sa.Boolean(), nullable=True),
        sa.Column("missed_deadline", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("reworks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("extensions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("evaluation", sa.Integer(), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), sa.ForeignKey("events.id", ondelete="SET NULL"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(_in("priority", ("urgent", "high", "normal")), name="events_priority_check"),
        sa.CheckConstraint(_in("source", ("grid_member", "resident_app", "hotline", "video", "referral")),
                           name="events_source_check"),
        sa.CheckConstraint(_in("input_crs", ("wgs84", "gcj02", "bd09")), name="events_input_crs_check"),
        sa.CheckConstraint(_in("state", ("reported", "accepted", "rejected", "dispatched", "suspended", "handled",
                                         "verified", "closed", "merged")), name="events_state_check"),
        sa.CheckConstraint(_in("level", ("grid", "community", "street", "department")), name="events_level_check"),
        sa.CheckConstraint(_in("queue", ("grid", "street_centre", "police", "department")),
                           name="events_queue_check"),
    )
    op.create_index("events_geom_idx", "events", ["geom"], postgresql_using="gist")
    op.create_index("events_grid_state_idx", "events", ["grid_id", "state"])
    op.create_index("events_assignee_idx", "events", ["assignee_staff_id", "state"])
    op.create_index("events_open_due_idx", "events", ["due_at"],
                    postgresql_where=sa.text("state IN ('dispatched', 'handled')"))
    op.create_index("events_category_time_idx", "events", ["category_code", "reported_at"])
    op.create_table(
        "event_transitions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(12), nullable=True),
        sa.Column("to_state", sa.String(12), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", JSONB(), nullable=True),
    )
    op.create_index("event_transitions_event_idx", "event_transitions", ["event_id", "at"])
    op.create_index("event_transitions_at_idx", "event_transitions", ["at"])  # members' streams poll by time


def downgrade() -> None:
    op.drop_index("staff_grids_grid_idx", "staff_grids")
    for table in ("event_transitions", "events", "duty_roster", "categories", "departments"):
        op.drop_table(table)
