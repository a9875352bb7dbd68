"""How a visit's track was matched to the streets: by the hidden-Markov map matcher or by the buffer test.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05

``matched_by``: ``hmm`` (``gis.patrol.matching.match_track``) or ``buffer`` (the test every visit before this
migration had, kept as the fallback); ``gps_sigma_m``: the GPS error the matcher assumed (the phone's, or estimated
from the track); ``matched_path``: the path the matcher found along the streets, WGS-84, so that a member sees what
was credited. Visits without a track have none of them but ``matched_by``.
"""

from __future__ import annotations

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE patrol_visits ADD COLUMN matched_by varchar(8) NOT NULL DEFAULT 'buffer' "
               "CONSTRAINT patrol_visits_matched_by_check CHECK (matched_by IN ('hmm', 'buffer'))")
    op.execute("ALTER TABLE patrol_visits ADD COLUMN gps_sigma_m double precision")
    op.execute("ALTER TABLE patrol_visits ADD COLUMN matched_path geometry(MultiLineString, 4326)")
    op.execute("CREATE INDEX patrol_visits_matched_path_idx ON patrol_visits USING gist (matched_path)")


def downgrade() -> None:
    op.execute("DROP INDEX patrol_visits_matched_path_idx")
    op.execute("ALTER TABLE patrol_visits DROP COLUMN matched_path")
    op.execute("ALTER TABLE patrol_visits DROP COLUMN gps_sigma_m")
    op.execute("ALTER TABLE patrol_visits DROP COLUMN matched_by")
