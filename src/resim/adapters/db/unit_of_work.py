"""The unit of work on SQLAlchemy: one session, one transaction, committed explicitly.

Implements :class:`resim.services.unit_of_work.UnitOfWork`. Built by the
composition root (``resim.bootstrap``) through :func:`sql_uow_factory`.

Audit events (SEC-09) are held until :meth:`SqlUnitOfWork.commit`, which
appends them to the hash chain as the transaction's last write (see
:mod:`resim.adapters.db.audit_store`). That covers ``uow.audit(...)`` and any
``AuditEvent`` added to the session directly.

Jobs are held too (:class:`~resim.adapters.db.jobs.SqlJobs`) and
written in one INSERT when the unit commits, or first thing when something
in it reads the job table (``jobs.exists``, ``outbox``, the
look-ups). So at commit a unit writes its aggregates' changes in one flush,
its jobs in one statement and its audit rows in one, after one read of the
chain head (issue 16: each job was an INSERT of its own that autoflushed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from resim.adapters.crypto import SecretBox, bind_secrets
from resim.adapters.db.audit_store import append_chained
from resim.adapters.db.engine import READ_ONLY_OPTION
from resim.adapters.db.jobs import SqlExternalCalls, SqlJobs
from resim.adapters.db.orm import start_mappers
from resim.adapters.db.outbox import SqlOutbox
from resim.adapters.db.repositories import (
    SqlBrands,
    SqlIdentityChecks,
    SqlLines,
    SqlLossReports,
    SqlRequests,
    SqlSimChanges,
    SqlSims,
    SqlStock,
    SqlSubscribers,
)
from resim.adapters.db.statements import Statements
from resim.adapters.db.stores import SessionHolder
from resim.adapters.db.stores.attached import SqlStores
from resim.domain.model import AuditEvent, ReplacementRequest
from resim.services.unit_of_work import (
    Duplicate,
    UnitOfWork,
    UnitOfWorkFactory,
    new_id,
    publish_events,
)


class _Repositories:
    """The repositories of one open unit of work, all on its session."""

    __slots__ = (
        "brands",
        "calls",
        "identity_checks",
        "jobs",
        "lines",
        "loss_reports",
        "requests",
        "sim_changes",
        "sims",
        "stock",
        "subscribers",
    )

    def __init__(self, session: Session, q: Statements) -> None:
        self.requests = SqlRequests(session, q)
        self.lines = SqlLines(session, q)
        self.sims = SqlSims(session, q)
        self.stock = SqlStock(session, q)
        self.subscribers = SqlSubscribers(session, q)
        self.brands = SqlBrands(session, q)
        self.sim_changes = SqlSimChanges(session, q)
        self.loss_reports = SqlLossReports(session, q)
        self.identity_checks = SqlIdentityChecks(session, q)
        self.jobs = SqlJobs(session, q)
        self.calls = SqlExternalCalls(session, q)


class SqlUnitOfWork(SqlStores):
    """A SQLAlchemy session wrapped as a context manager with explicit commit."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        secrets: SecretBox | None = None,
        *,
        statements: Statements | None = None,
        read_only: bool = False,
    ) -> None:
        self._factory = session_factory
        # Read-only: on SQLite a deferred transaction, so it never queues for (or
        # holds) the write lock; the caller must not write in it.
        self.read_only = read_only
        self._secrets = secrets
        self._statements = statements or Statements()
        self._session: Session | None = None
        self._repos: _Repositories | None = None
        self._outbox: SqlOutbox | None = None
        self._bound: contextlib.AbstractContextManager[None] | None = None
        self._audit: list[AuditEvent] = []

    @property
    def session(self) -> Session:
        """The session, with the jobs queued so far written: a statement run on
        it may read them, or refer to one (an attempt row's ``job_id``)."""
        session = self._live()
        self.write_jobs()
        return session

    def _live(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._session

    def _holder(self) -> SessionHolder:
        return _StoreView(self)

    @property
    def outbox(self) -> SqlOutbox:
        """The job table and attempt rows in this transaction (``ports.JobQueue``).

        The jobs this unit queued are written first: the outbox reads the job
        table, and an attempt row refers to its job."""
        self.write_jobs()
        if self._outbox is None:
            self._outbox = SqlOutbox(self._live())
        return self._outbox

    def write_jobs(self) -> None:
        """Write the jobs queued so far in this unit (see :class:`SqlJobs`)."""
        self._r().jobs.write()

    @property
    def dialect(self) -> str:
        return self._live().get_bind().dialect.name

    def _r(self) -> _Repositories:
        if self._repos is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._repos

    @property
    def requests(self) -> SqlRequests:
        return self._r().requests

    @property
    def lines(self) -> SqlLines:
        return self._r().lines

    @property
    def sims(self) -> SqlSims:
        return self._r().sims

    @property
    def stock(self) -> SqlStock:
        return self._r().stock

    @property
    def subscribers(self) -> SqlSubscribers:
        return self._r().subscribers

    @property
    def brands(self) -> SqlBrands:
        return self._r().brands

    @property
    def sim_changes(self) -> SqlSimChanges:
        return self._r().sim_changes

    @property
    def loss_reports(self) -> SqlLossReports:
        return self._r().loss_reports

    @property
    def identity_checks(self) -> SqlIdentityChecks:
        return self._r().identity_checks

    @property
    def jobs(self) -> SqlJobs:
        return self._r().jobs

    @property
    def calls(self) -> SqlExternalCalls:
        return self._r().calls

    def __enter__(self) -> Self:
        # Encrypted columns (EncryptedText) use these keys while the block runs.
        self._bound = bind_secrets(self._secrets)
        self._bound.__enter__()
        self._session = self._factory()
        self._repos = _Repositories(self._session, self._statements)
        self._audit = []
        if self.read_only:
            self._session.connection(execution_options={READ_ONLY_OPTION: True})
        # An AuditEvent added to the session by hand joins the chain too, instead
        # of being flushed as an unchained row (through :func:`_before_flush`, a
        # listener on the factory: one on each session cost a listener registry).
        self._session.info["uow"] = self
        return self

    def take_audit_events(self, session: Session) -> None:
        for obj in list(session.new):
            if isinstance(obj, AuditEvent):
                session.expunge(obj)
                self._audit.append(obj)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._live().rollback()
        finally:
            self._live().close()
            self._live().info.pop("uow", None)
            self._session = None
            self._repos = None
            self._outbox = None
            self._audit = []
            if self._bound is not None:
                self._bound.__exit__(None, None, None)
                self._bound = None

    def commit(self) -> None:
        """Commit; audit events of this transaction are chained just before.

        The chain head lock is taken here, after every other write, and held
        only until the commit right after it.
        """
        with _duplicates():
            self.publish_events()
            self._live().flush()  # also moves hand-added AuditEvents to self._audit
            self._r().jobs.write()
            if self._audit:
                pending, self._audit = self._audit, []
                append_chained(self._live(), pending)
            self._live().commit()

    def flush(self) -> None:
        with _duplicates():
            self.publish_events()
            self._live().flush()

    def publish_events(self) -> None:
        """Turn the events requests in this session recorded into audit rows and jobs."""
        session = self._live()
        for obj in [*session.identity_map.values(), *session.new]:
            if isinstance(obj, ReplacementRequest):
                publish_events(obj, self._audit, self._r().jobs.add)

    # ------------------------------------------------------------ outbox

    def enqueue(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        """Queue a job in this transaction; it exists only if the transaction commits.

        Held and written with the unit's other jobs (:class:`SqlJobs`); the
        request events published first keep the jobs in the order things happened."""
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
        """Append an audit event in this transaction (never a secret in ``detail``).

        It is written, chained, when the transaction commits.
        """
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


class _StoreView:
    """The unit of work as its SQL stores see it (``stores.SessionHolder``): its
    session as it is, without the held jobs written first; a store that reads
    the job table calls :meth:`write_jobs` itself."""

    __slots__ = ("_uow",)

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def session(self) -> Session:
        return self._uow._live()

    @property
    def dialect(self) -> str:
        return self._uow.dialect

    def write_jobs(self) -> None:
        self._uow.write_jobs()


class SqlDuplicate(Duplicate, sa.exc.IntegrityError):
    """A UNIQUE constraint refused a write: the services' :class:`Duplicate`, and
    still the driver's IntegrityError for callers that catch that."""


@contextlib.contextmanager
def _duplicates() -> Iterator[None]:
    try:
        yield
    except sa.exc.IntegrityError as exc:
        if isinstance(exc, Duplicate):
            raise
        raise SqlDuplicate(
            exc.statement, exc.params, exc.orig or exc, hide_parameters=exc.hide_parameters
        ) from exc


def _hold_loaded(session: Session, instance: object) -> None:
    """Keep every object a unit of work loaded alive until it ends.

    The session's identity map holds its objects weakly: a request or SIM that
    one function loaded and dropped was loaded again by the next (a cut-over's
    unit read the same subscriber twice, the texts of one batch the same SIM
    three times). Held here, the next ``get`` of it is answered from the map."""
    held: list[object] = session.info.setdefault("held", [])
    held.append(instance)


def _before_flush(session: Session, *_args: object) -> None:
    """Hand the AuditEvents added to a unit of work's session to the unit."""
    uow = session.info.get("uow")
    if isinstance(uow, SqlUnitOfWork):
        uow.take_audit_events(session)


def sql_uow_factory(
    session_factory: sessionmaker[Session], secrets: SecretBox | None
) -> UnitOfWorkFactory:
    """A factory of units of work on ``session_factory``, sharing the statements
    (brand policies are cached by the domain, :func:`resim.domain.model.policy_of`).
    Call after the mappers are started."""
    start_mappers()
    bind = session_factory.kw.get("bind")
    statements = Statements(row_locks=bind is None or bind.dialect.name != "sqlite")
    if not event.contains(session_factory, "loaded_as_persistent", _hold_loaded):
        event.listen(session_factory, "loaded_as_persistent", _hold_loaded)
    if not event.contains(session_factory, "before_flush", _before_flush):
        event.listen(session_factory, "before_flush", _before_flush)

    def make(*, read_only: bool = False) -> UnitOfWork:
        return SqlUnitOfWork(
            session_factory,
            secrets,
            statements=statements,
            read_only=read_only,
        )

    return make
