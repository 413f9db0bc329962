"""How the read-write engine talks to PostgreSQL (issue 16): fewer round trips per unit of work.

A pooled connection is pinged only after it sat idle (SQLAlchemy's
``pool_pre_ping`` pinged on every checkout, one round trip per unit of work),
and an INSERT of many rows is one statement. A connection that died while idle
is still replaced before use; one that dies within the moment after its last
use fails its next statement as a lost connection, which the transient-error
handling retries, and the pool then replaces its connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from resim.adapters.db.engine import create_engine
from resim.adapters.db.transient import classify

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL client's round trips; SQLite has no server")
    return db_url


class Statements:
    """The statements an engine sends, as SQLAlchemy hands them to psycopg."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sent: list[tuple[str, bool]] = []
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(
        self, _conn: object, _cur: object, stmt: str, _params: object, _ctx: object, many: bool
    ) -> None:
        self.sent.append((stmt, many))


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def terminate(url: str, pid: int) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def count_pings(engine: sa.Engine) -> list[int]:
    """A one-item list counting the pings ``engine``'s dialect sends from now on."""
    pings = [0]
    original = engine.dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        pings[0] += 1
        return bool(original(dbapi_connection))

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    return pings


@pytest.fixture
def engines(pg_url: str) -> Iterator[Callable[..., sa.Engine]]:
    """Makes engines on the test database (create_engine's keywords); disposes them after."""
    made: list[sa.Engine] = []

    def make(**options: Any) -> sa.Engine:
        made.append(create_engine(pg_url, **options))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


class TestAPooledConnectionIsPingedOnlyAfterSittingIdle:
    def test_a_connection_used_a_moment_ago_goes_out_without_a_ping(
        self, pg_url: str, engines: Callable[..., sa.Engine]
    ) -> None:
        engine = engines(pool_size=1, max_overflow=0, ping_after_idle=60)
        first = backend_pid(engine)
        pings = count_pings(engine)
        for _ in range(3):
            assert backend_pid(engine) == first
        assert pings == [0]

    def test_an_idle_connection_is_pinged(
        self, pg_url: str, engines: Callable[..., sa.Engine]
    ) -> None:
        engine = engines(pool_size=1, max_overflow=0, ping_after_idle=0)
        backend_pid(engine)
        pings = count_pings(engine)
        backend_pid(engine)
        assert pings == [1]

    def test_a_connection_that_died_while_idle_is_replaced_before_use(
        self, pg_url: str, engines: Callable[..., sa.Engine]
    ) -> None:
        engine = engines(pool_size=1, max_overflow=0, ping_after_idle=0)
        dead = backend_pid(engine)
        terminate(pg_url, dead)
        assert backend_pid(engine) != dead  # no error: the ping found it dead

    def test_one_that_died_just_after_use_fails_once_as_transient_then_is_replaced(
        self, pg_url: str, engines: Callable[..., sa.Engine]
    ) -> None:
        engine = engines(pool_size=1, max_overflow=0, ping_after_idle=60)
        dead = backend_pid(engine)
        terminate(pg_url, dead)
        with pytest.raises(sa.exc.OperationalError) as lost:
            backend_pid(engine)
        transient = classify(lost.value)
        assert transient is not None and transient.retry
        assert backend_pid(engine) != dead


class TestManyRowsAreInsertedInOneStatement:
    def test_an_insert_of_many_rows_is_one_statement_and_every_row_lands(
        self, pg_url: str, engines: Callable[..., sa.Engine]
    ) -> None:
        engine = engines(pool_size=1, max_overflow=0)
        sent = Statements(engine)
        table = sa.Table(
            "pg_client_rows", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("v", sa.Text)
        )
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE pg_client_rows (id int, v text)")
            sent.sent.clear()
            conn.execute(sa.insert(table), [{"id": i, "v": f"row {i}"} for i in range(7)])
            # One statement whose VALUES hold the 7 rows (14 parameters), not
            # psycopg's executemany (the same 2-parameter statement 7 times).
            assert len(sent.sent) == 1
            assert sent.sent[0][0].count("%(") == 14
            rows = conn.execute(sa.select(table.c.id, table.c.v).order_by(table.c.id)).all()
        assert rows == [(i, f"row {i}") for i in range(7)]
