"""In-memory stores of staff accounts, machine clients and bearer sessions."""

from __future__ import annotations

import datetime as dt

from resim.domain.security import ApiClient, AuthSession, Role, StaffUser
from resim.errors import Conflict


class InMemoryStaffStore:
    def __init__(self) -> None:
        self.rows: dict[str, StaffUser] = {}

    def add(self, staff: StaffUser) -> None:
        if any(s.username == staff.username for s in self.rows.values()):
            raise Conflict("that username is taken", code="USERNAME_TAKEN")
        self.rows[staff.id] = staff

    def get(self, staff_id: str) -> StaffUser | None:
        return self.rows.get(staff_id)

    def by_username(self, username: str, *, lock: bool = False) -> StaffUser | None:
        return next((s for s in self.rows.values() if s.username == username), None)

    def all(self) -> list[StaffUser]:
        return sorted(self.rows.values(), key=lambda s: s.username)

    def active_reviewers(self) -> list[StaffUser]:
        return [s for s in self.all() if s.role == Role.REVIEWER and s.active]

    def display_name(self, staff_id: str) -> str | None:
        found = self.rows.get(staff_id)
        return found.display_name if found else None


class InMemoryApiClientStore:
    def __init__(self) -> None:
        self.rows: dict[str, ApiClient] = {}

    def add(self, client: ApiClient) -> None:
        self.rows[client.id] = client

    def get(self, client_id: str, *, lock: bool = False) -> ApiClient | None:
        return self.rows.get(client_id)

    def all(self) -> list[ApiClient]:
        return sorted(self.rows.values(), key=lambda c: c.created_at)


class InMemoryAuthSessionStore:
    def __init__(self) -> None:
        self.rows: dict[str, AuthSession] = {}

    def add(self, session: AuthSession) -> None:
        self.rows[session.id] = session

    def get(self, session_id: str, *, lock: bool = False) -> AuthSession | None:
        return self.rows.get(session_id)

    def by_token_hash(self, token_hash: str) -> AuthSession | None:
        return next((s for s in self.rows.values() if s.token_hash == token_hash), None)

    def revoke_live_of_staff(self, staff_id: str, now: dt.datetime) -> int:
        live = [
            s
            for s in self.rows.values()
            if s.staff_id == staff_id and s.revoked_at is None and s.expires_at > now
        ]
        for s in live:
            s.revoked_at = now
        return len(live)
