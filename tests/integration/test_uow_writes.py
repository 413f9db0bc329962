"""What the SQL unit of work writes, and when (issue 16).

A unit holds its jobs and audit events and writes each kind in one statement
at commit, after one read of the chain head; a unit that changes a request
around lookups writes the request once. Its own jobs stay visible to it
before the commit. Counted on the engine, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

import tools
from resim.adapters.crypto import SecretBox
from resim.adapters.db import orm
from resim.adapters.db.engine import create_engine
from resim.adapters.db.unit_of_work import sql_uow_factory
from resim.domain.model import (
    Brand,
    Channel,
    Line,
    Reason,
    ReplacementRequest,
    SimChange,
    Subscriber,
)
from resim.services.unit_of_work import UnitOfWorkFactory
from testdb import PgPool, SqliteTemplate

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Db:
    engine: sa.Engine
    uow: UnitOfWorkFactory
    statements: list[str] = field(default_factory=list)

    def count(self, start: str) -> int:
        return sum(1 for s in self.statements if s.lstrip().startswith(start))


@pytest.fixture(
    params=[
        b.strip()
        for b in os.environ.get("RESIM_TEST_DB", "sqlite,postgresql").split(",")
        if b.strip()
    ]
)
def db(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_skip_reason: str | None,
    sqlite_template: SqliteTemplate,
    pg_pool: PgPool,
) -> Iterator[Db]:
    if request.param == "sqlite":
        url = sqlite_template.copy_to(tmp_path / "resim.db")
    else:
        if pg_skip_reason:
            tools.missing(tools.POSTGRESQL, pg_skip_reason)
        url = pg_pool.take()
    engine = create_engine(url)
    make = sql_uow_factory(
        sessionmaker(engine, expire_on_commit=False), SecretBox([SecretBox.generate_key()])
    )
    found = Db(engine, make)

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        found.statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        _seed(make)
        found.statements.clear()
        yield found
    finally:
        engine.dispose()
        if request.param != "sqlite":
            pg_pool.give_back(url)


def _seed(make: UnitOfWorkFactory) -> None:
    with make() as uow:
        uow.brands.add(
            Brand(
                id="nordlys",
                name="Nordlys",
                country="DK",
                currency="DKK",
                language="da",
                timezone="Europe/Copenhagen",
                policy={},
            )
        )
        uow.flush()
        uow.subscribers.add(
            Subscriber(
                id="sub-1",
                brand_id="nordlys",
                name="Ada",
                email="ada@example.test",
                language="da",
                created_at=T0,
            )
        )
        uow.flush()
        uow.lines.add(
            Line(
                id="line-1",
                msisdn="+4520000001",
                subscriber_id="sub-1",
                brand_id="nordlys",
                created_at=T0,
            )
        )
        uow.flush()
        uow.requests.add(
            ReplacementRequest(
                id="req-1",
                line_id="line-1",
                brand_id="nordlys",
                subscriber_id="sub-1",
                msisdn="+4520000001",
                reason=Reason.LOST,
                channel=Channel.API,
                actor="bss",
                created_at=T0,
                old_iccid=None,
            )
        )
        uow.commit()


def _job_rows(db: Db) -> list[dict[str, Any]]:
    j = orm.job
    with db.engine.connect() as conn:
        query = sa.select(j).where(j.c.kind.like("test.%")).order_by(j.c.kind)
        return [dict(row) for row in conn.execute(query).mappings()]


class TestJobsAndAuditRowsAreWrittenTogetherAtCommit:
    def test_three_jobs_are_one_insert_and_two_audit_events_one_more(self, db: Db) -> None:
        with db.uow() as uow:
            ids = [
                uow.enqueue("test.a", at=T0, request_id="req-1"),
                uow.enqueue(
                    "test.b", at=T0, payload={"n": 1}, run_after=T0 + dt.timedelta(hours=1)
                ),
            ]
            uow.audit(at=T0, actor="t", action="test.one", object_type="x", object_id="1")
            ids.append(uow.enqueue("test.c", at=T0))
            uow.audit(at=T0, actor="t", action="test.two", object_type="x", object_id="2")
            assert db.count("INSERT INTO job") == 0  # held until the commit
            uow.commit()
        assert db.count("INSERT INTO job") == 1
        assert db.count("INSERT INTO audit_event") == 1
        assert db.count("SELECT audit_chain_head") == 1
        rows = _job_rows(db)
        assert [r["id"] for r in rows] == ids
        assert [
            (r["kind"], r["request_id"], r["payload"], r["state"], r["attempts"]) for r in rows
        ] == [
            ("test.a", "req-1", {}, "pending", 0),
            ("test.b", None, {"n": 1}, "pending", 0),
            ("test.c", None, {}, "pending", 0),
        ]
        assert [r["run_after"] for r in rows] == [T0, T0 + dt.timedelta(hours=1), T0]
        assert {r["created_at"] for r in rows} == {T0}

    def test_a_unit_left_without_commit_writes_no_job(self, db: Db) -> None:
        with db.uow() as uow:
            uow.enqueue("test.a", at=T0, request_id="req-1")
            uow.flush()
        assert _job_rows(db) == []
        assert db.count("INSERT INTO job") == 0


class TestAUnitSeesTheJobsItHolds:
    def test_jobs_exists_sees_a_held_job(self, db: Db) -> None:
        with db.uow() as uow:
            uow.enqueue("test.a", at=T0, request_id="req-1")
            assert uow.jobs.exists(request_id="req-1", kind="test.a")

    def test_a_statement_on_the_raw_session_sees_a_held_job(self, db: Db) -> None:
        with db.uow() as uow:
            job_id = uow.enqueue("test.a", at=T0, request_id="req-1")
            assert (
                uow.session.scalar(sa.select(orm.job.c.kind).where(orm.job.c.id == job_id))
                == "test.a"
            )

    def test_the_look_ups_see_a_held_job(self, db: Db) -> None:
        with db.uow() as uow:
            uow.enqueue("test.a", at=T0, payload={"line_id": "line-1"})
            assert uow.lookups.job_pending_for_line("test.a", "line-1")


class TestARequestChangedAroundLookupsIsWrittenOnce:
    def test_gets_counters_and_the_last_replacement_do_not_flush_it(self, db: Db) -> None:
        with db.uow() as uow:
            request = uow.requests.get("req-1")
            assert request is not None
            request.installed_at = T0
            assert uow.brands.get("nordlys") is not None
            assert uow.subscribers.get("sub-1") is not None
            assert uow.lines.get("line-1") is not None
            assert uow.sim_changes.last_replacement_at("line-1") is None
            uow.attempts.lock(["request:req-1"], T0)
            uow.attempts.clear(["request:req-1"])
            request.updated_at = T0 + dt.timedelta(minutes=1)
            uow.commit()
        assert db.count("UPDATE replacement_request") == 1

    def test_a_get_still_finds_an_object_added_in_the_unit(self, db: Db) -> None:
        with db.uow() as uow:
            uow.lines.add(
                Line(
                    id="line-2",
                    msisdn="+4520000002",
                    subscriber_id="sub-1",
                    brand_id="nordlys",
                    created_at=T0,
                )
            )
            assert uow.lines.get("line-2") is not None

    def test_the_last_replacement_sees_a_sim_change_added_in_the_unit(self, db: Db) -> None:
        with db.uow() as uow:
            uow.sim_changes.add(
                SimChange(
                    id="chg-1",
                    msisdn="+4520000001",
                    line_id="line-1",
                    changed_at=T0,
                    new_iccid="89450000000000000002",
                    old_iccid="89450000000000000001",
                    request_id=None,
                )
            )
            assert uow.sim_changes.last_replacement_at("line-1") == T0
