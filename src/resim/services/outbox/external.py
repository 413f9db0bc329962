"""Attempt rows: every call to a peer is recorded, and committed, before it is made.

The row's id is the call's idempotency key (ES2+ functionCallIdentifier). A row
left in ``started`` means a worker died during the call, so its outcome is
unknown; one in ``succeeded`` may be followed by a worker that died before
committing the result. Handlers use :func:`may_have_taken_effect` to treat a
peer's "already done" answer as success on the retry.

Every outcome also goes to the calling process's peer circuits
(:mod:`resim.services.outbox.peer_circuit`): retryable failures in a row pause the
peer's jobs, and the pause raises a ``peer_unavailable`` alert
(:func:`alert_peer_failing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import structlog

from resim.errors import ExternalError
from resim.services.console.alerts import raise_alert
from resim.services.context import ServiceContext
from resim.services.outbox.peer_circuit import PEER_NAMES, peer_of_target
from resim.services.ports import AttemptOutcome
from resim.services.ports import JobRecord as JobRecord  # re-exported for the handlers
from resim.services.unit_of_work import new_id

log = structlog.get_logger()

T = TypeVar("T")


def attempt_row(job: JobRecord, target: str, *, at: dt.datetime) -> dict[str, object]:
    """A new attempt row (``state='started'``) for ``job``'s call at ``target``."""
    return {
        "id": new_id(),
        "job_id": job.id,
        "request_id": job.request_id,
        "target": target,
        "state": "started",
        "started_at": at,
    }


def call_peer(ctx: ServiceContext, job: JobRecord, target: str, fn: Callable[[str], T]) -> T:
    """Commit an attempt row, call ``fn(call_id)``, record the outcome."""
    row = attempt_row(job, target, at=ctx.now())
    call_id = str(row["id"])
    with ctx.uow() as uow:
        uow.outbox.start_attempts([row])
        uow.commit()
    peer = peer_of_target(target)
    try:
        result = fn(call_id)
    except ExternalError as exc:
        _finish(ctx, call_id, "failed", exc.code, exc.retryable)
        if peer is not None:
            if not exc.retryable:
                ctx.peers.succeeded(peer)  # it answered: a "no" for this one call
            elif ctx.peers.failed(peer, ctx.now(), f"{exc.code}: {exc.message}"):
                alert_peer_failing(ctx, peer=peer, error=f"{exc.code}: {exc.message}", why="paused")
        raise
    except Exception:
        _finish(ctx, call_id, "failed", "UNEXPECTED", True)
        raise
    _finish(ctx, call_id, "succeeded", None, None)
    if peer is not None:
        ctx.peers.succeeded(peer)
    return result


def _finish(
    ctx: ServiceContext, call_id: str, state: str, code: str | None, retryable: bool | None
) -> None:
    outcome = AttemptOutcome(
        call_id=call_id, state=state, finished_at=ctx.now(), error_code=code, retryable=retryable
    )
    with ctx.uow() as uow:
        uow.outbox.record_outcomes([outcome])
        uow.commit()


def may_have_taken_effect(ctx: ServiceContext, job: JobRecord, target: str) -> bool:
    """True if an earlier attempt of this job at ``target`` may have taken effect:
    it succeeded (and the worker died before recording what followed), never
    finished (the worker died during it) or failed in a retryable way (timeout, 5xx).

    Scoped to the job, not the request: after a reissue the request's new
    provision job must not mistake the old profile's calls for its own.
    """
    with ctx.uow(read_only=True) as uow:
        return uow.outbox.may_have_taken_effect(job_id=job.id, target=target)


def alert_peer_failing(ctx: ServiceContext, *, peer: str, error: str, why: str) -> str | None:
    """Raise a ``peer_unavailable`` alert unless one for ``peer`` is still unacknowledged.

    ``why``: "paused" (the circuit opened) or "job_dead" (a job gave up on the
    peer). ``error`` is an ExternalError's code and message: they name hosts
    and statuses, never a number, an address or a secret. Returns the alert id.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        if uow.alerts.open_count(kind="peer_unavailable", subject_id=peer):
            return None
        alert_id = raise_alert(
            uow,
            at=now,
            kind="peer_unavailable",
            subject_type="peer",
            subject_id=peer,
            detail={"peer": PEER_NAMES.get(peer, peer), "why": why, "error": error[:300]},
            actor="worker",
        )
        uow.commit()
    log.error("peer.alert", peer=peer, why=why, alert_id=alert_id, error=error[:300])
    return alert_id
