"""The unit of work: one transaction, committed explicitly, as the use cases see it.

``with ctx.uow() as uow: ...; uow.commit()`` -- leaving the block without
commit rolls back, and so drops every job enqueued inside it (the outbox shares
the transaction).

:class:`UnitOfWork` is a Protocol. The composition root (``resim.bootstrap``)
hands the use cases a factory of one implementation:
:class:`resim.adapters.db.unit_of_work.SqlUnitOfWork` (SQLAlchemy, SQLite or
PostgreSQL) in every process, :class:`resim.adapters.memory.MemoryUnitOfWork`
in use-case tests that need no database.

Domain events a request records (``ReplacementRequest.events``) are turned
into audit rows and jobs by :mod:`resim.services.replacement.event_handlers` for every
request this unit of work loaded or added: before each hand-written audit row
or job (so the order of the log follows the order things happened), at
``flush`` and at ``commit``. Every implementation does this.

Audit events (SEC-09) are held until :meth:`UnitOfWork.commit`, which appends
them to the hash chain as the transaction's last write. Consequence: a
transaction does not see its own audit events in queries before it commits.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from resim.domain.model import AuditEvent, ReplacementRequest
from resim.services.replacement.event_handlers import effects
from resim.services.repositories import (
    BrandRepository,
    ExternalCallRepository,
    IdentityCheckRepository,
    JobRepository,
    LineRepository,
    LossReportRepository,
    RequestRepository,
    SimChangeRepository,
    SimRepository,
    StockRepository,
    SubscriberRepository,
)
from resim.services.stores.access import ApiClientStore, AuthSessionStore, StaffStore
from resim.services.stores.alerts import AlertStore
from resim.services.stores.audit import AuditLogStore
from resim.services.stores.camara import CamaraStore
from resim.services.stores.counters import AttemptCounterStore
from resim.services.stores.dashboard import DashboardQueries
from resim.services.stores.export import ExportQueries
from resim.services.stores.lookups import LookupQueries
from resim.services.stores.reports import ReportQueries
from resim.services.stores.sealed import SealedValueStore

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from resim.services.ports import JobQueue


class Duplicate(Exception):
    """A write broke a uniqueness the store enforces (one open request per line,
    one bound SIM per line, ...): raised by ``flush`` and ``commit``. Use cases
    that race for such a slot catch it and answer with a Conflict."""


def new_id() -> str:
    return uuid.uuid4().hex


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_ids(count: int) -> list[str]:
    """``count`` ids like :func:`new_id` (random UUID4s as hex), for bulk writes.

    Same format and randomness (os.urandom) as ``uuid.uuid4().hex``, without
    building a UUID object per id.
    """
    raw = os.urandom(16 * count)
    return [
        "%032x" % ((int.from_bytes(raw[i : i + 16], "big") & _V4_CLEAR) | _V4_SET)
        for i in range(0, 16 * count, 16)
    ]


class UnitOfWork(Protocol):
    """One transaction and the repositories that read and write inside it.

    The repositories exist only inside the ``with`` block. ``commit`` makes
    every change, job and audit event of the block durable at once; leaving
    the block without it discards them all.
    """

    @property
    def requests(self) -> RequestRepository: ...
    @property
    def lines(self) -> LineRepository: ...
    @property
    def sims(self) -> SimRepository: ...
    @property
    def stock(self) -> StockRepository: ...
    @property
    def subscribers(self) -> SubscriberRepository: ...
    @property
    def brands(self) -> BrandRepository: ...
    @property
    def sim_changes(self) -> SimChangeRepository: ...
    @property
    def loss_reports(self) -> LossReportRepository: ...
    @property
    def identity_checks(self) -> IdentityCheckRepository: ...
    @property
    def jobs(self) -> JobRepository: ...
    @property
    def calls(self) -> ExternalCallRepository: ...

    # Stores of the console, access, audit and CAMARA sides (services/stores/):
    # built on first use, so a unit of work that does not use one costs nothing.
    @property
    def staff(self) -> StaffStore: ...
    @property
    def api_clients(self) -> ApiClientStore: ...
    @property
    def auth_sessions(self) -> AuthSessionStore: ...
    @property
    def attempts(self) -> AttemptCounterStore: ...
    @property
    def alerts(self) -> AlertStore: ...
    @property
    def audit_log(self) -> AuditLogStore: ...
    @property
    def lookups(self) -> LookupQueries: ...
    @property
    def dashboard(self) -> DashboardQueries: ...
    @property
    def camara(self) -> CamaraStore: ...
    @property
    def sealed(self) -> SealedValueStore: ...
    @property
    def export(self) -> ExportQueries: ...
    @property
    def reports(self) -> ReportQueries: ...

    @property
    def session(self) -> Session:
        """The SQLAlchemy session, for modules not yet moved to the repositories.

        Transitional (issue 16): an implementation without a database raises
        ``RuntimeError`` naming the module's need."""
        ...

    @property
    def outbox(self) -> JobQueue:
        """The job table and attempt rows in this transaction, for the worker's
        claims, leases, outcomes and attempt rows (``ports.JobQueue``; never commits)."""
        ...

    @property
    def dialect(self) -> str:
        """``"sqlite"``, ``"postgresql"``, or ``"memory"``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make the block's changes, jobs and audit events durable together
        (raises :class:`Duplicate` if a uniqueness is broken)."""
        ...

    def flush(self) -> None:
        """Write pending changes now, without committing; raises :class:`Duplicate`
        if a uniqueness is broken."""
        ...

    def enqueue(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        """Write a job in this transaction; it exists only if the transaction commits."""
        ...

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
        """Append an audit event in this transaction (never a secret in ``detail``).

        It is written, chained, when the transaction commits.
        """
        ...


class UnitOfWorkFactory(Protocol):
    """Makes a new unit of work (``ServiceContext.uow_factory``).

    ``read_only``: the block only reads. On SQLite it then begins a deferred
    transaction, which never queues for (nor holds) the write lock; the caller
    must not write in it. Other implementations may ignore the flag.
    """

    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...


class _AddJob(Protocol):
    def __call__(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str: ...


def publish_events(request: ReplacementRequest, audit: list[AuditEvent], add_job: _AddJob) -> None:
    """Take the events ``request`` recorded; append their audit rows to ``audit``
    and queue their jobs with ``add_job``. Every implementation of the unit of
    work calls this for each request it loaded or added (see the module
    docstring for when)."""
    for recorded in request.take_events():
        done = effects(recorded)
        for entry in done.audit:
            audit.append(
                AuditEvent(
                    id=new_id(),
                    at=entry.at,
                    actor=entry.actor,
                    action=entry.action,
                    object_type=entry.object_type,
                    object_id=entry.object_id,
                    detail=entry.detail,
                    source=entry.source,
                )
            )
        for job in done.jobs:
            add_job(
                job.kind,
                at=job.at,
                request_id=job.request_id,
                payload=job.payload,
                run_after=job.run_after,
            )
