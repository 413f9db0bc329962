"""Units of work for the store contract tests: in memory, SQLite and PostgreSQL.

``memory`` is offered only to stores that have an in-memory implementation
(:mod:`resim.adapters.memory.attached`); the read models run on the databases.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

import tools
from resim.adapters.crypto import SecretBox
from resim.adapters.db.engine import create_engine
from resim.adapters.db.unit_of_work import sql_uow_factory
from resim.adapters.memory import MemoryStore, memory_uow_factory
from resim.services.unit_of_work import UnitOfWork
from testdb import PgPool, SqliteTemplate

MakeUow = Callable[[], UnitOfWork]


def databases() -> list[str]:
    chosen = os.environ.get("RESIM_TEST_DB", "sqlite,postgresql")
    return [b.strip() for b in chosen.split(",") if b.strip()]


def open_backend(
    backend: str,
    tmp_path: Path,
    pg_skip_reason: str | None,
    sqlite_template: SqliteTemplate,
    pg_pool: PgPool,
) -> Iterator[MakeUow]:
    if backend == "memory":
        yield memory_uow_factory(MemoryStore())
        return
    if backend == "sqlite":
        url = sqlite_template.copy_to(tmp_path / "resim.db")
    else:
        if pg_skip_reason:
            tools.missing(tools.POSTGRESQL, pg_skip_reason)
        url = pg_pool.take()
    engine = create_engine(url)
    try:
        yield sql_uow_factory(
            sessionmaker(engine, expire_on_commit=False), SecretBox([SecretBox.generate_key()])
        )
    finally:
        engine.dispose()
        if backend != "sqlite":
            pg_pool.give_back(url)


def fixture_over(backends: list[str]) -> Callable[..., Iterator[MakeUow]]:
    @pytest.fixture(params=backends)
    def make_uow(
        request: pytest.FixtureRequest,
        tmp_path: Path,
        pg_skip_reason: str | None,
        sqlite_template: SqliteTemplate,
        pg_pool: PgPool,
    ) -> Iterator[MakeUow]:
        yield from open_backend(request.param, tmp_path, pg_skip_reason, sqlite_template, pg_pool)

    return make_uow
