"""Reading bearer credentials without a transaction (issue 16: the API's hot path).

Resolving a credential is a read of one row (an API client by id, a session by
its token hash joined to its staff member). :class:`CredentialReader` answers
it with one statement outside any unit of work: the SQL one
(``resim.adapters.db.credential_reader``) runs on the autocommit read engine,
so an authenticated API call no longer opens, and commits, a transaction of
its own before the one its route needs. Each read sees the rows as committed
at that moment, as the unit of work did: a revoked session, a disabled client
or staff member is refused on the next call (nothing is cached).

:func:`resim.services.access.sessions.resolve_bearer` takes a reader when the
composition root has one and applies exactly the checks it applies to the
unit of work's objects.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Protocol

from resim.domain.security import SessionKind


@dataclass(frozen=True)
class ClientCredential:
    """What authenticating a machine client needs of its row."""

    id: str
    secret_hash: str
    scopes: tuple[str, ...]
    brand_id: str | None
    active: bool
    last_used_at: dt.datetime | None


@dataclass(frozen=True)
class SessionCredential:
    """A session row and, for a staff session, its staff member (None: no such member)."""

    id: str
    kind: SessionKind
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    line_id: str | None
    request_id: str | None
    staff_id: str | None
    staff_role: str | None  # the Role's value
    staff_brand_id: str | None
    staff_active: bool | None

    def is_live(self, now: dt.datetime) -> bool:
        """As :meth:`resim.domain.security.AuthSession.is_live`."""
        return self.revoked_at is None and now < self.expires_at


class CredentialReader(Protocol):
    """One committed row per call, read outside any transaction; never writes."""

    def client(self, client_id: str) -> ClientCredential | None: ...

    def session(self, token_hash: str) -> SessionCredential | None: ...


class ClientUseMarks:
    """When this process last wrote a client's ``last_used_at`` (a hint for
    operators, written at most once per ``granularity``): concurrent calls of one
    client at the turn of a minute write it once, not once each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marked: dict[str, dt.datetime] = {}

    def claim(self, client_id: str, now: dt.datetime, granularity: dt.timedelta) -> bool:
        """True (and remembered) unless this process claimed it within ``granularity``."""
        with self._lock:
            last = self._marked.get(client_id)
            # Earlier than the mark counts as within it: concurrent calls read
            # the clock before they take this lock, in any order.
            if last is not None and now - last < granularity:
                return False
            if len(self._marked) > 10_000:  # bounded: forget them all, at worst a write each
                self._marked.clear()
            self._marked[client_id] = now
            return True
