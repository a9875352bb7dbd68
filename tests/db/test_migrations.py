from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import ForeignKeyConstraint, text
from sqlalchemy.engine import Engine

from gis.db.migrate import MIGRATIONS, alembic_config
from gis.db.models import Base


def _fk_key(fk: ForeignKeyConstraint) -> tuple[str, tuple[str, ...], str]:
    return (fk.table.name, tuple(c.name for c in fk.columns), fk.referred_table.name)


def test_models_and_migrations_agree(fresh_engine: Engine) -> None:
    """The models describe the tables the service uses; ``events`` is partitioned (migration 0012) and its
    partitions are how it is stored, not tables of their own. A foreign key to ``events`` is in the database a key
    to its live partition (a partitioned table's key cannot be referenced without its partition key)."""
    with fresh_engine.connect() as conn:
        partitions = set(conn.execute(text("SELECT relname FROM pg_class WHERE relispartition AND relkind = 'r'"))
                         .scalars())

        def include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
            if (type_ == "table" and name in partitions) or (type_ == "index" and obj.table.name in partitions):
                return False
            return name != "spatial_ref_sys" and alembic_helpers.include_object(obj, name, type_, reflected,
                                                                                compare_to)

        context = MigrationContext.configure(conn, opts={"include_object": include, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        live_keys = set(conn.execute(text(
            "SELECT conrelid::regclass::text, a.attname FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.confrelid = 'events_live'::regclass")).all())
    assert "events_live" in partitions
    assert live_keys == {("event_transitions", "event_id"), ("events_live", "duplicate_of")}
    to_live = {_fk_key(d[1]) for d in diff if d[0] == "remove_fk"}
    to_events = {_fk_key(d[1]) for d in diff if d[0] == "add_fk"}
    assert to_live == {("event_transitions", ("event_id",), "events_live")}
    assert to_events == {("event_transitions", ("event_id",), "events"), ("events", ("duplicate_of",), "events")}
    assert [d for d in diff if d[0] not in ("remove_fk", "add_fk")] == []


def test_every_geometry_column_has_a_gist_index(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT f_table_name, f_geometry_column FROM geometry_columns WHERE f_table_schema = 'public' "
            "AND f_table_name <> 'imports'"
        )).all()
        indexed = {
            (row.tablename, row.column)
            for row in conn.execute(text("""
                SELECT t.relname AS tablename, a.attname AS column
                FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
                JOIN pg_class t ON t.oid = i.indrelid
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)
                WHERE am.amname = 'gist'
            """))
        }
    assert len(columns) >= 6
    assert set(columns) <= indexed


def test_postgis_is_installed_and_migrations_reach_head(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
        head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
        assert head is not None and len(list(MIGRATIONS.glob("versions/0*.py"))) == int(head)
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
