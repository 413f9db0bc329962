"""Alembic migrations create exactly the schema the models describe, on both back ends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from resim.adapters.db.migrate import current_revision, head_revision, target_metadata, upgrade

pytestmark = pytest.mark.integration


def test_upgrade_reaches_head_and_matches_the_models(empty_db_url: str) -> None:
    db_url = empty_db_url
    assert upgrade(db_url) == head_revision()
    assert upgrade(db_url) == head_revision()  # a second upgrade is a no-op
    assert current_revision(db_url) == head_revision()
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), target_metadata())  # type: ignore[arg-type]
    finally:
        engine.dispose()
    assert diff == []
