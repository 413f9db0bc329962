"""MemoryOutbox: the job queue and attempt rows of a MemoryStore (``ports.JobQueue``).

The in-memory twin of :class:`resim.adapters.db.outbox.SqlOutbox`, with the
same rules (tests/contract/test_outbox_contract.py runs one set of cases on
both): a claim leases due jobs (pending and due, or running with a lease that
ran out) in ``run_after`` order, never one the caller is still running; only
the worker holding a job at its attempt may finish it; an attempt row is a
``started`` call until its outcome is recorded; pruning keeps the jobs of open
requests. Every change goes through the unit's transaction, so a unit that
does not commit leaves the queue as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from resim.adapters.memory.store import MemoryCall, MemoryJob, MemoryStore, Transaction
from resim.domain.model import ReplacementRequest
from resim.domain.workflow import OPEN_STATES
from resim.services.ports import AttemptOutcome, JobFinish, JobRecord


class MemoryOutbox:
    """``uow.outbox`` of a :class:`~resim.adapters.memory.MemoryUnitOfWork`."""

    def __init__(self, store: MemoryStore, tx: Transaction) -> None:
        self._store = store
        self._tx = tx

    def _due(self, job: MemoryJob, now: dt.datetime) -> bool:
        if job.state == "pending":
            return job.run_after <= now
        return job.state == "running" and job.lease_until is not None and job.lease_until < now

    def claim(
        self,
        *,
        worker_id: str,
        limit: int,
        now: dt.datetime,
        lease_seconds: float,
        running: Collection[str] = (),
    ) -> list[JobRecord]:
        """Lease up to ``limit`` due jobs to ``worker_id`` (never one in ``running``)."""
        if limit <= 0:
            return []
        skip = set(running)
        due = sorted(
            (j for j in self._store.jobs.values() if j.id not in skip and self._due(j, now)),
            key=lambda j: j.run_after,
        )[:limit]
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        claimed = []
        for job in due:
            self._tx.seen(job)
            job.state, job.worker_id, job.lease_until = "running", worker_id, lease_until
            job.attempts += 1
            claimed.append(
                JobRecord(
                    id=job.id,
                    kind=job.kind,
                    request_id=job.request_id,
                    payload=dict(job.payload),
                    attempts=job.attempts,
                )
            )
        return claimed

    def extend_leases(
        self, *, worker_id: str, job_ids: Sequence[str], lease_until: dt.datetime
    ) -> int:
        extended = 0
        for job_id in job_ids:
            job = self._store.jobs.get(job_id)
            if job is not None and job.worker_id == worker_id and job.state == "running":
                self._tx.seen(job).lease_until = lease_until
                extended += 1
        return extended

    def finish(self, finishes: Sequence[JobFinish]) -> None:
        """Record how claimed jobs ended, for those their worker still holds."""
        for f in finishes:
            job = self._store.jobs.get(f.job_id)
            if (
                job is None
                or job.worker_id != f.worker_id
                or job.state != "running"
                or job.attempts != f.attempts
            ):
                continue
            self._tx.seen(job)
            job.state, job.last_error, job.lease_until = f.state, f.error, None
            if f.run_after is not None:
                job.run_after = f.run_after
            if f.finished_at is not None:
                job.finished_at = f.finished_at

    def start_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add attempt rows (``state='started'``); keys as the ``external_call`` columns."""
        for row in rows:
            self._tx.add_call(
                MemoryCall(
                    id=str(row["id"]),
                    request_id=row.get("request_id"),
                    target=str(row["target"]),
                    state=str(row.get("state", "started")),
                    retryable=row.get("retryable"),
                    job_id=row.get("job_id"),
                    started_at=row.get("started_at"),
                )
            )

    def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> None:
        by_id = {c.id: c for c in self._store.calls}
        for o in outcomes:
            call = by_id.get(o.call_id)
            if call is None:
                continue  # as an UPDATE of a missing row: nothing
            self._tx.seen(call)
            call.state, call.finished_at = o.state, o.finished_at
            call.error_code, call.retryable = o.error_code, o.retryable

    def may_have_taken_effect(self, *, job_id: str, target: str) -> bool:
        return any(
            c.job_id == job_id
            and c.target == target
            and (c.state in ("started", "succeeded") or c.retryable is True)
            for c in self._store.calls
        )

    def prune_done(self, *, finished_before: dt.datetime, batch: int) -> int:
        """Delete up to ``batch`` done jobs of closed (or no) requests that finished
        before ``finished_before``, with their attempt rows; return how many.

        Not undone by a rollback (the worker's pruning commits on its own)."""
        requests = self._store.of(ReplacementRequest)

        def open_request(job: MemoryJob) -> bool:
            request = requests.get(job.request_id) if job.request_id else None
            return request is not None and request.state in OPEN_STATES

        done = sorted(
            (
                j
                for j in self._store.jobs.values()
                if j.state == "done"
                and j.finished_at is not None
                and j.finished_at < finished_before
                and not open_request(j)
            ),
            key=lambda j: j.finished_at or finished_before,
        )[:batch]
        ids = {j.id for j in done}
        for job_id in ids:
            del self._store.jobs[job_id]
        self._store.calls[:] = [c for c in self._store.calls if c.job_id not in ids]
        return len(ids)
