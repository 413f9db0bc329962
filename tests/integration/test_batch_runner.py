"""The batched, asynchronous outbox (services/outbox/batch_runner.py) on SQLite and PostgreSQL.

Its promises: a batch of jobs costs a few shared transactions, not a few per
job; every attempt row is committed before its call; one unit's failure never
loses another job's work; a whole replacement runs through it as through the
synchronous runner (the rest of the suite runs its jobs on it too, unless
RESIM_TEST_JOB_RUNNER=sequential).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.adapters.db import orm
from resim.adapters.mail.fake import FakeMailer
from resim.domain.workflow import State
from resim.errors import ExternalError
from resim.services.outbox import batch_runner
from resim.services.outbox.batch_runner import TxBatcher
from resim.services.outbox.external import attempt_row
from resim.services.outbox.group_commit import OutboxWrites
from resim.services.ports import JobRecord, OutgoingMail
from resim.services.replacement import requests
from resim.services.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration


def _count(system: System, table: sa.Table, **where: object) -> int:
    with system.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return int(conn.execute(query).scalar_one())


def _state(system: System, request_id: str) -> State:
    with system.engine.connect() as conn:
        r = orm.replacement_request
        return State(conn.execute(sa.select(r.c.state).where(r.c.id == request_id)).scalar_one())


class TestAReplacementRunsOnTheBatchedRunner:
    def test_from_request_to_cut_over(self, system: System) -> None:
        msisdn, email, _old_iccid, _ = add_line(system, 1)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        batch_runner.run_due_jobs(system.ctx)
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        batch_runner.run_due_jobs(system.ctx)
        assert _state(system, opened.id) == State.READY
        system.install(opened.id)
        batch_runner.run_due_jobs(system.ctx)
        assert _state(system, opened.id) == State.COMPLETED
        kinds = [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]
        assert "replacement_completed" in kinds
        # Every attempt row has its outcome, and the jobs are done.
        assert _count(system, orm.external_call, state="started") == 0
        with system.engine.connect() as conn:
            states = set(conn.execute(sa.select(orm.job.c.state)).scalars())
        assert states <= {"done", "pending"}


class TestAttemptRows:
    def test_each_mail_has_its_attempt_row_committed_before_it_is_sent(
        self, system: System
    ) -> None:
        seen: list[int] = []

        class Checking(FakeMailer):
            def send(self, mail: OutgoingMail) -> None:
                # Another connection sees the row: it is committed, not just flushed.
                seen.append(_count(system, orm.external_call, target="mail.send"))
                super().send(mail)

        system.ctx.mailer = Checking()
        for n in range(5):
            msisdn, _, _, _ = add_line(system, 10 + n)
            requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        batch_runner.run_due_jobs(system.ctx)
        assert len(seen) == 10 and min(seen) >= 1  # two mails per request
        with system.engine.connect() as conn:
            rows = conn.execute(
                sa.select(orm.external_call.c.state).where(
                    orm.external_call.c.target == "mail.send"
                )
            ).scalars()
            assert set(rows) == {"succeeded"}


class TestSharedTransactions:
    def test_units_of_many_jobs_share_few_transactions(self, system: System) -> None:
        async def go() -> tuple[list[int], int]:
            with ThreadPoolExecutor(1) as db_thread:
                batcher = TxBatcher(system.ctx, db_thread)
                values = await asyncio.gather(
                    *(batcher.run(lambda _uow, i=i: i, key=str(i)) for i in range(20))
                )
                return list(values), batcher.transactions

        values, transactions = asyncio.run(go())
        assert values == list(range(20))
        assert transactions <= 2

    def test_a_failing_unit_loses_only_its_own_writes(self, system: System) -> None:
        msisdns = [add_line(system, 30 + n)[0] for n in range(3)]

        def rename(msisdn: str, fail: bool) -> Callable[[UnitOfWork], str]:
            def unit(uow: UnitOfWork) -> str:
                uow.audit(
                    at=system.clock.now(),
                    actor="test",
                    action="test.unit",
                    object_type="line",
                    object_id=msisdn,
                )
                if fail:
                    raise RuntimeError("this unit fails")
                return msisdn

            return unit

        async def go() -> list[object]:
            with ThreadPoolExecutor(1) as db_thread:
                batcher = TxBatcher(system.ctx, db_thread)
                return await asyncio.gather(
                    *(batcher.run(rename(m, fail=(i == 1)), key=m) for i, m in enumerate(msisdns)),
                    return_exceptions=True,
                )

        results = asyncio.run(go())
        assert results[0] == msisdns[0] and results[2] == msisdns[2]
        assert isinstance(results[1], RuntimeError)
        with system.engine.connect() as conn:
            audited = set(
                conn.execute(
                    sa.select(orm.audit_event.c.object_id).where(
                        orm.audit_event.c.action == "test.unit"
                    )
                ).scalars()
            )
        assert audited == {msisdns[0], msisdns[2]}


class TestOutboxWritesOfATransaction:
    def test_they_take_one_statement_each_for_all_its_jobs(self, system: System) -> None:
        for n in range(5):
            msisdn, _, _, _ = add_line(system, 80 + n)
            requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        seen: list[str] = []

        def statement(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
            seen.append(" ".join(sql.split()[:3]))

        sa.event.listen(system.engine, "before_cursor_execute", statement)
        try:
            batch_runner.run_due_jobs(system.ctx)
        finally:
            sa.event.remove(system.engine, "before_cursor_execute", statement)
        assert len(system.mail.sent) == 10  # two mails per request (and a text)
        calls = _count(system, orm.external_call)
        assert calls == 15 and _count(system, orm.external_call, state="succeeded") == calls
        # The fifteen jobs ran together: their attempt rows, outcomes and ends in a
        # few statements, not one each.
        assert seen.count("INSERT INTO external_call") <= 4
        assert seen.count("UPDATE external_call SET") <= 4
        assert seen.count("UPDATE job SET") <= 6  # claims and ends

    def test_a_failing_unit_writes_none_of_its_rows_and_the_others_all_of_theirs(
        self, system: System
    ) -> None:
        msisdn, _, _, _ = add_line(system, 90)
        requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        with system.engine.connect() as conn:
            job_ids = list(conn.execute(sa.select(orm.job.c.id).limit(3)).scalars())
        assert len(job_ids) == 3
        now = system.clock.now()

        def unit(job_id: str, writes: OutboxWrites, fail: bool) -> Callable[[UnitOfWork], None]:
            def run(_uow: UnitOfWork) -> None:
                writes.attempts.clear()  # a unit run again hands fresh rows
                job = JobRecord(id=job_id, kind="test", request_id=None, payload={}, attempts=1)
                writes.attempts.append(attempt_row(job, "test.call", at=now))
                if fail:
                    raise RuntimeError("this unit fails")

            return run

        async def go() -> list[object]:
            with ThreadPoolExecutor(1) as db_thread:
                batcher = TxBatcher(system.ctx, db_thread)
                runs = []
                for i, job_id in enumerate(job_ids):
                    writes = OutboxWrites()
                    runs.append(
                        batcher.run(unit(job_id, writes, i == 1), key=job_id, writes=writes)
                    )
                return await asyncio.gather(*runs, return_exceptions=True)

        results = asyncio.run(go())
        assert isinstance(results[1], RuntimeError)
        with system.engine.connect() as conn:
            c = orm.external_call.c
            written = list(conn.execute(sa.select(c.job_id).where(c.target == "test.call")))
        assert sorted(row.job_id for row in written) == sorted([job_ids[0], job_ids[2]])


class TestTheWorkerLoop:
    def test_the_worker_runs_mail_jobs_and_stops(self, system: System) -> None:
        from resim.entrypoints.worker import Worker

        for n in range(6):
            msisdn, _, _, _ = add_line(system, 50 + n)
            requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        worker = Worker(system.ctx, concurrency=4, poll_seconds=0.02)
        thread = threading.Thread(target=worker.run, kwargs={"until_idle": True})
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
        assert worker.counts["done"] >= 6
        assert len(system.mail.sent) == 2 * 6  # "requested" and the one-time code
        assert worker.runner is not None
        # Claims, attempt rows and outcomes of 6+ jobs in far fewer transactions.
        assert worker.runner.batcher.transactions < 3 * worker.counts["done"]


class TestTheCutOverInOneCoreTransaction:
    def test_a_refused_move_undoes_the_group_and_every_attempt_row_says_so(
        self, system: System, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        msisdn, email, _old_iccid, _ = add_line(system, 70)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        batch_runner.run_due_jobs(system.ctx)
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        batch_runner.run_due_jobs(system.ctx)
        system.install(opened.id)

        def refuse(**_kw: object) -> None:
            raise ExternalError("refused for the test", retryable=False, code="TEST_REFUSED")

        monkeypatch.setattr(system.core, "move_msisdn", refuse)
        events = system.core.events()
        batch_runner.run_due_jobs(system.ctx)
        assert _state(system, opened.id) == State.FAILED
        assert system.core.events() == events  # the provision and holds rolled back
        c = orm.external_call.c
        with system.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    sa.select(c.target, c.error_code).where(
                        c.request_id == opened.id, c.target.like("core.%")
                    )
                ).all()
            )
        assert rows == {
            "core.provision": "TEST_REFUSED",
            "core.post_swap_holds": "TEST_REFUSED",
            "core.move_msisdn": "TEST_REFUSED",
            "core.retire": "NOT_CALLED",
        }
