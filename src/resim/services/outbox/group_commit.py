"""Group commit: units of work from many coroutines in few shared transactions.

A *unit* is a function of one :class:`~resim.services.unit_of_work.UnitOfWork`
that never commits. :class:`TxBatcher` runs the units that the coroutines on
one event loop hand it, in the order of their keys (request ids), in ONE
transaction on its database thread: while that transaction runs, the next
units gather, so a batch of 32 jobs costs about as many transactions as one
job. A unit that raises rolls the shared transaction back; the batcher then
runs each unit of that batch in its own transaction, so one unit's failure
never loses another's work. Every unit's caller learns the outcome after the
commit (``await run(...)``).

A unit handed over with ``eager=False`` (a job's closing outbox write: its
call outcomes and ``done``) does not start a transaction of its own: it rides
along with the next transaction another unit starts (the worker's next claim
follows at once, since the job's slot is free), or, when none comes, with one
started :data:`LAZY_DELAY_SECONDS` later.

:class:`Lanes` runs several batchers (PostgreSQL: their round trips overlap),
filling the first lane and spilling to the next only while the first is
backed up, so a light load still shares one transaction.

A unit may hand its outbox writes over as :class:`OutboxWrites` instead of
writing them itself: the batcher writes those of every unit of a transaction
together, one statement each (executemany): the call outcomes first, before
any unit runs (a unit may read its job's attempt rows), and the attempt rows
and the jobs' ends last, just before the commit. So a transaction of 30 jobs
costs three outbox statements, not 60-90, and each write still commits with
its unit (a unit run again alone, after another one failed, hands its writes
again; none are written twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from resim.services.context import ServiceContext
from resim.services.ports import AttemptOutcome, JobFinish
from resim.services.unit_of_work import UnitOfWork

T = TypeVar("T")
Unit = Callable[[UnitOfWork], T]

MAX_UNITS_PER_TRANSACTION = 64  # bounds how long one batch holds its locks
LAZY_DELAY_SECONDS = 0.05  # how long a lazy unit waits for company at most
SPILL_AT = 4  # units waiting in a lane before new work takes the next lane


@dataclass
class OutboxWrites:
    """The outbox writes of one unit, written by its transaction (module docstring).

    ``outcomes`` are written before the transaction's units run; ``attempts``
    (rows of ``external_call``, state ``started``) and ``finishes`` after them,
    before the commit. A unit that adds to ``attempts`` or ``finishes`` clears
    what it added when it runs again. ``sealed``: taken by a transaction (set
    on the event loop's thread), so nothing may be added from outside a unit.
    """

    outcomes: list[AttemptOutcome] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    finishes: list[JobFinish] = field(default_factory=list)
    sealed: bool = False


def write_before(uow: UnitOfWork, writes: list[OutboxWrites]) -> None:
    """The call outcomes of ``writes``, in one statement (in id order: the same
    row lock order in every transaction)."""
    outcomes = sorted((o for w in writes for o in w.outcomes), key=lambda o: o.call_id)
    uow.outbox.record_outcomes(outcomes)


def write_after(uow: UnitOfWork, writes: list[OutboxWrites]) -> None:
    """The attempt rows and the jobs' ends of ``writes``, one statement each."""
    uow.outbox.start_attempts([row for w in writes for row in w.attempts])
    finishes = sorted((f for w in writes for f in w.finishes), key=lambda f: f.job_id)
    uow.outbox.finish(finishes)


@dataclass
class _Pending:
    unit: Callable[[UnitOfWork], Any]
    future: asyncio.Future[Any]
    key: str
    eager: bool
    writes: OutboxWrites | None = None


class TxBatcher:
    """Group commit on one database thread (see the module docstring).

    ``executor`` is the database thread (one: the units of a batch run one
    after another on one connection). Use from one event loop.
    """

    def __init__(self, ctx: ServiceContext, executor: Executor) -> None:
        self._ctx = ctx
        self.executor = executor
        self._queue: list[_Pending] = []
        self._eager = 0  # eager units in the queue
        self._drainer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.transactions = 0
        self.units = 0

    @property
    def waiting(self) -> int:
        """Units queued for the next transaction."""
        return len(self._queue)

    async def run(
        self,
        unit: Unit[T],
        *,
        key: str | None = None,
        eager: bool = True,
        writes: OutboxWrites | None = None,
    ) -> T:
        """Run ``unit`` in the next shared transaction; return its result after
        the commit (or raise what it raised, its own writes rolled back).
        ``eager=False``: wait for a transaction another unit starts (at most
        :data:`LAZY_DELAY_SECONDS`). ``writes``: outbox writes that commit
        with the unit (:class:`OutboxWrites`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Pending(unit, future, key or "", eager, writes))
        if eager:
            self._eager += 1
            self._start(loop)
        elif self._timer is None and not self._draining():
            self._timer = loop.call_later(LAZY_DELAY_SECONDS, self._start, loop, True)
        return await future

    def flush(self) -> None:
        """Start a transaction for the lazy units now, if any wait."""
        if self._queue:
            self._start(asyncio.get_running_loop(), lazy_too=True)

    def _draining(self) -> bool:
        return self._drainer is not None and not self._drainer.done()

    def _start(self, loop: asyncio.AbstractEventLoop, lazy_too: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._draining():
            self._drainer = loop.create_task(self._drain(lazy_too))

    async def _drain(self, lazy_too: bool) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and (self._eager or lazy_too):
            await asyncio.sleep(0)  # let every coroutine that is ready add its unit
            batch = self._queue[:MAX_UNITS_PER_TRANSACTION]
            del self._queue[: len(batch)]
            self._eager -= sum(1 for item in batch if item.eager)
            for item in batch:
                if item.writes is not None:
                    item.writes.sealed = True
            try:
                results = await loop.run_in_executor(self.executor, self._execute, batch)
            except BaseException as exc:  # the executor is gone (stopping): fail them all
                results = [(False, exc)] * len(batch)
            for item, (ok, value) in zip(batch, results, strict=True):
                if item.future.done():
                    continue
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(value)
        if self._queue and self._timer is None:  # lazy units left: their deadline
            self._timer = loop.call_later(LAZY_DELAY_SECONDS, self._start, loop, True)

    def _execute(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        # The same lock order in every batch (PostgreSQL row locks): fewer deadlocks
        # between two worker processes, and the API's single-request units.
        order = sorted(range(len(batch)), key=lambda i: batch[i].key)
        self.units += len(batch)
        try:
            out = self._transaction([batch[i] for i in order])
            self.transactions += 1
            return [(True, value) for _i, value in sorted(zip(order, out, strict=True))]
        except Exception as exc:
            self.transactions += 1
            if len(batch) == 1:
                return [(False, exc)]
        results: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        for i in order:  # one unit failed: each alone, so the others still commit
            self.transactions += 1
            try:
                results[i] = (True, self._transaction([batch[i]])[0])
            except Exception as exc:
                results[i] = (False, exc)
        return results

    def _transaction(self, items: list[_Pending]) -> list[Any]:
        """Run ``items`` in order in one transaction with their outbox writes; commit."""
        writes = [item.writes for item in items if item.writes is not None]
        with self._ctx.uow() as uow:
            write_before(uow, writes)
            out = [item.unit(uow) for item in items]
            write_after(uow, writes)
            uow.commit()
        return out


class Lanes:
    """Several :class:`TxBatcher` lanes, each with its own database thread and
    connection. On PostgreSQL the lanes' round trips overlap (one thread would
    wait for every statement of every job in turn); on SQLite, where writers
    take turns anyway, the runner uses one.

    A unit takes the lane where a unit of its key (request) is still queued or
    running, so one request's units keep their order; otherwise the first lane
    with fewer than :data:`SPILL_AT` units waiting: a light load shares one
    transaction, a heavy one spreads. Claims, heartbeats and lazy units (no
    key) take the first lane, where the claims start transactions.
    """

    def __init__(self, batchers: list[TxBatcher]) -> None:
        self.batchers = batchers
        self._busy: dict[str, tuple[int, int]] = {}  # key -> (lane, units in it)

    @property
    def executor(self) -> Executor:
        return self.batchers[0].executor

    @property
    def transactions(self) -> int:
        return sum(b.transactions for b in self.batchers)

    async def run(
        self,
        unit: Unit[T],
        *,
        key: str | None = None,
        eager: bool = True,
        writes: OutboxWrites | None = None,
    ) -> T:
        if not key or len(self.batchers) == 1:
            return await self.batchers[0].run(unit, key=key, eager=eager, writes=writes)
        lane, count = self._busy.get(key, (-1, 0))
        if lane < 0:
            lane = next(
                (i for i, b in enumerate(self.batchers) if b.waiting < SPILL_AT),
                min(range(len(self.batchers)), key=lambda i: self.batchers[i].waiting),
            )
        self._busy[key] = (lane, count + 1)
        try:
            return await self.batchers[lane].run(unit, key=key, eager=eager, writes=writes)
        finally:
            lane, count = self._busy[key]
            if count <= 1:
                del self._busy[key]
            else:
                self._busy[key] = (lane, count - 1)
