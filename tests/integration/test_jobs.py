"""The durable job runner on SQLite and PostgreSQL: attempts, retries, failures, claims."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.adapters.db import orm
from resim.adapters.es2.errors import Es2StatusError
from resim.domain.workflow import State
from resim.errors import ExternalError
from resim.services.context import ServiceContext
from resim.services.outbox import jobs
from resim.services.ports import DownloadOrderResult
from resim.services.replacement import queries, requests

pytestmark = pytest.mark.integration


def job_rows(system: System, kind: str) -> list[sa.Row[tuple[object, ...]]]:
    with system.engine.connect() as conn:
        return list(conn.execute(sa.select(orm.job).where(orm.job.c.kind == kind)).all())


def verified_request(system: System, n: int, reason: str = "damaged") -> str:
    msisdn, email, _, _ = add_line(system, n)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason=reason)
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    return opened.id


class TestAttemptRows:
    def test_each_es2_call_is_recorded_and_committed_before_it_is_made(
        self, system: System
    ) -> None:
        seen: list[tuple[str, str]] = []
        real = system.ctx.smdp

        class Watching:
            """Looks in the database, from another connection, while the call is made."""

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            def download_order(self, *, call_id: str, **kw: object) -> DownloadOrderResult:
                with system.engine.connect() as conn:
                    row = conn.execute(
                        sa.select(orm.external_call).where(orm.external_call.c.id == call_id)
                    ).one()
                seen.append((row.target, row.state))
                return real.download_order(call_id=call_id, **kw)  # type: ignore[arg-type]

        system.ctx.smdp = Watching()  # type: ignore[assignment]
        rid = verified_request(system, 100)
        system.run_jobs()
        assert seen == [("es2.downloadOrder", "started")]
        with system.engine.connect() as conn:
            calls = conn.execute(
                sa.select(orm.external_call.c.target, orm.external_call.c.state).where(
                    orm.external_call.c.request_id == rid
                )
            ).all()
        targets = {t for t, _ in calls}
        assert {"es2.downloadOrder", "es2.confirmOrder", "mail.send"} <= targets
        assert all(state == "succeeded" for _, state in calls)


class TestRetriesAndFailures:
    def test_retryable_mail_failure_backs_off_then_delivers(self, system: System) -> None:
        system.mail.fail_next(
            ExternalError("SMTP down", retryable=True, code="SMTP_UNAVAILABLE"), times=2
        )
        msisdn, email, _, _ = add_line(system, 110)
        requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        pending = [r for r in job_rows(system, "mail.send") if r.state == "pending"]
        assert pending and all(r.run_after > system.clock.now() for r in pending)
        assert all("SMTP_UNAVAILABLE" in (r.last_error or "") for r in pending)
        system.clock.advance(dt.timedelta(minutes=5))
        system.run_jobs()
        assert {r.state for r in job_rows(system, "mail.send")} == {"done"}
        assert len(system.mail.to(email)) == 2

    def test_permanent_es2_refusal_fails_the_request_visibly(self, system: System) -> None:
        system.ctx.smdp.fail_next(
            Es2StatusError(  # type: ignore[attr-defined]
                function="downloadOrder", status="Failed", subject_code="8.2.5", reason_code="3.7"
            )
        )
        rid = verified_request(system, 120)
        system.run_jobs()
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == State.FAILED.value
        assert view["failure"]["code"].startswith("ES2_")
        assert [r.state for r in job_rows(system, "esim.provision")] == ["dead"]

    def test_retryable_es2_errors_are_retried_until_attempts_run_out(self, system: System) -> None:
        system.ctx.job_max_attempts = 3
        busy = Es2StatusError(
            function="downloadOrder", status="Failed", subject_code="1.2", reason_code="4.4"
        )
        system.ctx.smdp.fail_next(busy, busy, busy)  # type: ignore[attr-defined]
        rid = verified_request(system, 121)
        for _ in range(4):
            system.run_jobs()
            system.clock.advance(dt.timedelta(minutes=10))
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == "failed"
        (row,) = job_rows(system, "esim.provision")
        assert (row.state, row.attempts) == ("dead", 3)

    def test_one_retryable_error_then_success_completes(self, system: System) -> None:
        system.ctx.smdp.fail_next(
            ExternalError(
                "timeout",
                retryable=True,  # type: ignore[attr-defined]
                code="SMDP_UNAVAILABLE",
            )
        )
        rid = verified_request(system, 122)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "provisioning"
        system.clock.advance(dt.timedelta(minutes=1))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "ready"


class TestBackoff:
    def test_full_jitter_stays_under_the_exponential_ceiling_and_cap(self, system: System) -> None:
        ctx: ServiceContext = system.ctx
        rng = random.Random(3)
        for attempt in range(1, 15):
            ceiling = min(
                ctx.job_backoff_cap_seconds, ctx.job_backoff_base_seconds * 2 ** (attempt - 1)
            )
            delays = [jobs.backoff_seconds(ctx, attempt, rng) for _ in range(50)]
            assert all(0.01 <= d <= ceiling for d in delays)
            assert len(set(delays)) > 40  # jittered, not fixed


class TestClaims:
    def test_concurrent_claimers_never_take_the_same_job(self, system: System) -> None:
        now = system.clock.now()
        with system.ctx.uow() as uow:
            for _ in range(300):
                uow.enqueue("noop.test", at=now)
            uow.commit()
        taken: list[str] = []
        lock = threading.Lock()

        def claimer(name: str) -> None:
            while True:
                got = jobs.claim(system.ctx, worker_id=name, limit=7, lease_seconds=60)
                if not got:
                    return
                with lock:
                    taken.extend(j.id for j in got)

        threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(taken) == 300
        assert len(set(taken)) == 300

    def test_a_job_whose_lease_ran_out_is_claimed_again(self, system: System) -> None:
        with system.ctx.uow() as uow:
            uow.enqueue("noop.test", at=system.clock.now())
            uow.commit()
        first = jobs.claim(system.ctx, worker_id="dead-worker", limit=5, lease_seconds=30)
        assert len(first) == 1
        assert jobs.claim(system.ctx, worker_id="other", limit=5, lease_seconds=30) == []
        system.clock.advance(dt.timedelta(seconds=31))
        again = jobs.claim(system.ctx, worker_id="other", limit=5, lease_seconds=30)
        assert [j.id for j in again] == [first[0].id]
        assert again[0].attempts == 2

    def test_a_worker_never_takes_back_a_job_it_is_still_running(self, system: System) -> None:
        with system.ctx.uow() as uow:
            uow.enqueue("noop.test", at=system.clock.now())
            uow.commit()
        (mine,) = jobs.claim(system.ctx, worker_id="w1", limit=5, lease_seconds=30)
        system.clock.advance(dt.timedelta(seconds=31))  # the lease lapsed while it runs
        assert (
            jobs.claim(system.ctx, worker_id="w1", limit=5, lease_seconds=30, running=[mine.id])
            == []
        )
        # Another worker may take it: only the holder knows it is still running.
        (theirs,) = jobs.claim(system.ctx, worker_id="w2", limit=5, lease_seconds=30)
        assert theirs.id == mine.id

    def test_unknown_job_kind_is_dead_not_looping(self, system: System) -> None:
        with system.ctx.uow() as uow:
            uow.enqueue("nobody.handles.this", at=system.clock.now())
            uow.commit()
        system.run_jobs()
        (row,) = job_rows(system, "nobody.handles.this")
        assert row.state == "dead" and "no handler" in row.last_error


class TestWorkerShutdown:
    def test_a_stopping_worker_keeps_its_running_jobs_leased_until_they_finish(
        self, system: System
    ) -> None:
        from resim.adapters.mail.fake import FakeMailer
        from resim.entrypoints.worker import Worker
        from resim.services.ports import OutgoingMail

        entered, release = threading.Event(), threading.Event()

        class SlowMailer(FakeMailer):
            def send(self, mail: OutgoingMail) -> None:
                entered.set()
                release.wait(10)
                super().send(mail)

        mailer = SlowMailer()
        system.ctx.mailer = mailer
        msisdn, _, _, _ = add_line(system, 300)
        requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        worker = Worker(system.ctx, concurrency=4, lease_seconds=0.3, poll_seconds=0.02)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            assert entered.wait(10)
            worker.stop()
            # Let a loop pass that began before stop() finish before the clock jumps:
            # a claim racing the jump could take back this worker's own lapsed lease.
            time.sleep(0.3)
            system.clock.advance(dt.timedelta(seconds=30))  # every lease would have run out
            time.sleep(0.5)  # several heartbeats
            # The running mail jobs stay leased to this worker; other kinds of job
            # (texts to the old SIM, say) may be due and claimable, and are not the point.
            running = {r.id for r in job_rows(system, "mail.send") if r.state == "running"}
            claimed = jobs.claim(system.ctx, worker_id="other", limit=10, lease_seconds=5)
            assert running and not running & {c.id for c in claimed}
        finally:
            release.set()
            thread.join(10)
        assert not thread.is_alive()
        assert {r.state for r in job_rows(system, "mail.send")} == {"done"}
        assert len(mailer.sent) == 2


class TestAClaimThatFindsTheDatabaseBusy:
    """A busy database is a passing condition: the worker says so in one line and
    claims again; anything else is logged with its traceback."""

    def _run_with_failing_claims(self, system: System, error: Exception) -> list[dict[str, object]]:
        from structlog.testing import capture_logs

        from resim.entrypoints.worker import Worker

        worker = Worker(system.ctx, concurrency=2, lease_seconds=5, poll_seconds=0.02)
        tries = threading.Event()

        def failing(_free: int, _running: list[str]) -> object:
            def unit(_uow: object) -> object:
                tries.set()
                raise error

            return unit

        worker._claim_unit = failing  # type: ignore[method-assign,assignment]
        thread = threading.Thread(target=worker.run)
        with capture_logs() as logs:
            thread.start()
            assert tries.wait(10)
            time.sleep(0.1)  # a few more tries
            worker.stop()
            thread.join(10)
        assert not thread.is_alive()
        return logs

    def test_a_locked_database_is_one_warning_line_per_try(self, system: System) -> None:
        import sqlite3

        locked = sa.exc.OperationalError(
            "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
        )
        logs = self._run_with_failing_claims(system, locked)
        events = [entry["event"] for entry in logs]
        assert "worker.claim_deferred" in events
        assert "worker.claim_failed" not in events
        deferred = [e for e in logs if e["event"] == "worker.claim_deferred"]
        assert all(e["reason"] == "busy" and "exc_info" not in e for e in deferred)

    def test_any_other_error_is_logged_with_its_traceback(self, system: System) -> None:
        logs = self._run_with_failing_claims(system, RuntimeError("a bug"))
        failed = [e for e in logs if e["event"] == "worker.claim_failed"]
        assert failed and all(e.get("exc_info") for e in failed)
