"""An in-memory unit of work: the repositories without a database, for use-case tests.

``ServiceContext(uow_factory=memory_uow_factory(MemoryStore()), ...)`` runs the
use cases converted to the repositories in microseconds per unit of work. It
keeps the unit-of-work contract (:mod:`resim.services.unit_of_work`): nothing a
block did survives it unless it commits; jobs and audit events are kept only on
commit; uniqueness is checked at flush and commit. It has no SQL session:
``uow.session`` raises, naming the module that still needs one.
"""

from __future__ import annotations

import datetime as dt
import sys
from types import TracebackType
from typing import Any, NoReturn, Self

from resim.adapters.memory.attached import MemoryStores
from resim.adapters.memory.camara import InMemoryCamaraStore
from resim.adapters.memory.outbox import MemoryOutbox
from resim.adapters.memory.repositories import (
    MemoryBrands,
    MemoryExternalCalls,
    MemoryIdentityChecks,
    MemoryJobs,
    MemoryLines,
    MemoryLossReports,
    MemoryRequests,
    MemorySimChanges,
    MemorySims,
    MemoryStock,
    MemorySubscribers,
)
from resim.adapters.memory.store import MemoryCall, MemoryJob, MemoryStore, Transaction
from resim.domain.model import AuditEvent, ReplacementRequest
from resim.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, new_id, publish_events

__all__ = [
    "MemoryCall",
    "MemoryJob",
    "MemoryStore",
    "MemoryUnitOfWork",
    "memory_uow_factory",
]


class MemoryUnitOfWork(MemoryStores):
    """A unit of work on a :class:`MemoryStore` (one at a time per store)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._tx: Transaction | None = None
        self._audit: list[AuditEvent] = []
        tx = Transaction(store)
        self.requests = MemoryRequests(store, tx)
        self.lines = MemoryLines(store, tx)
        self.sims = MemorySims(store, tx)
        self.stock = MemoryStock(store, tx)
        self.subscribers = MemorySubscribers(store, tx)
        self.brands = MemoryBrands(store, tx)
        self.sim_changes = MemorySimChanges(store, tx)
        self.loss_reports = MemoryLossReports(store, tx)
        self.identity_checks = MemoryIdentityChecks(store, tx)
        self.jobs = MemoryJobs(store, tx)
        self.calls = MemoryExternalCalls(store, tx)
        self._outbox = MemoryOutbox(store, tx)
        self._camara = InMemoryCamaraStore(store, tx)
        self._pending_tx = tx

    @property
    def session(self) -> NoReturn:
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        raise RuntimeError(
            f"{caller} uses uow.session, which the in-memory unit of work does not have:"
            " move it to the repositories (resim.services.repositories) or test it on SQLite"
        )

    @property
    def outbox(self) -> MemoryOutbox:
        return self._outbox

    @property
    def camara(self) -> InMemoryCamaraStore:
        return self._camara

    @property
    def dialect(self) -> str:
        return "memory"

    def __enter__(self) -> Self:
        self.store.lock.acquire()
        self._tx = self._pending_tx
        self._audit = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None:
                self._tx.rollback()
        finally:
            self._tx = None
            self._audit = []
            self.store.lock.release()

    def _open(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._tx

    def publish_events(self) -> None:
        """Turn the events requests of this unit recorded into audit rows and jobs."""
        for obj in self._open().touched():
            if isinstance(obj, ReplacementRequest):
                publish_events(obj, self._audit, self.jobs.add)

    def commit(self) -> None:
        tx = self._open()
        self.publish_events()
        tx.check()
        self.store.audit.extend(self._audit)
        self._audit = []
        tx.committed()

    def flush(self) -> None:
        self._open()
        self.publish_events()
        self._open().check()

    def enqueue(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        self._open()
        self.publish_events()
        return self.jobs.add(
            kind, at=at, request_id=request_id, payload=payload, run_after=run_after
        )

    def audit(
        self,
        *,
        at: dt.datetime,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self._open()
        self.publish_events()
        self._audit.append(
            AuditEvent(
                id=new_id(),
                at=at,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
                source=source,
            )
        )


def memory_uow_factory(store: MemoryStore) -> UnitOfWorkFactory:
    """A factory of units of work on ``store`` (for ``ServiceContext.uow_factory``);
    ``read_only`` changes nothing here."""

    def make(*, read_only: bool = False) -> UnitOfWork:
        return MemoryUnitOfWork(store)

    return make
