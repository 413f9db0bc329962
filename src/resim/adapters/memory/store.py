"""The committed state of the in-memory unit of work, and its transactions.

A :class:`MemoryStore` is what a database is to :class:`SqlUnitOfWork`: the
objects as last committed. A :class:`MemoryUnitOfWork` holds the store's lock
from ``__enter__`` to ``__exit__`` (units of work run one at a time, as
SQLite's exclusive transactions do), changes the stored objects in place, and
on rollback puts back the attribute values each touched object had when the
unit first saw it, and forgets the objects it added.

Uniqueness the database enforces (see ``resim.adapters.db.orm``) is checked at
``flush`` and ``commit`` and raises :class:`~resim.services.unit_of_work.Duplicate`.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from resim.adapters.memory.camara import MemoryCamaraEvent, MemorySubscription
from resim.domain.loss import LossReport
from resim.domain.model import (
    AuditEvent,
    Brand,
    Line,
    ReplacementRequest,
    Sim,
    SimChange,
    Subscriber,
)
from resim.domain.security import IdentityCheck
from resim.services.unit_of_work import Duplicate

# Each kind of object, the attribute that is its key, and the attributes that
# are UNIQUE where not None (as the database's constraints).
KEYS: dict[type, str] = {
    Brand: "id",
    Subscriber: "id",
    Line: "id",
    Sim: "iccid",
    ReplacementRequest: "id",
    SimChange: "id",
    LossReport: "id",
    IdentityCheck: "id",
    MemorySubscription: "id",
    MemoryCamaraEvent: "id",
}
UNIQUE: dict[type, tuple[str, ...]] = {
    Line: ("msisdn",),
    Sim: ("imsi", "bound_line_id"),
    ReplacementRequest: ("open_line_id", "new_iccid"),
    SimChange: ("request_id",),
    LossReport: ("open_line_id",),
}


@dataclass
class MemoryJob:
    """A job row of the outbox, as the in-memory unit of work keeps it."""

    id: str
    kind: str
    request_id: str | None
    payload: dict[str, Any]
    run_after: dt.datetime
    created_at: dt.datetime
    state: str = "pending"
    attempts: int = 0
    worker_id: str | None = None
    lease_until: dt.datetime | None = None
    last_error: str | None = None
    finished_at: dt.datetime | None = None


@dataclass
class MemoryCall:
    """An attempt record of a peer call (``external_call``)."""

    id: str
    request_id: str | None
    target: str
    state: str  # started | succeeded | failed
    retryable: bool | None = None
    job_id: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error_code: str | None = None


@dataclass
class MemoryStore:
    """Objects as committed, by kind and key; jobs, calls and audit events in order."""

    objects: dict[type, dict[Any, Any]] = field(default_factory=lambda: {k: {} for k in KEYS})
    jobs: dict[str, MemoryJob] = field(default_factory=dict)
    calls: list[MemoryCall] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    # attempt_counter.last_failure_at by key (resim.services.verification.attempts still
    # writes its counters in SQL; tests set these by hand)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # The stores of resim.services.stores kept in memory (adapters/memory/attached.py)
    side_stores: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: type) -> dict[Any, Any]:
        return self.objects[kind]


def _state_of(obj: object) -> dict[str, Any]:
    # SQLAlchemy instruments mapped classes in processes that also use the
    # database; its bookkeeping attribute is not part of the object.
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if not k.startswith("_sa_")}


class Transaction:
    """What one unit of work changed, so that it can be undone or checked."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._before: dict[int, tuple[object, dict[str, Any]]] = {}
        self._added: list[tuple[type, Any]] = []
        self._jobs: list[str] = []
        self._calls: list[MemoryCall] = []

    def seen(self, obj: Any) -> Any:
        """Remember ``obj``'s values the first time this unit hands it out."""
        if obj is not None and id(obj) not in self._before:
            self._before[id(obj)] = (obj, _state_of(obj))
        return obj

    def add(self, obj: object) -> None:
        kind = type(obj)
        key = getattr(obj, KEYS[kind])
        table = self.store.of(kind)
        if key in table and table[key] is not obj:
            raise Duplicate(f"a {kind.__name__} with key {key!r} exists already")
        table[key] = obj
        self._added.append((kind, key))
        self._before[id(obj)] = (obj, {})

    def touched(self) -> list[object]:
        """Every object this unit handed out or added, in that order."""
        return [obj for obj, _values in self._before.values()]

    def add_job(self, job: MemoryJob) -> None:
        self.store.jobs[job.id] = job
        self._jobs.append(job.id)

    def add_call(self, call: MemoryCall) -> None:
        if any(c.id == call.id for c in self.store.calls):
            raise Duplicate(f"an attempt row with id {call.id!r} exists already")
        self.store.calls.append(call)
        self._calls.append(call)

    def check(self) -> None:
        """Raise Duplicate if a UNIQUE attribute holds one value twice."""
        for kind, attributes in UNIQUE.items():
            for attribute in attributes:
                seen: set[Any] = set()
                for obj in self.store.of(kind).values():
                    value = getattr(obj, attribute)
                    if value is None:
                        continue
                    if value in seen:
                        raise Duplicate(f"{kind.__name__}.{attribute} {value!r} is taken")
                    seen.add(value)

    def rollback(self) -> None:
        for kind, key in self._added:
            self.store.of(kind).pop(key, None)
        for job_id in self._jobs:
            self.store.jobs.pop(job_id, None)
        for call in self._calls:
            self.store.calls.remove(call)
        for obj, values in self._before.values():
            for name, value in values.items():  # none for objects added since
                setattr(obj, name, value)
        self.forget()

    def committed(self) -> None:
        """The current values become what a later rollback returns to."""
        for key, (obj, _values) in list(self._before.items()):
            self._before[key] = (obj, _state_of(obj))
        self._added.clear()
        self._jobs.clear()
        self._calls.clear()

    def forget(self) -> None:
        self._before.clear()
        self._added.clear()
        self._jobs.clear()
        self._calls.clear()
