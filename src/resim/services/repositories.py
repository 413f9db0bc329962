"""The repositories a unit of work hands to the use cases (``uow.requests``, ...).

Each is a :class:`typing.Protocol` named by role; the SQLAlchemy
implementations live in :mod:`resim.adapters.db.repositories`, the in-memory
ones in :mod:`resim.adapters.memory`, and both pass the contract tests in
``tests/contract``.

Contracts shared by every repository:

* An object a repository returns is the unit of work's own copy: changing its
  attributes changes the row when the unit of work commits (and nothing if it
  rolls back). Loading the same key twice in one unit of work returns the same
  object.
* ``lock=True`` holds the row against concurrent writers until the unit of work
  ends (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions are
  exclusive already). A caller that locks re-checks the state after locking.
* ``add`` makes a new object part of the unit of work; it is written at the
  next ``flush`` or ``commit`` at the latest. Uniqueness the database enforces
  (one open request per line, one bound SIM per line) is checked then.
* ``get`` returns None for a missing key; :mod:`resim.services.repo` turns that
  into the NotFound each use case raises.
* ``scope`` (:class:`~resim.services.access.tenancy.Scope`) hides objects a caller may
  not reach exactly as if they did not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, Protocol

from resim.domain.loss import LossReport
from resim.domain.model import (
    Brand,
    Line,
    ReplacementRequest,
    Sim,
    SimChange,
    SimState,
    Subscriber,
)
from resim.domain.policy import BrandPolicy
from resim.domain.security import IdentityCheck
from resim.domain.workflow import State
from resim.services.access.tenancy import UNRESTRICTED, Scope


class SealedActivation(NamedTuple):
    """What reading a request's activation code needs of it (the code still encrypted)."""

    id: str
    state: State
    activation_code_enc: str | None
    activation_expires_at: dt.datetime | None


