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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork

T = TypeVar("T")
Unit = Callable[[UnitOfWork], T]

MAX_UNITS_PER_TRANSACTION = 64  # bounds how long one batch holds its locks
LAZY_DELAY_SECONDS = 0.05  # how long a lazy unit waits for company at most
SPILL_AT = 4  # units waiting in a lane before new work takes the next lane


@dataclass
class _Pending:
    unit: Callable[[UnitOfWork], Any]
    future: asyncio.Future[Any]
    key: str
    eager: bool


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

    async def run(self, unit: Unit[T], *, key: str | None = None, eager: bool = True) -> T:
        """Run ``unit`` in the next shared transaction; return its result after
        the commit (or raise what it raised, its own writes rolled back).
        ``eager=False``: wait for a transaction another unit starts (at most
        :data:`LAZY_DELAY_SECONDS`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Pending(unit, future, key or "", eager))
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
            with self._ctx.uow() as uow:
                out = {i: batch[i].unit(uow) for i in order}
                uow.commit()
            self.transactions += 1
            return [(True, out[i]) for i in range(len(batch))]
        except Exception as exc:
            self.transactions += 1
            if len(batch) == 1:
                return [(False, exc)]
        results: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        for i in order:  # one unit failed: each alone, so the others still commit
            self.transactions += 1
            try:
                with self._ctx.uow() as uow:
                    value = batch[i].unit(uow)
                    uow.commit()
                results[i] = (True, value)
            except Exception as exc:
                results[i] = (False, exc)
        return results


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

    async def run(self, unit: Unit[T], *, key: str | None = None, eager: bool = True) -> T:
        if not key or len(self.batchers) == 1:
            return await self.batchers[0].run(unit, key=key, eager=eager)
        lane, count = self._busy.get(key, (-1, 0))
        if lane < 0:
            lane = next(
                (i for i, b in enumerate(self.batchers) if b.waiting < SPILL_AT),
                min(range(len(self.batchers)), key=lambda i: self.batchers[i].waiting),
            )
        self._busy[key] = (lane, count + 1)
        try:
            return await self.batchers[lane].run(unit, key=key, eager=eager)
        finally:
            lane, count = self._busy[key]
            if count <= 1:
                del self._busy[key]
            else:
                self._busy[key] = (lane, count - 1)
