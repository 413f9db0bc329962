"""The batched, asynchronous outbox: many jobs on one event loop, few transactions.

The worker (:mod:`resim.entrypoints.worker`) claims due jobs in batches and
runs each as a coroutine on one event loop. A converted job kind (see
:data:`ASYNC_HANDLERS`) is written as phases::

    unit of work (read, decide, write the attempt rows) -> commit
    peer calls, concurrently with every other job's      (no transaction open)
    unit of work (attempt outcomes + the state change that follows
                  + the job's own outcome: done / retry)  -> commit

Each phase's database work is a *unit*: a function of one
:class:`~resim.services.unit_of_work.UnitOfWork` that never commits. The
:class:`~resim.services.outbox.group_commit.TxBatcher` runs the units that all
running jobs hand it, in the order of their request ids, in ONE transaction,
in one database thread (a lane; on PostgreSQL a few lanes, see
:class:`~resim.services.outbox.group_commit.Lanes`): while that transaction
runs, the next units gather, so a batch of 32 jobs costs about as many
transactions as one job (group commit). A unit that raises rolls the shared
transaction back; the batcher then runs each unit of that batch in its own
transaction, so one job's failure never loses another's work. A job's outbox
writes (call outcomes, attempt rows, its end) are handed to the transaction
(``group_commit.OutboxWrites``), which writes those of all its units in one
statement each; they commit with the unit all the same.

What commits when, and why invariant 4 (DESIGN.md) still holds after SIGKILL
at any point:

* An attempt row (``external_call``, id = idempotency key = ES2+
  functionCallIdentifier) is inserted by the unit that decides to call
  (:meth:`JobRun.attempt`), and the call starts only after that unit's
  transaction committed (``await run.db(...)`` returns after the commit).
  Killed before the commit: neither row nor call exists. Killed after it:
  the row stays ``started`` and the handler's retry treats the call as one
  that may have taken effect, exactly as before.
* A call's outcome is not committed on its own: it waits in the job's run
  and is written by the job's next unit, together with the state change that
  follows (for ``esim.provision``: the downloadOrder outcome with
  ``smdp_step='ordered'`` and the confirmOrder attempt row). Killed before
  that commit: the row says ``started``, the state has not moved, the job's
  lease runs out and its next run repeats the step; a repeated ES2+ call is
  recognised (SGP.22 "already done" codes plus the attempt row), a repeated
  core-network operation is idempotent, and a repeated mail or text carries
  the same Message-ID / message id as before.
* A job's outcome (done, retry with its due time) commits in the same unit as
  its last state change, or alone after a failure, and only while this worker
  still holds the job at this attempt (``JobFinish``). A job that ends with
  no state change to make (a mail or a text sent) hands its closing writes
  (the call's outcome and ``done``) over lazily and frees its slot at once:
  they commit with the next shared transaction (the next claim, which the
  free slot brings about; :mod:`~resim.services.outbox.late_finishes`). Killed
  before that commit: as above, the job runs again after its lease and sends
  the same Message-ID / message id.

Jobs of kinds not in :data:`ASYNC_HANDLERS` run the old way,
:func:`resim.services.outbox.jobs.run` in a thread, each step in its own
transaction. So do rare paths (a job that dies, a peer alert).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import structlog

from resim.errors import ExternalError, ResimError
from resim.services.audit import redaction
from resim.services.context import ServiceContext
from resim.services.outbox import jobs
from resim.services.outbox.async_peers import AsyncPeers
from resim.services.outbox.external import alert_peer_failing, attempt_row
from resim.services.outbox.group_commit import Lanes, OutboxWrites, TxBatcher, Unit
from resim.services.outbox.late_finishes import LateFinishes
from resim.services.outbox.peer_circuit import peer_of_kind, peer_of_target
from resim.services.ports import AttemptOutcome, JobRecord
from resim.services.unit_of_work import UnitOfWork

log = structlog.get_logger()

T = TypeVar("T")


@dataclass
class JobRun:
    """One run of one claimed job on the loop: what a converted handler uses."""

    runner: BatchRunner
    job: JobRecord
    finished: bool = False
    _outcomes: list[AttemptOutcome] = field(default_factory=list)
    _done_in_unit: bool = False
    _writes: OutboxWrites | None = None  # the unit running now hands its writes here

    @property
    def ctx(self) -> ServiceContext:
        return self.runner.ctx

    @property
    def peers(self) -> AsyncPeers:
        return self.runner.peers

    def attempt(self, uow: UnitOfWork, target: str) -> str:
        """Inside a unit: insert the attempt row of a call this job is about to
        make; return its id (the idempotency key). Call only after the unit's
        commit (``await run.db``)."""
        return self.attempts(uow, [target])[0]

    def attempts(self, uow: UnitOfWork, targets: list[str]) -> list[str]:
        """:meth:`attempt` for several calls (their rows are written with the
        transaction's other attempt rows, in one statement, before its commit)."""
        now = self.ctx.now()
        rows = [attempt_row(self.job, target, at=now) for target in targets]
        self._in_unit().attempts.extend(rows)
        return [str(row["id"]) for row in rows]

    def mark_done(self, uow: UnitOfWork) -> None:
        """Inside a unit: the job is done, in the same transaction as the unit."""
        done = jobs.finish_record(
            self.ctx, self.job, self.runner.worker_id, state="done", error=None
        )
        self._in_unit().finishes.append(done)
        self._done_in_unit = True

    def _in_unit(self) -> OutboxWrites:
        if self._writes is None:
            raise RuntimeError("only inside a unit of this job's run.db()")
        return self._writes

    async def db(self, unit: Unit[T]) -> T:
        """Run ``unit`` in a shared transaction, after this job's pending call
        outcomes; return once committed."""
        writes = OutboxWrites(outcomes=self._outcomes)
        self._outcomes = []

        def with_outcomes(uow: UnitOfWork) -> T:
            self._done_in_unit = False
            writes.attempts.clear()  # run again (another unit failed): new rows
            writes.finishes.clear()
            self._writes = writes
            try:
                return unit(uow)
            finally:
                self._writes = None

        try:
            value = await self.runner.batcher.run(
                with_outcomes, key=self.job.request_id, writes=writes
            )
        except BaseException:
            self._outcomes[:0] = writes.outcomes  # not written: the next unit writes them
            self._done_in_unit = False
            raise
        if self._done_in_unit:
            self.finished = True
        return value

    async def call(self, call_id: str, target: str, make: Callable[[], Awaitable[T]]) -> T:
        """Make one peer call whose attempt row is committed; keep its outcome for
        the next unit and tell the peer's circuit (as ``external.call_peer``)."""
        peer = peer_of_target(target)
        try:
            result = await make()
        except ExternalError as exc:
            self._outcome(call_id, "failed", exc.code, exc.retryable)
            if peer is not None:
                if not exc.retryable:
                    self.ctx.peers.succeeded(peer)
                elif self.ctx.peers.failed(peer, self.ctx.now(), f"{exc.code}: {exc.message}"):
                    await self.runner.in_thread(
                        functools.partial(
                            alert_peer_failing,
                            self.ctx,
                            peer=peer,
                            error=f"{exc.code}: {exc.message}",
                            why="paused",
                        )
                    )
            raise
        except Exception:
            self._outcome(call_id, "failed", "UNEXPECTED", True)
            raise
        self._outcome(call_id, "succeeded", None, None)
        if peer is not None:
            self.ctx.peers.succeeded(peer)
        return result

    def not_called(self, call_id: str) -> None:
        """An attempt row written for a call this run will not make after all."""
        self._outcome(call_id, "failed", "NOT_CALLED", False)

    def same_outcome(self, call_id: str, as_call: str) -> None:
        """``call_id`` was made as part of ``as_call`` (one operation at the peer):
        record the outcome :meth:`call` recorded for ``as_call``, if any."""
        for outcome in reversed(self._outcomes):
            if outcome.call_id == as_call:
                self._outcomes.append(replace(outcome, call_id=call_id))
                return

    def _outcome(self, call_id: str, state: str, code: str | None, retryable: bool | None) -> None:
        self._outcomes.append(AttemptOutcome(call_id, state, self.ctx.now(), code, retryable))

    async def may_have_taken_effect(self, target: str) -> bool:
        """``external.may_have_taken_effect`` for this job (pending outcomes first)."""
        return await self.db(
            lambda uow: uow.outbox.may_have_taken_effect(job_id=self.job.id, target=target)
        )


AsyncHandler = Callable[[JobRun], Awaitable[None]]


class BatchRunner:
    """Runs claimed jobs on the current event loop (see the module docstring).

    ``db_executor``: the single database thread of the :class:`TxBatcher`;
    ``pool``: threads for the jobs that run the old way and for synchronous
    peers. ``handlers``: job kind -> async handler (default
    :data:`ASYNC_HANDLERS`).
    """

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        worker_id: str,
        db_executor: Executor,
        pool: Executor,
        handlers: dict[str, AsyncHandler] | None = None,
        db_lanes: int = 4,
    ) -> None:
        self.ctx = ctx
        self.worker_id = worker_id
        with ctx.uow(read_only=True) as uow:
            sqlite = uow.dialect != "postgresql"
        # Lanes beyond the first get their own database thread (closed in aclose).
        self._lane_threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="resim-db")
            for _ in range(0 if sqlite else max(0, db_lanes - 1))
        ]
        self.batcher = Lanes(
            [TxBatcher(ctx, db_executor)] + [TxBatcher(ctx, t) for t in self._lane_threads]
        )
        self.pool = pool
        self.peers = AsyncPeers(ctx)
        self.handlers = default_handlers() if handlers is None else handlers
        self._late = LateFinishes(
            lambda unit, writes: self.batcher.run(unit, eager=False, writes=writes)
        )

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run blocking ``fn`` on the pool (its own units of work)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn)

    async def core_call(self, fn: Callable[[], T]) -> T:
        """Run a synchronous core-network call. A core network whose writes take
        the database's one write lock (the built-in one on SQLite) is called on
        the database thread, between two shared transactions: from another
        thread it would wait for that lock in SQLite's busy handler, which
        sleeps up to 100 ms between tries."""
        serialised = bool(getattr(self.ctx.core, "serialised_writes", False))
        executor = self.batcher.executor if serialised else self.pool
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    async def run(self, job: JobRecord) -> str:
        """Run one claimed job to an outcome; "done", "retry" or "dead"."""
        handler = self.handlers.get(job.kind)
        if handler is None:
            return await self.in_thread(
                functools.partial(jobs.run, self.ctx, job, worker_id=self.worker_id)
            )
        with redaction.scope():
            return await self._run(handler, job)

    async def _run(self, handler: AsyncHandler, job: JobRecord) -> str:
        ctx = self.ctx
        peer = peer_of_kind(job.kind)
        admission = ctx.peers.admit(peer, ctx.now()) if peer is not None else None
        if admission is not None and admission.wait is not None:
            assert peer is not None
            wait = admission.wait
            return await self.in_thread(lambda: jobs._paused(ctx, job, self.worker_id, peer, wait))
        run = JobRun(self, job)
        try:
            await handler(run)
        except ExternalError as exc:
            if exc.retryable and job.attempts < ctx.job_max_attempts:
                return await self._retry(run, f"{exc.code}: {exc.message}")
            if exc.retryable and peer is not None:
                error = f"{exc.code}: {exc.message}"
                await self.in_thread(
                    lambda: alert_peer_failing(ctx, peer=peer, error=error, why="job_dead")
                )
            return await self._dead(run, exc.code, exc.message)
        except ResimError as exc:
            return await self._dead(run, exc.code, exc.message)
        except Exception as exc:  # a bug or a driver error: retry, it may be transient
            log.exception("job.crashed", job_id=job.id, kind=job.kind)
            if job.attempts < ctx.job_max_attempts:
                return await self._retry(run, f"UNEXPECTED: {type(exc).__name__}")
            return await self._dead(run, "UNEXPECTED", type(exc).__name__)
        finally:
            if admission is not None and admission.probe:
                assert peer is not None
                ctx.peers.probe_done(peer)
        if not run.finished:  # no state change to make: done lazily, the slot is free
            outcomes, run._outcomes = run._outcomes, []
            done = jobs.finish_record(ctx, job, self.worker_id, state="done", error=None)
            self._late.add(outcomes, done)
        return "done"

    async def _retry(self, run: JobRun, error: str) -> str:
        finish = jobs.retry_record(self.ctx, run.job, self.worker_id, error)
        await run.db(lambda _uow: run._in_unit().finishes.append(finish))
        return "retry"

    async def _dead(self, run: JobRun, code: str, message: str) -> str:
        if run._outcomes:
            await run.db(lambda _uow: None)
        job = run.job
        return await self.in_thread(
            lambda: jobs._dead(self.ctx, job, self.worker_id, code, message)
        )

    async def flush(self) -> None:
        """Commit the lazy ``done`` of every job that ended (stopping, tests)."""
        while self._late.pending:
            for batcher in self.batcher.batchers:
                batcher.flush()
            await self._late.wait()

    async def aclose(self) -> None:
        await self.flush()
        await self.peers.aclose()
        for thread in self._lane_threads:
            thread.shutdown(wait=False)


