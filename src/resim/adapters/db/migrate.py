"""``resim db upgrade``: create or migrate a database with Alembic.

The migration scripts ship inside the package (``migrations/``), so an
installed resim can migrate without an alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from resim.adapters.db.engine import create_admin_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def target_metadata() -> list[sa.MetaData]:
    from resim.adapters.corenet.schema import CORENET_METADATA
    from resim.adapters.db.orm import metadata

    return [metadata, CORENET_METADATA]


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` to ``revision``; return the new revision."""
    engine = create_admin_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(_config(conn), revision)
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = create_admin_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def autogenerate(url: str, message: str) -> None:
    """Developer helper: write a new migration from the difference to the models."""
    engine = create_admin_engine(url)
    try:
        with engine.begin() as conn:
            command.revision(_config(conn), message=message, autogenerate=True)
    finally:
        engine.dispose()
