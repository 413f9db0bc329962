"""``resim db upgrade``: create or migrate a database with Alembic.

The migration scripts ship inside the package (``migrations/``), so an
installed resim can migrate without an alembic.ini.

Some migrations encrypt values that earlier versions stored in clear (0009:
MatchingIDs and the personal data of queued messages). They read the keys
from ``secrets``; ``resim db upgrade`` passes the keys of RESIM_SECRET_KEYS.
Without keys such a migration runs only on a database with nothing to
encrypt, and otherwise stops with an error that says so.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from resim.adapters.crypto import SecretBox
from resim.adapters.db.engine import create_admin_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def target_metadata() -> list[sa.MetaData]:
    from resim.adapters.corenet.schema import CORENET_METADATA
    from resim.adapters.db.orm import metadata

    return [metadata, CORENET_METADATA]


def _config(connection: sa.Connection | None = None, secrets: SecretBox | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.attributes["secrets"] = secrets
    return cfg


def upgrade(url: str, revision: str = "head", *, secrets: SecretBox | None = None) -> str | None:
    """Migrate the database at ``url`` to ``revision``; return the new revision.

    ``secrets``: the keys of encrypted values, for migrations that encrypt
    what was stored in clear (see the module docstring).
    """
    # SQLite rebuilds a table to change a column: with its foreign keys enforced,
    # dropping the old copy of a table other rows refer to fails. They are off
    # during the migration and checked, all of them, before it commits.
    engine = create_admin_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as conn:
            command.upgrade(_config(conn, secrets), revision)
            if conn.dialect.name == "sqlite":
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    tables = sorted({str(row[0]) for row in broken})
                    raise RuntimeError(
                        f"the migration left rows whose foreign keys point nowhere in {tables}"
                    )
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
