"""Administrative units versioned like grids, and official units from the city's own files.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04

``unit_versions`` keeps every outline and name a coded street, community or district has had, with who changed it,
when and why, as ``grid_versions`` does for grids: history, diff and "which unit covered this point on date D".
``admin_units.version`` is the current one. Units stored before get their first version now. ``source`` gains
``official``: units from the city's own files (``gridpatrol import-units``).
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE admin_units ADD COLUMN version integer NOT NULL DEFAULT 1")
    op.execute("""
        CREATE TABLE unit_versions (
            id bigserial PRIMARY KEY,
            unit_id integer NOT NULL,
            code varchar(15) NOT NULL,
            level varchar(16) NOT NULL,
            version integer NOT NULL,
            name text NOT NULL,
            parent_id integer,
            geom geometry(MULTIPOLYGON, 4326) NOT NULL,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            change varchar(16) NOT NULL,
            author text NOT NULL,
            reason text NOT NULL,
            CONSTRAINT unit_versions_key UNIQUE (unit_id, version),
            CONSTRAINT unit_versions_interval_check CHECK (valid_to IS NULL OR valid_to >= valid_from)
        )""")
    op.execute("CREATE INDEX unit_versions_geom_idx ON unit_versions USING gist (geom)")
    op.execute("CREATE INDEX unit_versions_code_idx ON unit_versions (code)")
    op.execute("""
        INSERT INTO unit_versions (unit_id, code, level, version, name, parent_id, geom, valid_from, change, author,
                                   reason)
        SELECT id, code, level, 1, name, parent_id, geom, created_at, 'import', 'gridpatrol',
               'stored before units were versioned'
        FROM admin_units WHERE level <> 'city' AND code IS NOT NULL AND geom IS NOT NULL""")


def downgrade() -> None:
    op.execute("DROP TABLE unit_versions")
    op.execute("ALTER TABLE admin_units DROP COLUMN version")
