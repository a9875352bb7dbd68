"""Run the Alembic migrations programmatically (``gridpatrol migrate``, the app's start-up, the tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` up to ``revision``."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision_module(filename: str) -> ModuleType:
    """An earlier migration's module, by its file name (``0005_intake_function.py`` is not an importable module
    name): what a later migration rewrites (an SQL function, a view) and what its downgrade puts back."""
    path = MIGRATIONS / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"gridpatrol_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
