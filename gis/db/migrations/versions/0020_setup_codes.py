"""Users made from a city's staff register set their own password at first sign-in, with a one-time setup code.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

A register of 6,366 grid members cannot be given Argon2 password hashes in seconds (each takes tens of
milliseconds, on purpose). Each new user gets instead a random setup code of 96 bits, kept as its SHA-256 (a code
that random needs no slow hash, as with API tokens), valid for 30 days, and no password; the code is printed once
to a 0600 file. Signing in the first time with the code sets the password and spends the code.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN setup_code_hash varchar(64)")
    op.execute("ALTER TABLE users ADD COLUMN setup_expires timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN setup_expires")
    op.execute("ALTER TABLE users DROP COLUMN setup_code_hash")
