"""The job table and the external-call rows as the use cases see them
(``uow.jobs``, ``uow.calls``; moved out of :mod:`resim.adapters.db.repositories`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resim.adapters.db import orm
from resim.adapters.db.statements import Statements
from resim.services.unit_of_work import new_id

_j = orm.job.c
_x = orm.external_call.c


class SqlJobs:
    """The job table as the use cases see it.

    ``add`` holds the job in memory; :meth:`write` inserts every held job in
    one statement (an executemany). The unit of work calls it when it commits
    (not when it flushes: a flush is for the aggregates' constraints), and
    :meth:`exists` and the unit's other readers of the job table (its outbox,
    raw session, look-ups) call it before they read, so the transaction still
    sees its own jobs. Before (issue 16) each ``add`` was an INSERT of its
    own, and each autoflushed the session: a request verified and decided was
    written three times before its commit.
    """

    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q
        self._held: list[dict[str, Any]] = []

    def add(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        job_id = new_id()
        self._held.append(
            {
                "id": job_id,
                "kind": kind,
                "request_id": request_id,
                "payload": payload or {},
                "state": "pending",
                "attempts": 0,
                "run_after": run_after or at,
                "created_at": at,
            }
        )
        return job_id

    def write(self) -> None:
        """Insert the held jobs, in the order they were added, in this transaction.

        On the session's connection: a job row refers to no row of the session
        (``request_id`` has no foreign key), so nothing needs flushing first."""
        if self._held:
            rows, self._held = self._held, []
            self._s.connection().execute(self._q.INSERT_JOB, rows)

    def exists(
        self,
        *,
        request_id: str,
        kind: str | None = None,
        states: Collection[str] | None = None,
        due_by: dt.datetime | None = None,
        excluding: str | None = None,
    ) -> bool:
        self.write()
        where = [_j.request_id == request_id]
        if kind is not None:
            where.append(_j.kind == kind)
        if states is not None:
            where.append(_j.state.in_(list(states)))
        if due_by is not None:
            where.append(_j.run_after <= due_by)
        if excluding is not None:
            where.append(_j.id != excluding)
        return self._s.scalar(sa.select(sa.exists().where(*where))) is True


class SqlExternalCalls:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def may_have_taken_effect(self, *, request_id: str, targets: Collection[str]) -> bool:
        stmt = sa.select(
            sa.exists().where(
                _x.request_id == request_id,
                _x.target.in_(list(targets)),
                sa.or_(_x.state.in_(["started", "succeeded"]), _x.retryable.is_(True)),
            )
        )
        return self._s.scalar(stmt) is True
