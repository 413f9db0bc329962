"""The outbox contract (``ports.JobQueue``, ``uow.outbox``): claims, leases,
finishes, attempt rows and pruning, in memory (resim.adapters.memory.outbox),
on SQLite and on PostgreSQL (resim.adapters.db.outbox). The batched runner
relies on exactly these rules; the same cases keep the two honest."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from stores_rig import MakeUow, databases, fixture_over
from test_readmodel_stores import seed

from resim.domain.workflow import State
from resim.services.ports import AttemptOutcome, JobFinish, JobRecord

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
make_uow = fixture_over(["memory", *databases()])


def _jobs(make_uow: MakeUow, *due_in_s: int, request_id: str | None = None) -> list[str]:
    with make_uow() as uow:
        ids = [
            uow.enqueue(
                "test.job",
                at=T0,
                request_id=request_id,
                payload={"n": n},
                run_after=T0 + dt.timedelta(seconds=s),
            )
            for n, s in enumerate(due_in_s)
        ]
        uow.commit()
    return ids


def _claim(
    make_uow: MakeUow, worker: str, *, at: dt.datetime = T0, limit: int = 10, **kw: Any
) -> list[JobRecord]:
    with make_uow() as uow:
        claimed = uow.outbox.claim(worker_id=worker, limit=limit, now=at, lease_seconds=60, **kw)
        uow.commit()
    return claimed


class TestClaims:
    def test_due_jobs_in_due_order_and_never_twice_while_leased(self, make_uow: MakeUow) -> None:
        late, early, future = _jobs(make_uow, 0, -30, 3600)
        (first,) = _claim(make_uow, "w1", limit=1)  # the one due first
        assert (first.id, first.attempts, first.kind) == (early, 1, "test.job")
        assert first.payload == {"n": 1}
        assert [(j.id, j.attempts) for j in _claim(make_uow, "w1")] == [(late, 1)]
        assert _claim(make_uow, "w2") == []  # leased to w1
        # the lease runs out: another worker takes them, one more attempt each
        later = T0 + dt.timedelta(seconds=61)
        again = _claim(make_uow, "w2", at=later, limit=1)
        assert [(j.id, j.attempts) for j in again] == [(early, 2)]
        assert [j.id for j in _claim(make_uow, "w2", at=later, running=[late])] == []
        assert future not in [j.id for j in _claim(make_uow, "w3", at=later)]

    def test_a_claim_that_does_not_commit_leaves_the_jobs_due(self, make_uow: MakeUow) -> None:
        (job,) = _jobs(make_uow, 0)
        with make_uow() as uow:
            assert [
                j.id for j in uow.outbox.claim(worker_id="w1", limit=5, now=T0, lease_seconds=60)
            ] == [job]
        assert [(j.id, j.attempts) for j in _claim(make_uow, "w2")] == [(job, 1)]

    def test_only_the_holder_extends_a_lease(self, make_uow: MakeUow) -> None:
        (job,) = _jobs(make_uow, 0)
        _claim(make_uow, "w1")
        with make_uow() as uow:
            far = T0 + dt.timedelta(hours=1)
            assert uow.outbox.extend_leases(worker_id="w2", job_ids=[job], lease_until=far) == 0
            assert uow.outbox.extend_leases(worker_id="w1", job_ids=[job], lease_until=far) == 1
            uow.commit()
        assert _claim(make_uow, "w2", at=T0 + dt.timedelta(seconds=90)) == []


class TestFinishing:
    def test_only_the_holder_at_its_attempt_finishes_a_job(self, make_uow: MakeUow) -> None:
        (job,) = _jobs(make_uow, 0)
        _claim(make_uow, "w1")
        taken = _claim(make_uow, "w2", at=T0 + dt.timedelta(seconds=61))  # w1's lease ran out
        assert [j.attempts for j in taken] == [2]
        with make_uow() as uow:
            uow.outbox.finish([JobFinish(job, "w1", 1, "done", finished_at=T0)])  # too late
            uow.commit()
        with make_uow() as uow:
            retry_at = T0 + dt.timedelta(minutes=5)
            uow.outbox.finish([JobFinish(job, "w2", 2, "pending", error="E", run_after=retry_at)])
            uow.commit()
        assert _claim(make_uow, "w3", at=T0 + dt.timedelta(minutes=4)) == []
        assert [j.attempts for j in _claim(make_uow, "w3", at=T0 + dt.timedelta(minutes=5))] == [3]

    def test_a_done_job_is_never_claimed_again(self, make_uow: MakeUow) -> None:
        (job,) = _jobs(make_uow, 0)
        _claim(make_uow, "w1")
        with make_uow() as uow:
            uow.outbox.finish([JobFinish(job, "w1", 1, "done", finished_at=T0)])
            uow.commit()
        assert _claim(make_uow, "w2", at=T0 + dt.timedelta(days=1)) == []


class TestAttemptRows:
    def test_a_started_or_retryable_call_may_have_taken_effect(self, make_uow: MakeUow) -> None:
        first, second = _jobs(make_uow, 0, 0)
        row = {"job_id": first, "request_id": None, "state": "started", "started_at": T0}
        with make_uow() as uow:
            uow.outbox.start_attempts(
                [
                    {**row, "id": "call-1", "target": "smdp"},
                    {**row, "id": "call-2", "target": "core"},
                ]
            )
            uow.commit()
        with make_uow() as uow:
            assert uow.outbox.may_have_taken_effect(job_id=first, target="smdp")
            assert not uow.outbox.may_have_taken_effect(job_id=second, target="smdp")
            uow.outbox.record_outcomes(
                [
                    AttemptOutcome("call-1", "failed", T0, error_code="8.1.1", retryable=False),
                    AttemptOutcome("call-2", "failed", T0, error_code="timeout", retryable=True),
                ]
            )
            uow.commit()
        with make_uow() as uow:
            assert not uow.outbox.may_have_taken_effect(job_id=first, target="smdp")
            assert uow.outbox.may_have_taken_effect(job_id=first, target="core")

    def test_an_attempt_row_that_does_not_commit_is_gone(self, make_uow: MakeUow) -> None:
        (job,) = _jobs(make_uow, 0)
        with make_uow() as uow:
            uow.outbox.start_attempts(
                [{"id": "call-9", "job_id": job, "request_id": None, "target": "smtp",
                  "state": "started", "started_at": T0}]
            )  # fmt: skip
        with make_uow() as uow:
            assert not uow.outbox.may_have_taken_effect(job_id=job, target="smtp")


class TestPruning:
    def test_old_done_jobs_without_an_open_request_go_with_their_attempt_rows(
        self, make_uow: MakeUow
    ) -> None:
        seed(make_uow, state=State.IN_REVIEW)  # request req-1 is open
        (kept,) = _jobs(make_uow, 0, request_id="req-1")
        loose, fresh = _jobs(make_uow, 0, 0)
        _claim(make_uow, "w1")
        with make_uow() as uow:
            uow.outbox.start_attempts(
                [{"id": "call-p", "job_id": loose, "request_id": None, "target": "smtp",
                  "state": "succeeded", "started_at": T0}]
            )  # fmt: skip
            uow.outbox.finish(
                [JobFinish(j, "w1", 1, "done", finished_at=T0) for j in (kept, loose)]
                + [JobFinish(fresh, "w1", 1, "done", finished_at=T0 + dt.timedelta(days=9))]
            )
            uow.commit()
        cutoff = T0 + dt.timedelta(days=1)
        with make_uow() as uow:
            # not `kept` (its request is open), not `fresh` (finished after the cut-off)
            assert uow.outbox.prune_done(finished_before=cutoff, batch=10) == 1
            uow.commit()
        with make_uow() as uow:
            assert not uow.outbox.may_have_taken_effect(job_id=loose, target="smtp")
            assert uow.jobs.exists(request_id="req-1", kind="test.job", states=["done"])
            assert uow.outbox.prune_done(finished_before=T0 + dt.timedelta(days=10), batch=10) == 1
