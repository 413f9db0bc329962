"""Stores of who may act: staff accounts, machine clients and bearer sessions.

Implemented in SQL (:mod:`resim.adapters.db.stores.access`) and in memory
(:mod:`resim.adapters.memory.access`); ``tests/contract/test_access_stores.py``
holds both to the same contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from resim.domain.security import ApiClient, AuthSession, StaffUser


class StaffStore(Protocol):
    """Staff accounts (``uow.staff``)."""

    def add(self, staff: StaffUser) -> None:
        """Add a new account. Conflict USERNAME_TAKEN when the username is taken,
        also by a concurrent unit of work that committed first."""
        ...

    def get(self, staff_id: str) -> StaffUser | None: ...

    def by_username(self, username: str, *, lock: bool = False) -> StaffUser | None:
        """The account with exactly this (already normalised) username; ``lock``:
        held until the unit of work ends (PostgreSQL; SQLite serialises writers)."""
        ...

    def all(self) -> list[StaffUser]:
        """Every account, by username."""
        ...

    def active_reviewers(self) -> list[StaffUser]:
        """Active accounts with the reviewer role, by username."""
        ...

    def display_name(self, staff_id: str) -> str | None: ...


class ApiClientStore(Protocol):
    """Machine clients (``uow.api_clients``)."""

    def add(self, client: ApiClient) -> None: ...

    def get(self, client_id: str, *, lock: bool = False) -> ApiClient | None: ...

    def all(self) -> list[ApiClient]:
        """Every client, oldest first."""
        ...


class AuthSessionStore(Protocol):
    """Bearer sessions of staff and customers (``uow.auth_sessions``)."""

    def add(self, session: AuthSession) -> None: ...

    def get(self, session_id: str, *, lock: bool = False) -> AuthSession | None: ...

    def by_token_hash(self, token_hash: str) -> AuthSession | None: ...

    def revoke_live_of_staff(self, staff_id: str, now: dt.datetime) -> int:
        """Set ``revoked_at = now`` on every unrevoked, unexpired session of the
        staff member; the number revoked."""
        ...
