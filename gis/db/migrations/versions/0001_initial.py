"""Initial schema: PostGIS, administrative units, grids, buildings, key places, street networks, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str, nullable: bool = False) -> sa.Column:
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=False), nullable=nullable)


def _gist(table: str) -> None:
    op.create_index(f"{table}_geom_idx", table, ["geom"], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "admin_units",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=True),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="SET NULL"), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(15), nullable=True, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("osm_type", sa.String(8), nullable=True),
        sa.Column("osm_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        _geom("MULTIPOLYGON", nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("level IN ('city', 'district', 'street', 'community')", name="admin_units_level_check"),
        sa.CheckConstraint("(level = 'city') = (city_id IS NULL)", name="admin_units_city_check"),
        sa.UniqueConstraint("city_id", "osm_type", "osm_id", name="admin_units_osm_key"),
    )
    op.create_index("admin_units_one_city_per_name", "admin_units", ["name"], unique=True,
                    postgresql_where=sa.text("level = 'city'"))
    op.create_index("admin_units_parent_idx", "admin_units", ["parent_id"])
    _gist("admin_units")

    op.create_table(
        "grids",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(15), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="RESTRICT"),
                  nullable=False),
        _geom("MULTIPOLYGON"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("grids_community_idx", "grids", ["community_id"])
    _gist("grids")

    op.create_table(
        "buildings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("osm_type", sa.String(8), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("building_type", sa.Text(), nullable=False),
        sa.Column("use", sa.String(16), nullable=False),
        sa.Column("levels", sa.Integer(), nullable=False),
        sa.Column("levels_source", sa.String(8), nullable=False),
        sa.Column("area_m2", sa.Double(), nullable=False),
        sa.Column("households_est", sa.Integer(), nullable=False),
        sa.Column("households_override", sa.Integer(), nullable=True),
        sa.Column("households", sa.Integer(),
                  sa.Computed("COALESCE(households_override, households_est)", persisted=True), nullable=False),
        sa.Column("households_source", sa.Text(),
                  sa.Computed("CASE WHEN households_override IS NULL THEN 'estimate' ELSE 'confirmed' END",
                              persisted=True),
                  nullable=False),
        sa.Column("residents", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL"), nullable=True),
        sa.Column("tags", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.CheckConstraint("households_est >= 0", name="buildings_households_est_check"),
        sa.CheckConstraint("households_override >= 0", name="buildings_households_override_check"),
        sa.CheckConstraint("residents >= 0", name="buildings_residents_check"),
        sa.UniqueConstraint("city_id", "osm_type", "osm_id", name="buildings_osm_key"),
    )
    op.create_index("buildings_grid_idx", "buildings", ["grid_id"])
    _gist("buildings")

    op.create_table(
        "key_places",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("osm_type", sa.String(8), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        _geom("POINT"),
        sa.UniqueConstraint("city_id", "osm_type", "osm_id", name="key_places_osm_key"),
    )
    _gist("key_places")

    op.create_table(
        "road_nodes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=False),
        _geom("POINT"),
        sa.CheckConstraint("network IN ('walk', 'drive')", name="road_nodes_network_check"),
        sa.UniqueConstraint("city_id", "network", "osm_id", name="road_nodes_key"),
    )
    _gist("road_nodes")

    op.create_table(
        "road_edges",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("u", sa.BigInteger(), nullable=False),
        sa.Column("v", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Integer(), nullable=False),
        sa.Column("osm_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("highway", sa.Text(), nullable=True),
        sa.Column("oneway", sa.Boolean(), nullable=False),
        sa.Column("length_m", sa.Double(), nullable=False),
        _geom("LINESTRING"),
        sa.CheckConstraint("network IN ('walk', 'drive')", name="road_edges_network_check"),
        sa.CheckConstraint("length_m >= 0", name="road_edges_length_check"),
        sa.UniqueConstraint("city_id", "network", "u", "v", "key", name="road_edges_key"),
    )
    _gist("road_edges")

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="SET NULL"), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "role IN ('grid_chief', 'grid_member', 'police', 'auxiliary_police', 'judge', 'mediator', 'lawyer', "
            "'centre_staff', 'department')",
            name="staff_role_check",
        ),
    )
    op.create_table(
        "staff_grids",
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("duty", sa.String(16), nullable=False),
        sa.CheckConstraint("duty IN ('chief', 'member', 'embedded')", name="staff_grids_duty_check"),
    )
    op.create_index("staff_grids_one_chief", "staff_grids", ["grid_id"], unique=True,
                    postgresql_where=sa.text("duty = 'chief'"))

    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("bounds_source", sa.String(16), nullable=False),
        sa.Column("bounds", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("counts", postgresql.JSONB(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    for table in ("imports", "staff_grids", "staff", "road_edges", "road_nodes", "key_places", "buildings",
                  "grids", "admin_units"):
        op.drop_table(table)
