"""The store of failed-attempt counters (SEC-03), behind
:mod:`resim.services.verification.attempts`.

Implemented in SQL (:mod:`resim.adapters.db.stores.counters`, table
``attempt_counter``) and in memory (:mod:`resim.adapters.memory.counters`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol


class Counter(Protocol):
    """One key's counter as read (a row: read-only)."""

    @property
    def key(self) -> str: ...
    @property
    def failures(self) -> int: ...
    @property
    def window_start(self) -> dt.datetime: ...
    @property
    def last_failure_at(self) -> dt.datetime | None: ...
    @property
    def blocked_until(self) -> dt.datetime | None: ...


class AttemptCounterStore(Protocol):
    """Counters by key (``uow.attempts``)."""

    def lock(self, keys: Sequence[str], now: dt.datetime) -> Mapping[str, Counter]:
        """Create the missing counters (no failures, window starting ``now``; a
        concurrent creation of the same key is not an error) and lock every one
        until the unit of work ends, in key order, so two callers never
        deadlock (PostgreSQL; SQLite serialises writers). ``keys``: sorted,
        unique."""
        ...

    def read(self, keys: Sequence[str]) -> Mapping[str, Counter]:
        """The counters that exist among ``keys``, without a lock."""
        ...

    def save(
        self,
        key: str,
        *,
        failures: int,
        window_start: dt.datetime,
        last_failure_at: dt.datetime | None,
        blocked_until: dt.datetime | None,
    ) -> None:
        """Overwrite an existing counter."""
        ...

    def clear(self, keys: Sequence[str]) -> None:
        """Forget the counters of ``keys`` (missing ones are fine)."""
        ...
