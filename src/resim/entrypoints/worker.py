"""``resim worker``: runs durable jobs, many in flight at once, on one event loop (uvloop).

One claiming loop (an asyncio task) claims due jobs in batches (one
transaction claims up to the free slots, FOR UPDATE SKIP LOCKED on
PostgreSQL, so several worker processes never claim the same job) and runs
each as a task of :class:`resim.services.outbox.batch_runner.BatchRunner`: peer calls
of every job in flight run concurrently on the loop, and their database work
is gathered into shared transactions in one database thread (see that
module for the phases and for why a SIGKILL anywhere loses or duplicates
nothing). Job kinds not yet converted run the old way in a thread pool of
``concurrency`` threads. At most ``concurrency`` jobs are in flight.

SIGTERM/SIGINT (``stop()``, safe from a signal handler or another thread) stop
claiming and let running jobs finish; SIGKILL is survived by leases (see
services.jobs), which the loop renews every third of a lease while a job runs.
With ``prune_every_seconds`` the loop also deletes done jobs past their
retention (:func:`resim.services.outbox.jobs.prune_done`) at start and then at that
interval; ``resim worker`` sets it from RESIM_JOB_PRUNE_INTERVAL_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

from resim.adapters.db.transient import classify
from resim.adapters.mail.templates import preload_templates
from resim.entrypoints.event_loop import new_event_loop
from resim.services.context import ServiceContext
from resim.services.outbox import jobs
from resim.services.outbox.batch_runner import BatchRunner
from resim.services.outbox.external import JobRecord
from resim.services.unit_of_work import UnitOfWork

log = structlog.get_logger()


class Worker:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        concurrency: int = 32,
        lease_seconds: float = 60.0,
        poll_seconds: float = 0.2,
        prune_every_seconds: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.prune_every_seconds = prune_every_seconds
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stop_event = threading.Event()
        self.counts = {"done": 0, "retry": 0, "dead": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: dict[asyncio.Task[str], str] = {}  # task -> job id
        self.runner: BatchRunner | None = None
        preload_templates()  # compile mail templates once, before any job

    def run(self, *, until_idle: bool = False) -> None:
        """Claim and run jobs until stopped (or, with ``until_idle``, until none is due)."""
        with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop: less CPU
            runner.run(self._main(until_idle))

    def stop(self) -> None:
        self.stop_event.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def _main(self, until_idle: bool) -> None:
        log.info("worker.started", worker_id=self.worker_id, concurrency=self.concurrency)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="resim-job")
        db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resim-db")
        self._loop.set_default_executor(pool)  # asyncio.to_thread: synchronous peers
        runner = BatchRunner(self.ctx, worker_id=self.worker_id, db_executor=db_thread, pool=pool)
        self.runner = runner
        try:
            await self._claim_loop(runner, until_idle)
            await self._drain(runner)
        finally:
            await runner.aclose()
            db_thread.shutdown(wait=True)
            pool.shutdown(wait=True)
            log.info("worker.stopped", worker_id=self.worker_id, **self.counts)

    async def _claim_loop(self, runner: BatchRunner, until_idle: bool) -> None:
        assert self._wake is not None
        next_beat = time.monotonic() + self.lease_seconds / 3
        next_prune = time.monotonic()
        while not self.stop_event.is_set():
            self._wake.clear()  # before looking: a job ending from here on wakes the wait
            if self.prune_every_seconds and time.monotonic() >= next_prune:
                await self._prune(runner)
                next_prune = time.monotonic() + self.prune_every_seconds
            running = list(self._in_flight.values())
            if time.monotonic() >= next_beat:
                await self._heartbeat(runner, running)
                next_beat = time.monotonic() + self.lease_seconds / 3
            free = self.concurrency - len(self._in_flight)
            claimed: list[JobRecord] = []
            if free > 0:
                try:
                    claimed = await runner.batcher.run(self._claim_unit(free, running))
                except Exception as exc:
                    transient = classify(exc)
                    if transient is None:
                        log.exception("worker.claim_failed")
                    else:  # a busy or unreachable database passes: one line, no traceback
                        log.warning("worker.claim_deferred", reason=transient.reason)
                    await asyncio.sleep(self.poll_seconds)
            for job in claimed:
                task = asyncio.create_task(self._run_one(runner, job))
                self._in_flight[task] = job.id
            if claimed and len(claimed) == free:
                continue  # more may be due: claim again as soon as slots free up
            if until_idle and not self._in_flight and not claimed:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _claim_unit(
        self, limit: int, running: list[str]
    ) -> Callable[[UnitOfWork], list[JobRecord]]:
        def claim(uow: UnitOfWork) -> list[JobRecord]:
            return uow.outbox.claim(
                worker_id=self.worker_id,
                limit=limit,
                now=self.ctx.now(),
                lease_seconds=self.lease_seconds,
                running=running,
            )

        return claim

    async def _run_one(self, runner: BatchRunner, job: JobRecord) -> str:
        try:
            outcome = await runner.run(job)
        except Exception:  # never let one job kill the loop
            log.exception("worker.job_error", job_id=job.id, kind=job.kind)
            outcome = "retry"
        finally:
            self._in_flight.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            if self._wake is not None:
                self._wake.set()
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return outcome

    async def _drain(self, runner: BatchRunner) -> None:
        """Stopping: claim nothing more, but keep renewing the leases of the jobs
        still running until they finish, so no other worker takes them meanwhile."""
        next_beat = time.monotonic() + self.lease_seconds / 3
        while self._in_flight:
            if time.monotonic() >= next_beat:
                await self._heartbeat(runner, list(self._in_flight.values()))
                next_beat = time.monotonic() + self.lease_seconds / 3
            running = list(self._in_flight)  # the heartbeat's await may have seen the last end
            if running:
                await asyncio.wait(running, timeout=min(self.poll_seconds, self.lease_seconds / 3))

    async def _heartbeat(self, runner: BatchRunner, job_ids: list[str]) -> None:
        """Renew the leases of running jobs, so none is claimed twice while it runs."""
        if not job_ids:
            return
        until = self.ctx.now() + dt.timedelta(seconds=self.lease_seconds)
        try:
            await runner.batcher.run(
                lambda uow: uow.outbox.extend_leases(
                    worker_id=self.worker_id, job_ids=job_ids, lease_until=until
                )
            )
        except Exception:  # a missed beat is retried at the next one
            log.exception("worker.heartbeat_failed")

    async def _prune(self, runner: BatchRunner) -> None:
        """Delete done jobs past their retention; a failure waits for the next round."""
        try:
            await runner.in_thread(lambda: jobs.prune_done(self.ctx))
        except Exception:
            log.exception("worker.prune_failed")
