"""``resim worker``: runs durable jobs, many in flight at once.

One claiming loop feeds a thread pool: an SM-DP+ call may take a second, so
a worker keeps ``concurrency`` jobs running. Several worker processes may run
against PostgreSQL (claims use SKIP LOCKED). SIGTERM/SIGINT stop claiming and
let running jobs finish; SIGKILL is survived by leases (see services.jobs),
which the claiming loop renews every third of a lease while a job runs.
With ``prune_every_seconds`` the loop also deletes done jobs past their
retention (:func:`resim.services.jobs.prune_done`) at start and then at that
interval; ``resim worker`` sets it from RESIM_JOB_PRUNE_INTERVAL_SECONDS.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from resim.adapters.mail.templates import preload_templates
from resim.services import jobs
from resim.services.context import ServiceContext
from resim.services.external import JobRecord

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
        self._in_flight: dict[Future[str], str] = {}  # future -> job id
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.counts = {"done": 0, "retry": 0, "dead": 0}
        preload_templates()  # compile mail templates here, not on 32 threads at once

    def _run_one(self, job: JobRecord) -> str:
        try:
            outcome = jobs.run(self.ctx, job, worker_id=self.worker_id)
        except Exception:  # never let one job kill the pool
            log.exception("worker.job_error", job_id=job.id, kind=job.kind)
            outcome = "retry"
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._wake.set()
        return outcome

    def run(self, *, until_idle: bool = False) -> None:
        """Claim and run jobs until stopped (or, with ``until_idle``, until none is due)."""
        log.info("worker.started", worker_id=self.worker_id, concurrency=self.concurrency)
        with ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="resim-job"
        ) as pool:
            next_beat = time.monotonic() + self.lease_seconds / 3
            next_prune = time.monotonic()
            while not self.stop_event.is_set():
                if self.prune_every_seconds and time.monotonic() >= next_prune:
                    self._prune()
                    next_prune = time.monotonic() + self.prune_every_seconds
                with self._lock:
                    self._in_flight = {f: i for f, i in self._in_flight.items() if not f.done()}
                    free = self.concurrency - len(self._in_flight)
                    running = list(self._in_flight.values())
                if time.monotonic() >= next_beat:
                    self._heartbeat(running)
                    next_beat = time.monotonic() + self.lease_seconds / 3
                claimed: list[JobRecord] = []
                if free > 0:
                    try:
                        claimed = jobs.claim(
                            self.ctx,
                            worker_id=self.worker_id,
                            limit=free,
                            lease_seconds=self.lease_seconds,
                            running=running,
                        )
                    except Exception:
                        log.exception("worker.claim_failed")
                        time.sleep(self.poll_seconds)
                for job in claimed:
                    fut = pool.submit(self._run_one, job)
                    with self._lock:
                        self._in_flight[fut] = job.id
                if claimed:
                    continue
                with self._lock:
                    busy = bool(self._in_flight)
                if until_idle and not busy:
                    break
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
            self._drain(next_beat)
        log.info("worker.stopped", worker_id=self.worker_id, **self.counts)

    def _drain(self, next_beat: float) -> None:
        """Stopping: claim nothing more, but keep renewing the leases of the jobs
        still running until they finish, so no other worker takes them meanwhile."""
        while True:
            with self._lock:
                self._in_flight = {f: i for f, i in self._in_flight.items() if not f.done()}
                running = list(self._in_flight.values())
            if not running:
                return
            if time.monotonic() >= next_beat:
                self._heartbeat(running)
                next_beat = time.monotonic() + self.lease_seconds / 3
            self._wake.wait(min(self.poll_seconds, self.lease_seconds / 3))
            self._wake.clear()

    def _heartbeat(self, job_ids: list[str]) -> None:
        """Renew the leases of running jobs, so none is claimed twice while it runs."""
        try:
            jobs.extend_leases(
                self.ctx,
                worker_id=self.worker_id,
                job_ids=job_ids,
                lease_seconds=self.lease_seconds,
            )
        except Exception:  # a missed beat is retried at the next one
            log.exception("worker.heartbeat_failed")

    def _prune(self) -> None:
        """Delete done jobs past their retention; a failure waits for the next round."""
        try:
            jobs.prune_done(self.ctx)
        except Exception:
            log.exception("worker.prune_failed")

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()
