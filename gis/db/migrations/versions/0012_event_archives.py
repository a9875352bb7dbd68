"""Events partitioned: the live cases, and an archive partition per large historic file.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A historic file of 200,000 events spent two thirds of its import keeping the events table's indexes: each row
went into five or seven of them one by one, at ~20 µs a row. Building the same indexes over the same rows at once
costs a sixth of that. ``events`` is now partitioned by ``archive``: the live partition ``events_live``
(``archive = 0``) holds every case the loop still works on and every case closed through it; a bulk import whose
file holds many cases already closed (``gis.db.bulk.ARCHIVE_MIN_ROWS``) writes them into a table of their own,
builds its indexes in one pass, and attaches it as partition ``events_archive_<import id>`` (``archive`` = the
id of the import's record of its closed cases). Nothing else changes for readers: queries name ``events``.

An archive holds closed cases only (a CHECK says so): closed is the loop's last state, so nothing ever moves an
event out of an archive, and what refers to single events (their history steps, a duplicate's original) refers to
the live partition: a foreign key to a partitioned table would need the partition key, and only live events get
steps or are merged into. The other foreign keys (category, units, grid, person, department, import) are the
parent's, so every partition has them. The idempotency key is unique over (key, archive): archives hold no keys.
"""

from __future__ import annotations

from alembic import op

from gis.db.migrate import revision_module

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# the indexes of migrations 0004, 0005 and 0010, now the parent's (each partition gets its own)
INDEXES = {
    "events_geom_idx": "USING gist (geom)",
    "events_grid_state_idx": "(grid_id, state)",
    "events_assignee_idx": "(assignee_staff_id, state)",
    "events_open_due_idx": "(due_at) WHERE state IN ('dispatched', 'handled')",
    "events_category_time_idx": "(category_code, reported_at)",
    "events_open_geom_idx": "USING gist (geom) WHERE duplicate_of IS NULL "
                            "AND state IN ('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified')",
}
# (name, column, referenced table (key), on delete)
FOREIGN_KEYS = [
    ("events_category_code_fkey", "category_code", "categories (code)", ""),
    ("events_city_id_fkey", "city_id", "admin_units (id)", "ON DELETE SET NULL"),
    ("events_grid_id_fkey", "grid_id", "grids (id)", "ON DELETE SET NULL"),
    ("events_community_id_fkey", "community_id", "admin_units (id)", "ON DELETE SET NULL"),
    ("events_street_id_fkey", "street_id", "admin_units (id)", "ON DELETE SET NULL"),
    ("events_assignee_staff_id_fkey", "assignee_staff_id", "staff (id)", "ON DELETE SET NULL"),
    ("events_department_code_fkey", "department_code", "departments (code)", ""),
    ("events_import_id_fkey", "import_id", "event_imports (id)", ""),
]
IDEMPOTENCY = "CREATE UNIQUE INDEX events_idempotency_key_idx ON events (idempotency_key, archive) " \
              "WHERE idempotency_key IS NOT NULL"

# migration 0010's functions, pointed at the live partition where only live events can be: the stored report of
# a key, and the open events the duplicate check reads (the planner then leaves the archives out at once)
_REWRITES = {
    "STORED": [("FROM events e WHERE e.idempotency_key = p_key",
                "FROM events e WHERE e.idempotency_key = p_key AND e.archive = 0")],
    "INTAKE_ONE": [("WHERE o.duplicate_of IS NULL\n", "WHERE o.archive = 0 AND o.duplicate_of IS NULL\n"),
                   ("ON CONFLICT (idempotency_key) WHERE", "ON CONFLICT (idempotency_key, archive) WHERE")],
}


def _functions() -> list[str]:
    batches = revision_module("0010_intake_batches.py")
    out = []
    for name, rewrites in _REWRITES.items():
        sql = getattr(batches, name)
        for old, new in rewrites:
            assert sql.count(old) == 1, f"migration 0010's {name} changed: {old!r}"
            sql = sql.replace(old, new)
        out.append(sql)
    return out


def _event_rows() -> str:
    """The event_rows view of migration 0005, over the partitioned table (a view follows the table it was made on,
    which is now the live partition)."""
    return revision_module("0005_intake_function.py").EVENT_ROWS.replace("CREATE VIEW", "CREATE OR REPLACE VIEW")


def upgrade() -> None:
    op.execute("ALTER TABLE events RENAME TO events_live")
    op.execute("ALTER TABLE events_live RENAME CONSTRAINT events_pkey TO events_live_pkey")
    for name in INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name.replace('events_', 'events_live_', 1)}")
    op.execute("DROP INDEX events_idempotency_key_idx")
    op.execute("ALTER TABLE events_live ADD COLUMN archive int NOT NULL DEFAULT 0 "
               "CONSTRAINT events_live_archive_check CHECK (archive = 0)")
    op.execute("CREATE TABLE events (LIKE events_live INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
               "PARTITION BY LIST (archive)")
    op.execute("ALTER TABLE events DROP CONSTRAINT events_live_archive_check")
    op.execute("ALTER TABLE events ATTACH PARTITION events_live FOR VALUES IN (0)")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    for name, definition in INDEXES.items():  # each finds the live partition's index of that shape and adopts it
        op.execute(f"CREATE INDEX {name} ON events {definition}")
    op.execute(IDEMPOTENCY)
    for name, column, target, on_delete in FOREIGN_KEYS:  # likewise: the live partition's key becomes the parent's
        op.execute(f"ALTER TABLE events ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {target} {on_delete}")
    op.execute(_event_rows())
    for sql in _functions():
        op.execute(sql)


def downgrade() -> None:
    # the archives' cases move into the live table, which becomes the events table again
    archives = [r[0] for r in op.get_bind().exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass AND c.relname <> 'events_live'").all()]
    op.execute("ALTER TABLE events DETACH PARTITION events_live")
    op.execute(_event_rows().replace("FROM events e", "FROM events_live e"))
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events_live.id")
    op.execute("ALTER TABLE events_live DROP COLUMN archive")  # with the (key, archive) index and the CHECK
    for archive in archives:
        op.execute(f"ALTER TABLE events DETACH PARTITION {archive}")
        op.execute(f"ALTER TABLE {archive} DROP COLUMN archive")
        op.execute(f"INSERT INTO events_live SELECT * FROM {archive}")
        op.execute(f"DROP TABLE {archive}")
    op.execute("DROP TABLE events")  # with its indexes and keys; the live table keeps its own
    op.execute("ALTER TABLE events_live RENAME TO events")
    op.execute("ALTER TABLE events RENAME CONSTRAINT events_live_pkey TO events_pkey")
    for name in INDEXES:
        op.execute(f"ALTER INDEX {name.replace('events_', 'events_live_', 1)} RENAME TO {name}")
    op.execute("CREATE UNIQUE INDEX events_idempotency_key_idx ON events (idempotency_key) "
               "WHERE idempotency_key IS NOT NULL")
    batches = revision_module("0010_intake_batches.py")
    op.execute(batches.STORED)
    op.execute(batches.INTAKE_ONE)
