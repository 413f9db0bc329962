"""The audit log as the use cases read it (``uow.audit_log``): the hash chain for
:mod:`resim.services.audit.audit_log`, and the trails pages show.

Appending is not here: ``uow.audit(...)`` holds events until commit, when the
unit of work chains them. SQL only (:mod:`resim.adapters.db.stores.audit`):
the chain's order and its head live in the database. Contract:
``tests/contract/test_audit_store.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

# The columns of an audit row, in export order (SEC-09).
AUDIT_COLUMNS = (
    "seq",
    "id",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "detail",
    "source",
    "prev_hash",
    "hash",
)


class Head(Protocol):
    """The chain head: the last row's seq and hash, and the prune anchor's."""

    @property
    def last_seq(self) -> int: ...
    @property
    def last_hash(self) -> str: ...
    @property
    def anchor_seq(self) -> int: ...
    @property
    def anchor_hash(self) -> str: ...


class Event(NamedTuple):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    detail: dict[str, Any]


class Link(NamedTuple):
    seq: int
    hash: str
    at: dt.datetime


class AuditLogStore(Protocol):
    def head(self) -> Head | None:
        """The chain head (None: a database without one)."""
        ...

    def rows(self, *, after_seq: int, upto_seq: int | None, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` whole rows (:data:`AUDIT_COLUMNS`) with
        ``after_seq < seq [<= upto_seq]``, in seq order."""
        ...

    def newest(self) -> tuple[int, str] | None:
        """(seq, id) of the newest row."""
        ...

    def seq_bounds(self, start: dt.datetime, end: dt.datetime) -> tuple[int | None, int | None]:
        """(first seq at or after ``start``, last seq before ``end``)."""
        ...

    def hash_of(self, seq: int) -> str | None: ...

    def last_link_before(self, before: dt.datetime) -> Link | None:
        """The row just before the first one at or after ``before`` (the newest
        row when none is); None when there is no such row."""
        ...

    def prune_through(self, link: Link) -> int:
        """Make ``link`` the anchor and delete it and every row before it; how many."""
        ...

    def has_event(self, *, action: str, object_id: str) -> bool: ...

    def latest(
        self, *, action: str, object_id: str, object_type: str | None = None
    ) -> Event | None:
        """The newest event of ``action`` on the object."""
        ...

    def events_of(self, *, object_type: str, object_id: str) -> Sequence[Event]:
        """Every event on the object, in seq order."""
        ...

    def request_trail(
        self,
        *,
        request_id: str,
        sim_iccids: Sequence[str],
        line_id: str,
        since: dt.datetime,
        limit: int,
    ) -> Sequence[Event]:
        """Events at or after ``since`` on the request, on its SIMs, and on its line,
        in seq order, at most ``limit`` (callers filter the SIMs' and the line's
        events that concern another request)."""
        ...
