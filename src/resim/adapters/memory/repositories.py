"""The repositories of :mod:`resim.services.repositories` on a :class:`MemoryStore`.

Each answers as its SQL twin in :mod:`resim.adapters.db.repositories` does
(the contract tests in ``tests/contract/test_repositories_contract.py`` hold
both to it). Locks are no-ops: the unit of work holds the store's lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

from resim.adapters.memory.store import MemoryJob, MemoryStore, Transaction
from resim.domain.loss import LossReport, LossState
from resim.domain.model import (
    BOUND_SIM_STATES,
    Brand,
    Line,
    ReplacementRequest,
    RequestKind,
    Sim,
    SimChange,
    SimForm,
    SimState,
    Subscriber,
)
from resim.domain.policy import BrandPolicy
from resim.domain.security import IdentityCheck
from resim.domain.workflow import State
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.repositories import SealedActivation
from resim.services.unit_of_work import new_id

T = TypeVar("T")


class _Base:
    def __init__(self, store: MemoryStore, tx: Transaction) -> None:
        self._store = store
        self._tx = tx

    def _all(self, kind: type[T]) -> list[T]:
        return list(self._store.of(kind).values())

    def _one(self, found: T | None) -> T | None:
        return self._tx.seen(found)  # type: ignore[no-any-return]

    def _many(self, found: Iterable[T]) -> list[T]:
        return [self._tx.seen(o) for o in found]

    def _get(self, kind: type[T], key: Any) -> T | None:
        return self._one(self._store.of(kind).get(key))

    def _first(self, found: Iterable[T], key: Callable[[T], Any]) -> T | None:
        ordered = sorted(found, key=key)
        return self._one(ordered[0] if ordered else None)


def request_visible(scope: Scope, request: ReplacementRequest) -> bool:
    if scope.brand_id is not None and request.brand_id != scope.brand_id:
        return False
    return not scope.customer or (bool(scope.request_id) and request.id == scope.request_id)


def line_visible(scope: Scope, line: Line) -> bool:
    if scope.brand_id is not None and line.brand_id != scope.brand_id:
        return False
    return not scope.customer or (bool(scope.line_id) and line.id == scope.line_id)


class MemoryRequests(_Base):
    def get(
        self, request_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> ReplacementRequest | None:
        found = self._store.of(ReplacementRequest).get(request_id)
        if found is None or not request_visible(scope, found):
            return None
        return self._one(found)

    def by_new_iccid(self, iccid: str, *, lock: bool = False) -> ReplacementRequest | None:
        named = [r for r in self._all(ReplacementRequest) if r.new_iccid == iccid]
        return self._first(named, key=lambda r: (_desc(r.created_at), _desc_text(r.id)))

    def holder_of(self, iccid: str, *, lock: bool = False) -> tuple[str, str] | None:
        found = self.by_new_iccid(iccid, lock=lock)
        return None if found is None else (found.id, found.brand_id)

    def sealed_activation(
        self, request_id: str, *, scope: Scope = UNRESTRICTED
    ) -> SealedActivation | None:
        r = self.get(request_id, scope=scope)
        if r is None:
            return None
        return SealedActivation(r.id, r.state, r.activation_code_enc, r.activation_expires_at)

    def open_for_line(self, line_id: str, *, lock: bool = False) -> ReplacementRequest | None:
        return self._first(
            (r for r in self._all(ReplacementRequest) if r.open_line_id == line_id),
            key=lambda r: r.id,
        )

    def open_replacing(self, *, line_id: str, old_iccid: str) -> Sequence[ReplacementRequest]:
        return self._many(
            r
            for r in self._all(ReplacementRequest)
            if r.open_line_id == line_id and r.old_iccid == old_iccid
        )

    def separation_holds(self, old_iccid: str) -> bool:
        return any(
            r.old_iccid == old_iccid
            and r.open_line_id is not None
            and r.old_sim_suspended
            and r.kind == RequestKind.LINE_SEPARATION
            for r in self._all(ReplacementRequest)
        )

    def id_by_not_me_token(self, token_hash: str) -> str | None:
        for r in self._all(ReplacementRequest):
            if r.not_me_token_hash == token_hash:
                return r.id
        return None

    def completed_since(self, *, line_id: str, since: dt.datetime) -> int:
        return sum(
            1
            for r in self._all(ReplacementRequest)
            if r.line_id == line_id
            and r.state == State.COMPLETED
            and r.completed_at is not None
            and r.completed_at >= since
        )

    def opened_by(
        self, *, actor: str, since: dt.datetime, excluding: str, refused_only: bool = False
    ) -> int:
        return sum(
            1
            for r in self._all(ReplacementRequest)
            if r.actor == actor
            and r.created_at >= since
            and r.id != excluding
            and (not refused_only or r.state == State.REJECTED or r.fraud_reported_at is not None)
        )

    def listed(
        self,
        *,
        scope: Scope = UNRESTRICTED,
        state: State | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[ReplacementRequest]:
        found = [
            r
            for r in self._all(ReplacementRequest)
            if request_visible(scope, r) and (state is None or r.state == state)
        ]
        found.sort(key=lambda r: r.created_at, reverse=state != State.IN_REVIEW)
        return self._many(found[offset : offset + limit])

    def add(self, request: ReplacementRequest) -> None:
        self._tx.add(request)


class MemoryLines(_Base):
    def get(self, line_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED) -> Line | None:
        found = self._store.of(Line).get(line_id)
        if found is None or not line_visible(scope, found):
            return None
        return self._one(found)

    def by_msisdn(
        self, msisdn: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> Line | None:
        for line in self._all(Line):
            if line.msisdn == msisdn:
                return self._one(line) if line_visible(scope, line) else None
        return None

    def lock(self, line_id: str) -> None:
        return None

    def add(self, line: Line) -> None:
        self._tx.add(line)


class MemorySims(_Base):
    def get(self, iccid: str, *, lock: bool = False) -> Sim | None:
        return self._get(Sim, iccid)

    def bound_to(self, line_id: str) -> Sim | None:
        return self._first(
            (s for s in self._all(Sim) if s.line_id == line_id and s.state in BOUND_SIM_STATES),
            key=lambda s: s.iccid,
        )

    def state_for_request(self, iccid: str, request_id: str | None) -> tuple[SimState | None, bool]:
        sim = self._get(Sim, iccid)
        request = self._get(ReplacementRequest, request_id) if request_id else None
        return (
            sim.state if sim is not None else None,
            bool(request is not None and request.old_sim_suspended),
        )

    def add(self, sim: Sim) -> None:
        self._tx.add(sim)


class MemoryStock(_Base):
    def free_profile(self, *, brand_id: str, profile_type: str) -> Sim | None:
        named = {r.new_iccid for r in self._all(ReplacementRequest) if r.new_iccid}
        return self._first(
            (
                s
                for s in self._all(Sim)
                if s.brand_id == brand_id
                and s.form == SimForm.ESIM
                and s.state == SimState.IN_STOCK
                and s.profile_type == profile_type
                and s.iccid not in named
            ),
            key=lambda s: s.iccid,
        )

    def free_card(self, *, brand_id: str) -> Sim | None:
        return self._first(
            (
                s
                for s in self._all(Sim)
                if s.brand_id == brand_id
                and s.form == SimForm.PHYSICAL
                and s.state == SimState.IN_STOCK
            ),
            key=lambda s: s.iccid,
        )


class MemorySubscribers(_Base):
    def get(self, subscriber_id: str, *, lock: bool = False) -> Subscriber | None:
        return self._get(Subscriber, subscriber_id)

    def add(self, subscriber: Subscriber) -> None:
        self._tx.add(subscriber)


class MemoryBrands(_Base):
    def get(self, brand_id: str) -> Brand | None:
        return self._get(Brand, brand_id)

    def policy(self, brand_id: str) -> BrandPolicy:
        brand = self._get(Brand, brand_id)
        if brand is None:
            raise KeyError(brand_id)
        return brand.policy

    def add(self, brand: Brand) -> None:
        self._tx.add(brand)


class MemorySimChanges(_Base):
    def for_request(self, request_id: str) -> SimChange | None:
        return self._first(
            (c for c in self._all(SimChange) if c.request_id == request_id), key=lambda c: c.id
        )

    def last_replacement_at(self, line_id: str) -> dt.datetime | None:
        times = [
            c.changed_at
            for c in self._all(SimChange)
            if c.line_id == line_id and c.old_iccid is not None
        ]
        return max(times, default=None)

    def listed(
        self, *, scope: Scope = UNRESTRICTED, msisdn: str | None = None, limit: int = 50
    ) -> Sequence[SimChange]:
        lines = self._store.of(Line)
        found = [
            c
            for c in self._all(SimChange)
            if (msisdn is None or c.msisdn == msisdn)
            and (
                scope.unrestricted or (c.line_id in lines and line_visible(scope, lines[c.line_id]))
            )
        ]
        found.sort(key=lambda c: c.changed_at, reverse=True)
        return self._many(found[:limit])

    def add(self, change: SimChange) -> None:
        self._tx.add(change)


class MemoryLossReports(_Base):
    def get(self, report_id: str, *, lock: bool = False) -> LossReport | None:
        return self._get(LossReport, report_id)

    def open_for_line(self, line_id: str, *, lock: bool = False) -> LossReport | None:
        return self._first(
            (r for r in self._all(LossReport) if r.open_line_id == line_id), key=lambda r: r.id
        )

    def newest_for_line(self, line_id: str) -> LossReport | None:
        return self._first(
            (r for r in self._all(LossReport) if r.line_id == line_id),
            key=lambda r: (_desc(r.opened_at), _desc_text(r.id)),
        )

    def holds(self, iccid: str) -> bool:
        return any(r.iccid == iccid and r.state == LossState.OPEN for r in self._all(LossReport))

    def add(self, report: LossReport) -> None:
        self._tx.add(report)


class MemoryIdentityChecks(_Base):
    def newest_valid(
        self, *, staff_id: str, line_id: str, at: dt.datetime, method: str | None = None
    ) -> IdentityCheck | None:
        return self._first(
            (
                c
                for c in self._all(IdentityCheck)
                if c.staff_id == staff_id
                and c.line_id == line_id
                and c.expires_at > at
                and (method is None or c.method == method)
            ),
            key=lambda c: _desc(c.verified_at),
        )

    def add(self, check: IdentityCheck) -> None:
        self._tx.add(check)


class MemoryJobs(_Base):
    def add(
        self,
        kind: str,
        *,
        at: dt.datetime,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        run_after: dt.datetime | None = None,
    ) -> str:
        job = MemoryJob(
            id=new_id(),
            kind=kind,
            request_id=request_id,
            payload=dict(payload or {}),
            run_after=run_after or at,
            created_at=at,
        )
        self._tx.add_job(job)
        return job.id

    def exists(
        self,
        *,
        request_id: str,
        kind: str | None = None,
        states: Collection[str] | None = None,
        due_by: dt.datetime | None = None,
        excluding: str | None = None,
    ) -> bool:
        return any(
            j.request_id == request_id
            and (kind is None or j.kind == kind)
            and (states is None or j.state in states)
            and (due_by is None or j.run_after <= due_by)
            and (excluding is None or j.id != excluding)
            for j in self._store.jobs.values()
        )


class MemoryExternalCalls(_Base):
    def may_have_taken_effect(self, *, request_id: str, targets: Collection[str]) -> bool:
        return any(
            c.request_id == request_id
            and c.target in targets
            and (c.state in ("started", "succeeded") or c.retryable is True)
            for c in self._store.calls
        )


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _desc(at: dt.datetime) -> float:
    """A sort key that orders times newest first."""
    return -(at - _EPOCH).total_seconds()


def _desc_text(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)
