"""Shared fixtures: database URLs for SQLite and PostgreSQL.

``db_url`` is parametrised over both back ends. PostgreSQL tests get a fresh
database each (created from the server named by RESIM_TEST_PG_URL, default
the local trust-auth server) and drop it afterwards. When the server cannot be
reached they are skipped with a clear reason, except under CI=true, where a
missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import tools

PG_ADMIN_URL = os.environ.get(
    "RESIM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any driver error means "not reachable"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


def _db_backends() -> list[str]:
    chosen = os.environ.get("RESIM_TEST_DB", "sqlite,postgresql")
    return [b.strip() for b in chosen.split(",") if b.strip()]


@pytest.fixture(scope="session")
def pg_skip_reason() -> str | None:
    return _pg_available()


def make_pg_database() -> tuple[str, str]:
    """Create a fresh PostgreSQL database; return (url, name)."""
    name = f"resim_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(PG_ADMIN_URL).set(database=name)
    return url.render_as_string(hide_password=False), name


def drop_pg_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=_db_backends())
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_skip_reason: str | None
) -> Iterator[str]:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'resim.db'}"
        return
    if pg_skip_reason:
        tools.missing(tools.POSTGRESQL, pg_skip_reason)
    url, name = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    """End the run (after pytest's own last line) with one line naming the
    outside programs that were missing, so a newcomer sees what did not run."""
    yield
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(session.config, "workerinput"):
        return
    reasons = []
    for report in reporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reasons.append(longrepr[2] if isinstance(longrepr, tuple) else str(longrepr))
    line = tools.summary(reasons)
    if line:
        reporter.write_line(line, yellow=True, bold=True)
