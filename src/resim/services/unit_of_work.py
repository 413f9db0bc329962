"""The unit of work: one database transaction, committed explicitly.

``with uow: ...; uow.commit()`` -- leaving the block without commit rolls back,
and so drops every job enqueued inside it (the outbox shares the transaction).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from resim.adapters.crypto import SecretBox, bind_secrets
from resim.adapters.db import orm
from resim.domain.model import AuditEvent


def new_id() -> str:
    return uuid.uuid4().hex


class UnitOfWork:
    """A SQLAlchemy session wrapped as a context manager with explicit commit."""

    def __init__(
        self, session_factory: sessionmaker[Session], secrets: SecretBox | None = None
    ) -> None:
        self._factory = session_factory
        self._secrets = secrets
        self._session: Session | None = None
        self._bound: contextlib.AbstractContextManager[None] | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def __enter__(self) -> UnitOfWork:
        # Encrypted columns (EncryptedText) use these keys while the block runs.
        self._bound = bind_secrets(self._secrets)
        self._bound.__enter__()
        self._session = self._factory()
        return self

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
            if self._bound is not None:
                self._bound.__exit__(None, None, None)
                self._bound = None

    def commit(self) -> None:
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
    ) -> None:
        """Append an audit event in this transaction (never a secret in ``detail``)."""
        self.session.add(
            AuditEvent(
                id=new_id(),
                at=at,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
            )
        )
