"""The durable job runner: claim due jobs, run their handler, record the outcome.

Claiming sets ``state='running'`` with a lease. On PostgreSQL the candidate
rows are chosen with FOR UPDATE SKIP LOCKED, so several worker processes never
claim the same job; on SQLite the claim runs inside BEGIN IMMEDIATE, which
serialises writers. A job whose worker died is claimed again when its lease
runs out; a live worker renews the leases of the jobs it runs
(:func:`extend_leases`), so a slow job is not taken from it. Handlers are
written to be re-run: every external call has an attempt row and every peer
operation is idempotent or recognisable.

Outcome of a handler:
- returns: the job is done.
- retryable ExternalError (or an unexpected exception): back off with full
  jitter (base * 2**attempt, capped) and try again, up to ``job_max_attempts``.
- non-retryable ResimError, or attempts exhausted: the job is dead and its
  request, when the job is one the request cannot do without, fails visibly.
  A job that gave up on a peer (a retryable peer error to the last attempt)
  also raises a ``peer_unavailable`` alert.
- its peer's circuit is open (the peer kept failing, see
  :mod:`resim.services.outbox.peer_circuit`): the handler does not run; the job is put
  back until the pause ends, its attempt counted, so attempts stay bounded.

This module is the synchronous runner: one job at a time, each step its own
transaction (tests, the walkthrough, and the worker for job kinds not yet
converted). The worker runs the hot kinds on the batched, asynchronous runner
(:mod:`resim.services.outbox.batch_runner`), which keeps these outcome rules. The job
table's SQL is behind the ``JobQueue`` port (``uow.outbox``,
``adapters.db.outbox``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Collection

import structlog

from resim.errors import ExternalError, ResimError
from resim.services.audit import redaction
from resim.services.camara import camara_delivery, subscription_events
from resim.services.context import ServiceContext
from resim.services.cutover import cutover, network_refresh
from resim.services.delivery import delivery
from resim.services.locks import loss_hooks, unlock
from resim.services.notifications import alert_notify, mailing, texting
from resim.services.outbox.external import JobRecord, alert_peer_failing
from resim.services.outbox.peer_circuit import peer_of_kind
from resim.services.ports import JobFinish
from resim.services.provisioning import provisioning, reconcile, withdraw
from resim.services.replacement import cancel

log = structlog.get_logger()

Handler = Callable[[ServiceContext, JobRecord], None]

HANDLERS: dict[str, Handler] = {
    "mail.send": mailing.send_mail,
    "sms.send": texting.send_sms,
    "alert.notify": alert_notify.notify_reviewers,
    "esim.provision": provisioning.provision,
    "esim.cancel_order": withdraw.cancel_order,
    "core.suspend_old": cutover.suspend_old,
    "core.resume_old": cutover.resume_old,
    "core.cutover": cutover.cutover,
    "loss.suspend": loss_hooks.suspend,
    "loss.resume": loss_hooks.resume,
    "core.refresh": network_refresh.refresh,
    "esim.reconcile": reconcile.reconcile,
    "courier.dispatch": delivery.dispatch,
    "request.expire_unverified": lambda ctx, job: cancel.expire_unverified(ctx, _rid(job)),
    "request.expire_activation": lambda ctx, job: cancel.expire_activation(ctx, _rid(job)),
    "request.expire_step_up": lambda ctx, job: cancel.expire_step_up(ctx, _rid(job)),
    "lock.unlock_effective": unlock.unlock_effective,
    "camara.deliver": camara_delivery.deliver,
    "camara.subscription_end": subscription_events.end_when_due,
}

# A dead job of these kinds fails its request (the request cannot finish without it).
FAILS_REQUEST = {"esim.provision", "courier.dispatch", "core.suspend_old", "core.cutover"}


def _rid(job: JobRecord) -> str:
    assert job.request_id is not None
    return job.request_id


def claim(
    ctx: ServiceContext,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    running: Collection[str] = (),
) -> list[JobRecord]:
    """Claim up to ``limit`` due jobs (pending, or running with an expired lease).

    ``running`` names the jobs the calling worker is still executing. Their
    leases may have lapsed (a stalled heartbeat, a clock jump), but taking one
    back would start a second copy beside the first, so they are never claimed
    by their own worker; the next heartbeat renews them instead.
    """
    if limit <= 0:
        return []
    with ctx.uow() as uow:
        claimed = uow.outbox.claim(
            worker_id=worker_id,
            limit=limit,
            now=ctx.now(),
            lease_seconds=lease_seconds,
            running=running,
        )
        uow.commit()
    return claimed


def extend_leases(
    ctx: ServiceContext, *, worker_id: str, job_ids: list[str], lease_seconds: float
) -> int:
    """Heartbeat: renew the lease of jobs this worker is still running; return how many.

    Without it a job that outlives its lease (a slow peer, a loaded database)
    is claimed again, by another worker or this one, and runs twice at once.
    A job another worker has claimed meanwhile is not touched.
    """
    if not job_ids:
        return 0
    with ctx.uow() as uow:
        count = uow.outbox.extend_leases(
            worker_id=worker_id,
            job_ids=job_ids,
            lease_until=ctx.now() + dt.timedelta(seconds=lease_seconds),
        )
        uow.commit()
    return count


def run(ctx: ServiceContext, job: JobRecord, *, worker_id: str) -> str:
    """Run one claimed job to an outcome; return "done", "retry" or "dead".

    In a :func:`redaction.scope`: the names, addresses and MatchingIDs the
    handler tells it about are masked in this job's log lines and last error.
    """
    with redaction.scope():
        return _run(ctx, job, worker_id=worker_id)


def _run(ctx: ServiceContext, job: JobRecord, *, worker_id: str) -> str:
    handler = HANDLERS.get(job.kind)
    if handler is None:
        _finish(ctx, job, worker_id, state="dead", error=f"no handler for job kind {job.kind}")
        return "dead"
    peer = peer_of_kind(job.kind)
    admission = ctx.peers.admit(peer, ctx.now()) if peer is not None else None
    if admission is not None and admission.wait is not None:
        assert peer is not None
        return _paused(ctx, job, worker_id, peer, admission.wait)
    try:
        handler(ctx, job)
    except ExternalError as exc:
        if exc.retryable and job.attempts < ctx.job_max_attempts:
            return _retry(ctx, job, worker_id, f"{exc.code}: {exc.message}")
        if exc.retryable and peer is not None:
            alert_peer_failing(ctx, peer=peer, error=f"{exc.code}: {exc.message}", why="job_dead")
        return _dead(ctx, job, worker_id, exc.code, exc.message)
    except ResimError as exc:
        return _dead(ctx, job, worker_id, exc.code, exc.message)
    except Exception as exc:  # a bug or a driver error: retry, it may be transient
        log.exception("job.crashed", job_id=job.id, kind=job.kind)
        if job.attempts < ctx.job_max_attempts:
            return _retry(ctx, job, worker_id, f"UNEXPECTED: {type(exc).__name__}")
        return _dead(ctx, job, worker_id, "UNEXPECTED", type(exc).__name__)
    finally:
        if admission is not None and admission.probe:
            assert peer is not None
            ctx.peers.probe_done(peer)
    _finish(ctx, job, worker_id, state="done", error=None)
    return "done"


def _paused(ctx: ServiceContext, job: JobRecord, worker_id: str, peer: str, wait: float) -> str:
    """The job's peer is paused: put the job back after the pause (attempt counted)."""
    error = f"PEER_PAUSED: {peer} keeps failing ({ctx.peers.last_error(peer)})"
    if job.attempts >= ctx.job_max_attempts:
        alert_peer_failing(ctx, peer=peer, error=error, why="job_dead")
        return _dead(ctx, job, worker_id, "PEER_PAUSED", error.removeprefix("PEER_PAUSED: "))
    # Spread the paused jobs over a quarter of the pause, so they do not all
    # come back in the same instant as the probe.
    delay = wait + random.uniform(0, wait / 4)
    log.debug("job.paused", job_id=job.id, kind=job.kind, peer=peer, delay_s=round(delay, 3))
    _finish(
        ctx,
        job,
        worker_id,
        state="pending",
        error=error,
        run_after=ctx.now() + dt.timedelta(seconds=delay),
    )
    return "retry"