def _handlers() -> dict[str, AsyncHandler]:
    from resim.services.cutover import cutover_job
    from resim.services.notifications import mailing, texting
    from resim.services.provisioning import provision_job

    return {
        "mail.send": mailing.send_mail_async,
        "sms.send": texting.send_sms_async,
        "esim.provision": provision_job.provision,
        "core.cutover": cutover_job.cutover,
        "core.suspend_old": cutover_job.suspend_old,
    }


ASYNC_HANDLERS: dict[str, AsyncHandler] = {}


def default_handlers() -> dict[str, AsyncHandler]:
    """The converted job kinds (filled on first use: the handlers import this module)."""
    if not ASYNC_HANDLERS:
        ASYNC_HANDLERS.update(_handlers())
    return ASYNC_HANDLERS


def run_due_jobs(
    ctx: ServiceContext, *, worker_id: str = "inline", limit: int = 100, max_rounds: int = 1000
) -> int:
    """:func:`resim.services.outbox.jobs.run_due_jobs` on the batched runner: claim due
    jobs, run each claimed batch concurrently on a private event loop until none
    is left (tests, walkthrough); return how many ran."""
    return asyncio.run(_run_due(ctx, worker_id=worker_id, limit=limit, max_rounds=max_rounds))


async def _run_due(ctx: ServiceContext, *, worker_id: str, limit: int, max_rounds: int) -> int:
    total = 0
    with (
        ThreadPoolExecutor(max_workers=1) as db_thread,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        asyncio.get_running_loop().set_default_executor(pool)
        runner = BatchRunner(ctx, worker_id=worker_id, db_executor=db_thread, pool=pool)
        try:
            for _ in range(max_rounds):
                claimed = await runner.batcher.run(
                    lambda uow: uow.outbox.claim(
                        worker_id=worker_id, limit=limit, now=ctx.now(), lease_seconds=60
                    )
                )
                if not claimed:
                    break
                await asyncio.gather(*(runner.run(job) for job in claimed))
                total += len(claimed)
        finally:
            await runner.aclose()
    return total
