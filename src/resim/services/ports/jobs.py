"""The outbox's port: the durable job queue the worker claims from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# ---------------------------------------------------------------- outbox (jobs)


@dataclass(frozen=True)
class JobRecord:
    """A claimed job: what its handler gets. ``attempts`` counts this run."""

    id: str
    kind: str
    request_id: str | None
    payload: dict[str, object]
    attempts: int


@dataclass(frozen=True)
class JobFinish:
    """How one run of a claimed job ended: ``state`` done, dead or pending (retry,
    due at ``run_after``). Recorded only if ``worker_id`` still holds the job at
    ``attempts``."""

    job_id: str
    worker_id: str
    attempts: int
    state: str
    error: str | None = None
    run_after: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class AttemptOutcome:
    """The outcome of one peer call whose attempt row was committed before it."""

    call_id: str
    state: str  # succeeded | failed
    finished_at: dt.datetime
    error_code: str | None = None
    retryable: bool | None = None


class JobQueue(Protocol):
    """The outbox table and the attempt rows, inside the caller's transaction
    (never commits). Implemented in SQL by ``adapters.db.outbox.SqlOutbox``."""

    def claim(
        self,
        *,
        worker_id: str,
        limit: int,
        now: dt.datetime,
        lease_seconds: float,
        running: Collection[str] = (),
    ) -> list[JobRecord]: ...

    def extend_leases(
        self, *, worker_id: str, job_ids: Sequence[str], lease_until: dt.datetime
    ) -> int: ...

    def finish(self, finishes: Sequence[JobFinish]) -> None: ...

    def start_attempts(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> None: ...

    def may_have_taken_effect(self, *, job_id: str, target: str) -> bool: ...

    def prune_done(self, *, finished_before: dt.datetime, batch: int) -> int: ...
