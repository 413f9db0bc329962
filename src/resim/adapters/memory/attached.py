"""The stores of :mod:`resim.services.stores` on the in-memory unit of work.

Staff, API clients, bearer sessions and attempt counters have in-memory
implementations (kept on the :class:`~resim.adapters.memory.store.MemoryStore`,
so they outlive one unit of work; they do not roll back). CAMARA's
subscriptions and events are in :mod:`resim.adapters.memory.camara`. The read
models (alerts, audit log, look-ups, dashboard, sealed values, export,
reports) are SQL only: using one here raises ``RuntimeError``, as
``uow.session`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from resim.adapters.memory.access import (
    InMemoryApiClientStore,
    InMemoryAuthSessionStore,
    InMemoryStaffStore,
)
from resim.adapters.memory.counters import InMemoryAttemptCounterStore
from resim.adapters.memory.store import MemoryStore
from resim.services.stores.access import ApiClientStore, AuthSessionStore, StaffStore
from resim.services.stores.counters import AttemptCounterStore

S = TypeVar("S")


def _sql_only(name: str) -> NoReturn:
    raise RuntimeError(
        f"uow.{name} is SQL only (a read model): test its use case on SQLite or PostgreSQL"
    )


class MemoryStores:
    """Mixed into ``MemoryUnitOfWork`` (which provides ``store``)."""

    store: MemoryStore

    def _kept(self, name: str, make: Callable[[], S]) -> S:
        kept: dict[str, Any] = self.store.side_stores
        if name not in kept:
            kept[name] = make()
        found: S = kept[name]
        return found

    @property
    def staff(self) -> StaffStore:
        return self._kept("staff", InMemoryStaffStore)

    @property
    def api_clients(self) -> ApiClientStore:
        return self._kept("api_clients", InMemoryApiClientStore)

    @property
    def auth_sessions(self) -> AuthSessionStore:
        return self._kept("auth_sessions", InMemoryAuthSessionStore)

    @property
    def attempts(self) -> AttemptCounterStore:
        return self._kept("attempts", InMemoryAttemptCounterStore)

    @property
    def alerts(self) -> NoReturn:
        _sql_only("alerts")

    @property
    def audit_log(self) -> NoReturn:
        _sql_only("audit_log")

    @property
    def lookups(self) -> NoReturn:
        _sql_only("lookups")

    @property
    def dashboard(self) -> NoReturn:
        _sql_only("dashboard")

    @property
    def sealed(self) -> NoReturn:
        _sql_only("sealed")

    @property
    def export(self) -> NoReturn:
        _sql_only("export")

    @property
    def reports(self) -> NoReturn:
        _sql_only("reports")
