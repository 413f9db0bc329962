"""SqlOutbox: the job table and the attempt rows in SQL (implements ``ports.JobQueue``).

Every statement is built once, here at import (bound parameters, ``expanding``
ones for id lists), so the SQLAlchemy compiled cache serves every call instead
of rebuilding the expression tree per job.

All methods run inside the caller's transaction (``uow.outbox``, a
:class:`SqlOutbox` on the unit of work's session) and never commit: the caller
decides what commits together. Claiming (:meth:`SqlOutbox.claim`) selects the
candidates with FOR UPDATE SKIP LOCKED on PostgreSQL, so several worker
processes never claim the same job; on SQLite the transaction is BEGIN
IMMEDIATE (see ``adapters.db.engine``), which serialises writers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resim.adapters.db import orm
from resim.domain.workflow import OPEN_STATES
from resim.services.ports import AttemptOutcome, JobFinish, JobRecord

_j = orm.job
_c = orm.external_call

_DUE = sa.or_(
    sa.and_(_j.c.state == "pending", _j.c.run_after <= sa.bindparam("now")),
    sa.and_(_j.c.state == "running", _j.c.lease_until < sa.bindparam("now")),
)
# One statement claims: the candidates (FOR UPDATE SKIP LOCKED on PostgreSQL:
# rows another worker's claim holds are passed over, never waited for or taken
# twice) and their update, whose RETURNING gives the claimed jobs.
_CLAIM_CANDIDATES = (
    sa.select(_j.c.id)
    .where(_DUE, _j.c.id.not_in(sa.bindparam("running", expanding=True)))
    .order_by(_j.c.run_after)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    sa.update(_j)
    .where(_j.c.id.in_(_CLAIM_CANDIDATES.scalar_subquery()))
    .values(
        state="running",
        worker_id=sa.bindparam("b_worker_id"),
        attempts=_j.c.attempts + 1,
        lease_until=sa.bindparam("b_lease_until"),
    )
    .returning(_j.c.id, _j.c.kind, _j.c.request_id, _j.c.payload, _j.c.attempts)
)
_EXTEND = (
    sa.update(_j)
    .where(
        _j.c.id.in_(sa.bindparam("ids", expanding=True)),
        _j.c.worker_id == sa.bindparam("b_worker_id"),
        _j.c.state == "running",
    )
    .values(lease_until=sa.bindparam("b_lease_until"))
)
# Only the current holder may finish a job: one whose lease ran out and was
# taken by another worker is left to that worker (worker and attempt both match).
_FINISH = (
    sa.update(_j)
    .where(
        _j.c.id == sa.bindparam("b_id"),
        _j.c.worker_id == sa.bindparam("b_worker"),
        _j.c.state == "running",
        _j.c.attempts == sa.bindparam("b_attempts"),
    )
    .values(
        state=sa.bindparam("b_state"),
        last_error=sa.bindparam("b_error"),
        lease_until=None,
        run_after=sa.func.coalesce(
            sa.bindparam("b_run_after", type_=_j.c.run_after.type), _j.c.run_after
        ),
        finished_at=sa.func.coalesce(
            sa.bindparam("b_finished_at", type_=_j.c.finished_at.type), _j.c.finished_at
        ),
    )
)
_ATTEMPT_INSERT = sa.insert(_c)
_ATTEMPT_OUTCOME = (
    sa.update(_c)
    .where(_c.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("b_state"),
        finished_at=sa.bindparam("b_finished_at", type_=_c.c.finished_at.type),
        error_code=sa.bindparam("b_code"),
        retryable=sa.bindparam("b_retryable", type_=sa.Boolean),
    )
)
_MAY_HAVE_TAKEN_EFFECT = (
    sa.select(sa.func.count())
    .select_from(_c)
    .where(
        _c.c.job_id == sa.bindparam("job_id"),
        _c.c.target == sa.bindparam("target"),
        sa.or_(_c.c.state.in_(["started", "succeeded"]), _c.c.retryable.is_(True)),
    )
)
_r = orm.replacement_request
_PRUNE_SELECT = (
    sa.select(_j.c.id)
    .where(
        _j.c.state == "done",
        _j.c.finished_at < sa.bindparam("cutoff"),
        ~sa.exists().where(_r.c.id == _j.c.request_id, _r.c.state.in_(OPEN_STATES)),
    )
    .order_by(_j.c.finished_at)
    .limit(sa.bindparam("batch"))
)
_PRUNE_CALLS = sa.delete(_c).where(_c.c.job_id.in_(sa.bindparam("ids", expanding=True)))
_PRUNE_JOBS = sa.delete(_j).where(
    _j.c.id.in_(sa.bindparam("ids", expanding=True)), _j.c.state == "done"
)


class SqlOutbox:
    """The job queue and attempt rows on one session (see the module docstring).

    Its statements touch only the job and attempt tables, which no mapped
    object holds, so they run on the session's connection: the ORM's execute
    (autoflush, plugins, events) would cost more CPU than the statement."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def _s(self) -> sa.Connection:
        return self._session.connection()

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
        rows = self._s.execute(
            _CLAIM,
            {
                "now": now,
                "running": list(running),
                "limit": limit,
                "b_worker_id": worker_id,
                "b_lease_until": now + dt.timedelta(seconds=lease_seconds),
            },
        ).all()
        return [
            JobRecord(
                id=r.id,
                kind=r.kind,
                request_id=r.request_id,
                payload=dict(r.payload),
                attempts=r.attempts,
            )
            for r in rows
        ]

    def extend_leases(
        self, *, worker_id: str, job_ids: Sequence[str], lease_until: dt.datetime
    ) -> int:
        if not job_ids:
            return 0
        result = self._s.execute(
            _EXTEND, {"ids": list(job_ids), "b_worker_id": worker_id, "b_lease_until": lease_until}
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def finish(self, finishes: Sequence[JobFinish]) -> None:
        """Record the outcome of claimed jobs (one executemany for the lot)."""
        if not finishes:
            return
        self._s.execute(
            _FINISH,
            [
                {
                    "b_id": f.job_id,
                    "b_worker": f.worker_id,
                    "b_attempts": f.attempts,
                    "b_state": f.state,
                    "b_error": f.error,
                    "b_run_after": f.run_after,
                    "b_finished_at": f.finished_at,
                }
                for f in finishes
            ],
        )

    def start_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert attempt rows (``state='started'``); keys as the ``external_call`` columns."""
        if rows:
            self._s.execute(_ATTEMPT_INSERT, list(rows))

    def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if not outcomes:
            return
        self._s.execute(
            _ATTEMPT_OUTCOME,
            [
                {
                    "b_id": o.call_id,
                    "b_state": o.state,
                    "b_finished_at": o.finished_at,
                    "b_code": o.error_code,
                    "b_retryable": o.retryable,
                }
                for o in outcomes
            ],
        )

    def may_have_taken_effect(self, *, job_id: str, target: str) -> bool:
        return bool(self._s.scalar(_MAY_HAVE_TAKEN_EFFECT, {"job_id": job_id, "target": target}))

    def prune_done(self, *, finished_before: dt.datetime, batch: int) -> int:
        """Delete up to ``batch`` done jobs of closed (or no) requests that finished
        before ``finished_before``, with their attempt rows; return how many."""
        ids = list(self._s.scalars(_PRUNE_SELECT, {"cutoff": finished_before, "batch": batch}))
        if ids:
            self._s.execute(_PRUNE_CALLS, {"ids": ids})
            self._s.execute(_PRUNE_JOBS, {"ids": ids})
        return len(ids)
