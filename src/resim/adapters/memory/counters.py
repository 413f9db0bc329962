"""In-memory store of failed-attempt counters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from resim.services.stores.counters import Counter


@dataclass(frozen=True)
class MemoryCounter:
    key: str
    failures: int
    window_start: dt.datetime
    last_failure_at: dt.datetime | None = None
    blocked_until: dt.datetime | None = None


class InMemoryAttemptCounterStore:
    def __init__(self) -> None:
        self.rows: dict[str, MemoryCounter] = {}

    def lock(self, keys: Sequence[str], now: dt.datetime) -> Mapping[str, Counter]:
        for key in keys:
            self.rows.setdefault(key, MemoryCounter(key, 0, now))
        return {k: self.rows[k] for k in sorted(keys)}

    def read(self, keys: Sequence[str]) -> Mapping[str, Counter]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    def save(
        self,
        key: str,
        *,
        failures: int,
        window_start: dt.datetime,
        last_failure_at: dt.datetime | None,
        blocked_until: dt.datetime | None,
    ) -> None:
        if key in self.rows:
            self.rows[key] = MemoryCounter(
                key, failures, window_start, last_failure_at, blocked_until
            )

    def clear(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.rows.pop(key, None)
