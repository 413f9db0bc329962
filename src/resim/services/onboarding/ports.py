"""What the onboarding import needs from resim's database: the ``ImportStore`` port.

The kinds (``subscribers``, ``sims``, ...) hold the rules; the store holds the
SQL (``resim.adapters.db.import_store.SqlImportStore``, built by the
composition root and passed in as ``ServiceContext.import_store``).

Contracts:

- ``reading()`` opens a read-only view for pass 1: batched look-ups, one
  statement per call (never one per key), results in no particular order.
  It takes no write lock (SQLite: a plain read; PostgreSQL: autocommit or one
  read transaction), so it may run in a second process while the first writes.
- ``writing()`` opens one transaction for one batch of pass 2: every call
  inside it commits together when the block ends normally and rolls back when
  it raises. Rows are given in clear; the store encrypts the personal fields
  and SIM keys (``EncryptedText`` columns) with resim's keys before they leave
  the process. A unique key that exists already raises (the caller checked).
- ``parallel_writes`` is True when a second connection may write (the
  built-in core network's own transactions) while a ``writing()`` block is
  open, without waiting for it to end: PostgreSQL. SQLite has one writer at
  a time, so the two would wait for each other: False.
- ``shareable`` is True when another process may open the same database (not
  an in-memory SQLite database); ``after_fork()`` is called first thing in a
  forked child, which then only reads: the store drops the connections the
  child inherited (without closing them: they are the parent's) and reads
  through connections of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

# Tables that may hold no row at all when an import starts (a first load).
SUBSCRIBER, SIM, LINE, SIM_CHANGE = "subscriber", "sim", "line", "sim_change"


class BrandRow(NamedTuple):
    id: str
    name: str
    country: str
    currency: str
    language: str
    timezone: str
    policy_data: dict[str, Any]


class SubscriberRow(NamedTuple):
    id: str
    brand_id: str
    name: str
    email: str
    language: str
    alt_msisdn: str | None
    postal_address: str | None
    pin_hash: str | None
    password_hash: str | None
    created_at: dt.datetime


class SimRow(NamedTuple):
    iccid: str
    imsi: str
    form: str
    state: str
    brand_id: str
    profile_type: str | None
    line_id: str | None


class LineRow(NamedTuple):
    id: str
    msisdn: str
    subscriber_id: str
    brand_id: str
    status: str
    created_at: dt.datetime
    awaiting_sim: bool


class LockRow(NamedTuple):
    msisdn: str
    sim_change_locked: bool
    lock_changed_at: dt.datetime | None


class SimChangeRow(NamedTuple):
    msisdn: str
    changed_at: dt.datetime
    new_iccid: str
    old_iccid: str | None


class NewSubscriber(NamedTuple):
    id: str
    brand_id: str
    language: str
    created_at: dt.datetime
    pin_hash: str | None
    password_hash: str | None
    name: str  # personal fields in clear: the store encrypts them
    email: str
    alt_msisdn: str | None
    postal_address: str | None


class NewSim(NamedTuple):
    iccid: str
    imsi: str
    form: str
    state: str
    brand_id: str
    profile_type: str | None
    ki: str | None  # in clear: the store encrypts them
    opc: str | None


class NewLine(NamedTuple):
    id: str
    msisdn: str
    subscriber_id: str
    brand_id: str
    status: str
    created_at: dt.datetime
    awaiting_sim: bool


class SimBinding(NamedTuple):
    """A SIM taken by an imported line: its new state, holder and binding."""

    iccid: str
    state: str | None  # None: the SIM is in the line's state already (left as it is)
    line_id: str
    bound_line_id: str | None


class NewSimChange(NamedTuple):
    id: str
    msisdn: str
    line_id: str
    changed_at: dt.datetime
    new_iccid: str
    old_iccid: str | None


class ImportReads(Protocol):
    def brands(self) -> list[BrandRow]: ...
    def empty_tables(self) -> frozenset[str]:
        """Which of SUBSCRIBER, SIM, LINE, SIM_CHANGE hold no row (one probe each)."""
        ...

    def subscribers(self, ids: Collection[str]) -> list[SubscriberRow]:
        """Personal fields decrypted."""
        ...

    def subscriber_brands(self, ids: Collection[str]) -> dict[str, str]: ...
    def sims(self, iccids: Collection[str]) -> list[SimRow]: ...
    def sim_imsis(self, iccids: Collection[str]) -> dict[str, str]: ...
    def imsi_holders(self, imsis: Collection[str]) -> dict[str, str]:
        """IMSI -> the ICCID of the SIM that has it."""
        ...

    def sim_keys(self, iccids: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
        """ICCID -> (ki, opc), decrypted."""
        ...

    def lines(self, msisdns: Collection[str]) -> list[LineRow]: ...
    def line_ids(self, msisdns: Collection[str]) -> dict[str, str]: ...
    def locks(self, msisdns: Collection[str]) -> list[LockRow]: ...
    def sim_changes(self, msisdns: Collection[str]) -> list[SimChangeRow]: ...


class ImportWrites(Protocol):
    def upsert_brand(self, brand: BrandRow) -> None: ...
    def add_subscribers(self, rows: Sequence[NewSubscriber]) -> None: ...
    def add_sims(self, rows: Sequence[NewSim]) -> None: ...
    def add_lines(self, rows: Sequence[NewLine]) -> None: ...
    def bind_sims(self, rows: Sequence[SimBinding]) -> None: ...
    def add_sim_changes(self, rows: Sequence[NewSimChange]) -> None: ...
    def lock_lines(self, rows: Sequence[tuple[str, dt.datetime]]) -> None:
        """Each (msisdn, locked_at): the line's SIM-change lock set since then."""
        ...


class ImportStore(Protocol):
    @property
    def shareable(self) -> bool: ...
    @property
    def parallel_writes(self) -> bool: ...
    def reading(self) -> AbstractContextManager[ImportReads]: ...
    def writing(self) -> AbstractContextManager[ImportWrites]: ...
    def after_fork(self) -> None: ...
