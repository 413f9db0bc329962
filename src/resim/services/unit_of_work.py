"""The unit of work: one database transaction, committed explicitly.

``with uow: ...; uow.commit()`` -- leaving the block without commit rolls back,
and so drops every job enqueued inside it (the outbox shares the transaction).

Audit events (SEC-09) are held until :meth:`UnitOfWork.commit`, which appends
them to the hash chain as the transaction's last write (see
``resim.adapters.db.audit_store``). That covers ``uow.audit(...)`` and any
``AuditEvent`` added to the session directly. Consequence: a transaction does
not see its own audit events in queries before it commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from resim.adapters.crypto import SecretBox, bind_secrets
from resim.adapters.db import orm
from resim.adapters.db.audit_store import append_chained
from resim.adapters.db.engine import READ_ONLY_OPTION
from resim.adapters.db.outbox import SqlOutbox
from resim.domain.model import AuditEvent


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


class UnitOfWork:
    """A SQLAlchemy session wrapped as a context manager with explicit commit."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        secrets: SecretBox | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self._factory = session_factory
        self._secrets = secrets
        # Read-only: on SQLite a deferred transaction, so it never queues for (or
        # holds) the write lock; the caller must not write in it.
        self.read_only = read_only
        self._session: Session | None = None
        self._bound: contextlib.AbstractContextManager[None] | None = None
        self._audit: list[AuditEvent] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._session

    @property
    def outbox(self) -> SqlOutbox:
        """The job table and attempt rows in this transaction (``ports.JobQueue``)."""
        return SqlOutbox(self.session)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def __enter__(self) -> UnitOfWork:
        # Encrypted columns (EncryptedText) use these keys while the block runs.
        self._bound = bind_secrets(self._secrets)
        self._bound.__enter__()
        self._session = self._factory()
        self._audit = []
        if self.read_only:
            self._session.connection(execution_options={READ_ONLY_OPTION: True})
        # An AuditEvent added to the session by hand joins the chain too,
        # instead of being flushed as an unchained row.
        event.listen(self._session, "before_flush", self._take_audit_events)
        return self

    def _take_audit_events(self, session: Session, *_args: object) -> None:
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
            self.session.rollback()
        finally:
            self.session.close()
            self._session = None
            self._audit = []
            if self._bound is not None:
                self._bound.__exit__(None, None, None)
                self._bound = None

    def commit(self) -> None:
        """Commit; audit events of this transaction are chained just before.

        The chain head lock is taken here, after every other write, and held
        only until the commit right after it.
        """
        self.session.flush()  # also moves hand-added AuditEvents to self._audit
        if self._audit:
            pending, self._audit = self._audit, []
            append_chained(self.session, pending)
        self.session.commit()

    def flush(self) -> None:
        self.session.flush()

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
        """Write a job in this transaction; it exists only if the transaction commits."""
        job_id = new_id()
        self.session.execute(
            sa.insert(orm.job).values(
                id=job_id,
                kind=kind,
                request_id=request_id,
                payload=payload or {},
                state="pending",
                attempts=0,
                run_after=run_after or at,
                created_at=at,
            )
        )
        return job_id

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
