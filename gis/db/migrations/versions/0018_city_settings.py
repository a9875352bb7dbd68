"""City settings as data: a row per city, so that any city is imported with no code edited.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

Until now the three cities gridpatrol knew were written in ``gis/geo/cities.py``. ``city_settings`` holds what an
import of a city assumes: its handle (``key``), the districts mapped to GB/T 2260 codes by hand, the storeys of an
untyped building, the floor area per household and the time zone. The city's name, English name and code stay on
its ``admin_units`` row. Cities already imported get a row with the defaults their imports used.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE city_settings (
            city_id integer PRIMARY KEY REFERENCES admin_units (id) ON DELETE CASCADE,
            key text NOT NULL,
            district_codes jsonb NOT NULL DEFAULT '{}'::jsonb,
            default_storeys integer NOT NULL DEFAULT 6,
            m2_per_household double precision NOT NULL DEFAULT 90,
            timezone text NOT NULL DEFAULT 'Asia/Shanghai',
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT city_settings_key UNIQUE (key),
            CONSTRAINT city_settings_storeys_check CHECK (default_storeys BETWEEN 1 AND 60),
            CONSTRAINT city_settings_m2_check CHECK (m2_per_household BETWEEN 20 AND 500),
            CONSTRAINT city_settings_districts_check CHECK (jsonb_typeof(district_codes) = 'object')
        )""")
    op.execute("""
        INSERT INTO city_settings (city_id, key, default_storeys)
        SELECT id, lower(regexp_replace(coalesce(name_en, name), '[^[:alnum:]_-]+', '-', 'g')),
               CASE WHEN code IS NULL THEN 2 ELSE 6 END
        FROM admin_units WHERE level = 'city'""")


def downgrade() -> None:
    op.execute("DROP TABLE city_settings")
