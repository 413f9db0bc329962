"""Shared fixtures: database URLs for SQLite and PostgreSQL.

``db_url`` (a migrated database) and ``empty_db_url`` (no tables) are
parametrised over both back ends; ``tests/testdb.py`` says how they are made
cheaply. PostgreSQL is the server named by RESIM_TEST_PG_URL (default the
local trust-auth server). When it cannot be reached its tests are skipped with
a clear reason, except under CI=true, where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import tools
from testdb import PG_ADMIN_URL, PgPool, SqliteTemplate, drop_pg_database, make_pg_database

# New PIN and password hashes at argon2's minimum cost: production's cost
# (0.2 s of CPU a hash here) bought the suite nothing but minutes. Set in the
# environment so the servers and CLIs the tests start get it too; hashes keep
# their cost inside them, so verifying stays as real as before.
# tests/unit/test_password_cost.py keeps the production default honest.
for _name, _value in (
    ("RESIM_ARGON2_TIME_COST", "1"),
    ("RESIM_ARGON2_MEMORY_KIB", "8"),
    ("RESIM_ARGON2_PARALLELISM", "1"),
):
    os.environ.setdefault(_name, _value)


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


@pytest.fixture(scope="session")
def sqlite_template() -> SqliteTemplate:
    return SqliteTemplate()


@pytest.fixture(scope="session")
def pg_pool() -> Iterator[PgPool]:
    pool = PgPool()
    yield pool
    pool.close()


@pytest.fixture(params=_db_backends())
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_skip_reason: str | None,
    sqlite_template: SqliteTemplate,
    pg_pool: PgPool,
) -> Iterator[str]:
    """A database migrated to head and used by this test alone, once for SQLite
    and once for PostgreSQL (a copy of a template migrated once per process)."""
    if request.param == "sqlite":
        yield sqlite_template.copy_to(tmp_path / "resim.db")
        return
    if pg_skip_reason:
        tools.missing(tools.POSTGRESQL, pg_skip_reason)
    url = pg_pool.take()
    try:
        yield url
    finally:
        pg_pool.give_back(url)


@pytest.fixture(params=_db_backends())
def empty_db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_skip_reason: str | None
) -> Iterator[str]:
    """An empty database (no tables), once for SQLite and once for PostgreSQL:
    for tests of the migrations and of ``resim db upgrade`` themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
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
    # `make test` repeats the line as its very last one, after mypy's output.
    if out := os.environ.get("RESIM_TEST_NOT_RUN_FILE"):
        Path(out).write_text(line + "\n" if line else "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The crash suites (SIGKILLed workers and API, timed outages) run one after
    another on one xdist worker (``make test-slow`` uses ``--dist loadgroup``):
    two of them side by side on two cores starved each other's phones and API
    until their outage and settle windows proved nothing (seen in CI)."""
    for item in items:
        if item.get_closest_marker("slow") and "crash" in item.path.name:
            item.add_marker(pytest.mark.xdist_group("crash"))


@pytest.fixture(autouse=True)
def _job_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``jobs.run_due_jobs`` in the tests runs on the batched asynchronous
    runner (``services.outbox.batch_runner``), the one the worker runs, with its
    asynchronous handlers. RESIM_TEST_JOB_RUNNER=sequential keeps the
    synchronous runner (``jobs.run_due_jobs``: one job after another in this
    thread), whose handlers the crash replays also call directly."""
    if os.environ.get("RESIM_TEST_JOB_RUNNER", "batch") != "sequential":
        from resim.services.outbox import batch_runner, jobs

        monkeypatch.setattr(jobs, "run_due_jobs", batch_runner.run_due_jobs)