def backoff_seconds(ctx: ServiceContext, attempts: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempts-1))], at least 10 ms."""
    ceiling = min(
        ctx.job_backoff_cap_seconds, ctx.job_backoff_base_seconds * 2 ** max(attempts - 1, 0)
    )
    return max(0.01, (rng or random).uniform(0, ceiling))


def _retry(ctx: ServiceContext, job: JobRecord, worker_id: str, error: str) -> str:
    finish = retry_record(ctx, job, worker_id, error)
    with ctx.uow() as uow:
        uow.outbox.finish([finish])
        uow.commit()
    return "retry"


def retry_record(ctx: ServiceContext, job: JobRecord, worker_id: str, error: str) -> JobFinish:
    """Back off (full jitter, logged): the job is pending again after the delay."""
    delay = backoff_seconds(ctx, job.attempts)
    log.warning(
        "job.retry",
        job_id=job.id,
        kind=job.kind,
        attempt=job.attempts,
        delay_s=round(delay, 3),
        error=error,
    )
    return finish_record(
        ctx,
        job,
        worker_id,
        state="pending",
        error=error,
        run_after=ctx.now() + dt.timedelta(seconds=delay),
    )


def _dead(ctx: ServiceContext, job: JobRecord, worker_id: str, code: str, message: str) -> str:
    log.error("job.dead", job_id=job.id, kind=job.kind, code=code, error=message)
    if job.kind in FAILS_REQUEST and job.request_id is not None:
        provisioning.fail_request(ctx, job.request_id, code=code, reason=message)
    _finish(ctx, job, worker_id, state="dead", error=f"{code}: {message}")
    return "dead"


def _finish(
    ctx: ServiceContext,
    job: JobRecord,
    worker_id: str,
    *,
    state: str,
    error: str | None,
    run_after: dt.datetime | None = None,
) -> None:
    with ctx.uow() as uow:
        uow.outbox.finish(
            [finish_record(ctx, job, worker_id, state=state, error=error, run_after=run_after)]
        )
        uow.commit()


def finish_record(
    ctx: ServiceContext,
    job: JobRecord,
    worker_id: str,
    *,
    state: str,
    error: str | None,
    run_after: dt.datetime | None = None,
) -> JobFinish:
    """The row update that ends this run of ``job`` (``error`` masked of told values)."""
    return JobFinish(
        job_id=job.id,
        worker_id=worker_id,
        attempts=job.attempts,
        state=state,
        error=redaction.mask_told(error) if error is not None else None,
        run_after=run_after,
        finished_at=ctx.now() if state in ("done", "dead") else None,
    )


def prune_done(
    ctx: ServiceContext, *, older_than: dt.timedelta | None = None, batch: int = 500
) -> int:
    """Delete done jobs that finished more than ``older_than`` ago (default
    ``ctx.job_retention``, RESIM_JOB_RETENTION_DAYS); return how many.

    A done job's payload is of no further use, and even sealed it is personal
    data (a recipient, a name). Kept: pending, running and dead jobs (an
    operator looks at those), and every job of a request still open, since
    provisioning reads them and their attempt rows while the request lives
    (an enqueued withdrawal, whether an order may exist). A job's attempt rows
    (``external_call``: peer, times, outcome) go with it. One transaction per
    batch, so a prune never holds locks for long and one cut short resumes;
    several workers pruning at once delete each row once.
    """
    cutoff = ctx.now() - (ctx.job_retention if older_than is None else older_than)
    total = 0
    while True:
        with ctx.uow() as uow:
            deleted = uow.outbox.prune_done(finished_before=cutoff, batch=batch)
            uow.commit()
        if not deleted:
            break
        total += deleted
    if total:
        log.info("jobs.pruned", count=total, finished_before=cutoff.isoformat())
    return total


def run_due_jobs(
    ctx: ServiceContext, *, worker_id: str = "inline", limit: int = 100, max_rounds: int = 1000
) -> int:
    """Run due jobs in this thread until none is left (tests, walkthrough); return count."""
    total = 0
    for _ in range(max_rounds):
        jobs = claim(ctx, worker_id=worker_id, limit=limit, lease_seconds=60)
        if not jobs:
            break
        for job in jobs:
            run(ctx, job, worker_id=worker_id)
            total += 1
    return total
