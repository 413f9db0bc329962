"""The closing outbox writes of jobs that ended with no state change to make.

A mail or a text sent leaves two writes: the call's outcome on its attempt
row and the job's ``done``. :class:`LateFinishes` gathers them from every job
that ends while one lazy unit (``group_commit``: it rides with the next
shared transaction) waits, and writes them all in two statements when that
unit runs, instead of two per job. The batch is sealed when its unit first
runs, so a unit run again (its shared transaction rolled back because
another unit failed) writes the very same rows; what ends later goes to the
next batch. Killed before the commit: the jobs run again after their leases,
with the same Message-ID / message id (``batch_runner``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from resim.services.ports import AttemptOutcome, JobFinish
from resim.services.unit_of_work import UnitOfWork

log = structlog.get_logger()

LazyRun = Callable[[Callable[[UnitOfWork], None]], Awaitable[None]]


@dataclass
class _Batch:
    outcomes: list[AttemptOutcome] = field(default_factory=list)
    finishes: list[JobFinish] = field(default_factory=list)
    sealed: bool = False


class LateFinishes:
    """Gathers closing writes; ``run_lazily`` hands a unit to the shared
    transactions (``TxBatcher.run(unit, eager=False)``). Use from one loop."""

    def __init__(self, run_lazily: LazyRun) -> None:
        self._run_lazily = run_lazily
        self._lock = threading.Lock()  # the unit seals its batch on the database thread
        self._open: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, outcomes: list[AttemptOutcome], finish: JobFinish) -> None:
        with self._lock:
            batch = self._open
            if batch is not None and not batch.sealed:
                batch.outcomes.extend(outcomes)
                batch.finishes.append(finish)
                return
            batch = self._open = _Batch(list(outcomes), [finish])
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: _Batch) -> None:
        def unit(uow: UnitOfWork) -> None:
            with self._lock:
                batch.sealed = True
            uow.outbox.record_outcomes(batch.outcomes)
            uow.outbox.finish(batch.finishes)

        try:
            await self._run_lazily(unit)
        except Exception as exc:
            # Not recorded: the jobs' leases run out and they run again (the same
            # Message-ID / message id), as after a crash.
            log.error("jobs.finish_failed", jobs=len(batch.finishes), error=type(exc).__name__)

    @property
    def pending(self) -> bool:
        return bool(self._tasks)

    async def wait(self) -> None:
        """Until every batch handed over so far is written (or failed)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