class RequestRepository(Protocol):
    """Replacement requests (the aggregate at the centre)."""

    def get(
        self, request_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> ReplacementRequest | None: ...

    def by_new_iccid(self, iccid: str, *, lock: bool = False) -> ReplacementRequest | None:
        """The request that holds the profile now: the newest one naming it."""
        ...

    def holder_of(self, iccid: str, *, lock: bool = False) -> tuple[str, str] | None:
        """``(id, brand_id)`` of :meth:`by_new_iccid`'s request, without loading it."""
        ...

    def sealed_activation(
        self, request_id: str, *, scope: Scope = UNRESTRICTED
    ) -> SealedActivation | None:
        """The request's state and encrypted activation code as last written (changes
        this unit has not flushed are not seen), without loading the request; None
        as :meth:`get` (missing, or out of ``scope``)."""
        ...

    def open_for_line(self, line_id: str, *, lock: bool = False) -> ReplacementRequest | None:
        """The line's open request (at most one: invariant 2)."""
        ...

    def open_replacing(self, *, line_id: str, old_iccid: str) -> Sequence[ReplacementRequest]:
        """Open requests of the line that replace the SIM ``old_iccid``."""
        ...

    def separation_holds(self, old_iccid: str) -> bool:
        """An open line separation (SEC-12) keeps the SIM ``old_iccid`` suspended."""
        ...

    def id_by_not_me_token(self, token_hash: str) -> str | None:
        """The id of the request whose "this was not me" link has this hash."""
        ...

    def completed_since(self, *, line_id: str, since: dt.datetime) -> int:
        """How many of the line's requests completed at or after ``since``."""
        ...

    def opened_by(
        self, *, actor: str, since: dt.datetime, excluding: str, refused_only: bool = False
    ) -> int:
        """How many requests ``actor`` opened since then, other than ``excluding``;
        ``refused_only``: only those rejected or reported as fraud."""
        ...

    def listed(
        self,
        *,
        scope: Scope = UNRESTRICTED,
        state: State | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[ReplacementRequest]:
        """Those ``scope`` may see (filtered before the limit): the review queue
        (``state`` in_review) oldest first, any other list newest first."""
        ...

    def add(self, request: ReplacementRequest) -> None: ...


class LineRepository(Protocol):
    """Lines (phone numbers)."""

    def get(
        self, line_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> Line | None: ...

    def by_msisdn(
        self, msisdn: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> Line | None: ...

    def lock(self, line_id: str) -> None:
        """Hold the line's row until the unit of work ends, without loading it.

        Serialises writers that must not race for one line (loss reports,
        requests opened beside them)."""
        ...

    def add(self, line: Line) -> None: ...


class SimRepository(Protocol):
    """SIM cards and eSIM profiles, bound or in stock."""

    def get(self, iccid: str, *, lock: bool = False) -> Sim | None: ...

    def bound_to(self, line_id: str) -> Sim | None:
        """The SIM bound to the line now (active or suspended), if any."""
        ...

    def state_for_request(self, iccid: str, request_id: str | None) -> tuple[SimState | None, bool]:
        """(the SIM's state, None if there is no such SIM; whether the request
        ``request_id`` suspended its old SIM), read without loading either."""
        ...

    def add(self, sim: Sim) -> None: ...


class StockRepository(Protocol):
    """Free SIMs waiting in the stock room; taking one locks it."""

    def free_profile(self, *, brand_id: str, profile_type: str) -> Sim | None:
        """The first free eSIM profile of the brand and type, locked (rows other
        units of work hold are skipped).

        A profile still named by a request's ``new_iccid`` is passed over even
        when back in stock: a late job of that request may still act on it."""
        ...

    def free_card(self, *, brand_id: str) -> Sim | None:
        """The first free physical card of the brand, locked (others' skipped)."""
        ...


class SubscriberRepository(Protocol):
    def get(self, subscriber_id: str, *, lock: bool = False) -> Subscriber | None: ...

    def add(self, subscriber: Subscriber) -> None: ...


class BrandRepository(Protocol):
    def get(self, brand_id: str) -> Brand | None: ...

    def policy(self, brand_id: str) -> BrandPolicy:
        """The brand's parsed policy (KeyError if there is no such brand).

        Implementations may cache the parse for as long as ``policy_data`` is
        unchanged."""
        ...

    def add(self, brand: Brand) -> None: ...


class SimChangeRepository(Protocol):
    """SIM change records (CAMARA SIM Swap reads them)."""

    def for_request(self, request_id: str) -> SimChange | None: ...

    def last_replacement_at(self, line_id: str) -> dt.datetime | None:
        """When the line last moved from one SIM to another (None: never; a
        line's first SIM is a change without an old SIM and does not count)."""
        ...

    def listed(
        self, *, scope: Scope = UNRESTRICTED, msisdn: str | None = None, limit: int = 50
    ) -> Sequence[SimChange]:
        """Newest first, only those of lines ``scope`` may see."""
        ...

    def add(self, change: SimChange) -> None: ...


class LossReportRepository(Protocol):
    def get(self, report_id: str, *, lock: bool = False) -> LossReport | None: ...

    def open_for_line(self, line_id: str, *, lock: bool = False) -> LossReport | None:
        """The line's open report (at most one)."""
        ...

    def newest_for_line(self, line_id: str) -> LossReport | None: ...

    def holds(self, iccid: str) -> bool:
        """An open report keeps the SIM ``iccid`` barred."""
        ...

    def add(self, report: LossReport) -> None: ...


class IdentityCheckRepository(Protocol):
    def newest_valid(
        self, *, staff_id: str, line_id: str, at: dt.datetime, method: str | None = None
    ) -> IdentityCheck | None:
        """The newest check by that staff member on that line unexpired at ``at``
        (of that ``method`` when given)."""
        ...

    def add(self, check: IdentityCheck) -> None: ...


class JobRepository(Protocol):
    """The outbox's jobs, as the use cases see them (queueing and asking)."""

    def add(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        """Queue a job in this unit of work (it exists only if it commits); its id."""
        ...

    def exists(
        self,
        *,
        request_id: str,
        kind: str | None = None,
        states: Collection[str] | None = None,
        due_by: dt.datetime | None = None,
        excluding: str | None = None,
    ) -> bool:
        """Whether a job of the request matches every condition given."""
        ...


class ExternalCallRepository(Protocol):
    """The attempt records of peer calls, as the use cases ask about them."""

    def may_have_taken_effect(self, *, request_id: str, targets: Collection[str]) -> bool:
        """A call of the request to one of ``targets`` succeeded, is still in flight,
        or failed in a way that may have reached the peer (retryable)."""
        ...
