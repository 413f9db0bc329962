"""The closing outbox writes of jobs that ended with no state change to make.

A mail or a text sent leaves two writes: the call's outcome on its attempt
row and the job's ``done``. :class:`LateFinishes` gathers them from every job
that ends while one lazy unit (``group_commit``: it rides with the next
shared transaction) waits, and hands them to that transaction as
:class:`~resim.services.outbox.group_commit.OutboxWrites`, written with the
other units' outbox writes in the same statements. The batch is sealed when
a transaction takes it (on the loop's thread, where :meth:`LateFinishes.add`
runs too), so a unit run again (its shared transaction rolled back because
another unit failed) writes the very same rows; what ends later goes to the
next batch. Killed before the commit: the jobs run again after their leases,
with the same Message-ID / message id (``batch_runner``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from resim.services.outbox.group_commit import OutboxWrites
from resim.services.ports import AttemptOutcome, JobFinish
from resim.services.unit_of_work import UnitOfWork

log = structlog.get_logger()

LazyRun = Callable[[Callable[[UnitOfWork], None], OutboxWrites], Awaitable[None]]


def _nothing(_uow: UnitOfWork) -> None:
    return None


class LateFinishes:
    """Gathers closing writes; ``run_lazily(unit, writes)`` hands a unit and its
    writes to the shared transactions (``TxBatcher.run(unit, eager=False,
    writes=...)``). Use from one loop, on its thread."""

    def __init__(self, run_lazily: LazyRun) -> None:
        self._run_lazily = run_lazily
        self._open: OutboxWrites | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, outcomes: list[AttemptOutcome], finish: JobFinish) -> None:
        batch = self._open
        if batch is not None and not batch.sealed:
            batch.outcomes.extend(outcomes)
            batch.finishes.append(finish)
            return
        batch = self._open = OutboxWrites(outcomes=list(outcomes), finishes=[finish])
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: OutboxWrites) -> None:
        try:
            await self._run_lazily(_nothing, batch)
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
