from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.db.migrate import MIGRATIONS, alembic_config
from gis.db.models import Base


def test_models_and_migrations_agree(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": lambda obj, name, type_, reflected, compare_to: name != "spatial_ref_sys"
            and alembic_helpers.include_object(obj, name, type_, reflected, compare_to),
            "compare_type": True,
        })
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


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
