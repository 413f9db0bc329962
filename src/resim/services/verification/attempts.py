"""Failed-attempt counters with back-off and hard caps (SEC-03).

Counters live in the ``attempt_counter`` table, one row per key, so they
survive a restart and every API process shares them. Keys:

    request:<id>        one replacement request (the request's own
                        ``otp_max_attempts`` still rejects it; this adds back-off)
    account:<sub id>    every request and unlock of one subscriber; hard cap
                        ``policy.account_max_failures`` freezes replacements on
                        the account and alerts reviewers
    agent:<staff id>    one staff member verifying callers; cap = ip cap
    ip:<address>        customers' failures from one source address: a
                        ceiling only (see below), ``ip_max_failures``
    staff-login:<name>  staff sign-ins of one username (back-off and the
                        account cap), apart from every customer key
    signin-ip:<address> staff sign-in failures from one address: a ceiling
                        only, counted apart from the customers' ``ip`` key
    unlock:<line id>    unlocking one line's SIM-change lock

Throttle the one who fails: back-off and caps stop a request, an account, a
staff member (issue 12). A source address is shared by everyone behind it
(a shop's Wi-Fi, a carrier NAT, a reverse proxy that is not in
``RESIM_TRUSTED_PROXIES``), so its keys (:data:`CEILINGS`) never block
anybody: they are counted, and reaching the ceiling raises a ``brute_force``
alert for reviewers, once per window. :func:`guard` ignores them.

Within ``failure_window_hours`` of the first failure, after
``backoff_after_failures`` failures each further attempt must wait
``backoff_base_seconds * 2**(n - backoff_after_failures)`` (n = failures so
far). A key at its cap refuses until the window ends.

Concurrency contract: call :func:`guard` first, in the same transaction as
the check and :func:`record_failure`. For the keys of one customer or one
request (``request``, ``account``, ``unlock``, ``resend``, ``staff-login``...)
``guard`` creates the missing rows (``INSERT .. ON CONFLICT DO NOTHING``: a
concurrent insert of the same key is fine) and locks them (``SELECT .. FOR
UPDATE`` on PostgreSQL, in key order, so two callers never deadlock; SQLite
serialises writers with ``BEGIN IMMEDIATE``). A second process guessing on the
same account waits for the first to commit and then sees its failure: the
number of checked attempts on an account or a request never exceeds its cap.

The keys many customers share (:data:`SHARED_SCOPES`: one source address,
behind which a whole BSS, shop or carrier NAT may sit, and one agent) are
read without a lock by ``guard`` (a ceiling key not at all: it never blocks)
and locked only by ``record_failure``, i.e. only by a caller that has just
failed. Locking them in ``guard`` made every
verification from one address wait for the one before it to commit, even
the correct ones: under load all API threads and their database connections
queued on that one row. The price: guesses by one agent that are in flight at
the same moment are each checked against the count before any of them
failed, so that count can pass the agent's cap by the number of requests in
flight; every guess still counts, and the account and request caps, which
stop guessing on one customer, stay exact. The caller must commit
after ``record_failure`` even though it then raises (the failure has to count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resim.domain.policy import BrandPolicy
from resim.errors import TooManyAttempts
from resim.services.console.alerts import raise_alert
from resim.services.unit_of_work import UnitOfWork

SHARED_SCOPES = frozenset({"ip", "agent"})  # keys many customers share (module doc)
CEILINGS = frozenset({"ip", "signin-ip"})  # counted and alerted on, never a block


@dataclass(frozen=True)
class Limits:
    window: dt.timedelta
    backoff_after: int
    backoff_base_seconds: float
    caps: Mapping[str, int] = field(default_factory=dict)  # key prefix -> hard cap

    @classmethod
    def from_policy(cls, policy: BrandPolicy, *, ip_max_failures: int = 50) -> Limits:
        return cls(
            window=dt.timedelta(hours=policy.failure_window_hours),
            backoff_after=policy.backoff_after_failures,
            backoff_base_seconds=policy.backoff_base_seconds,
            caps={
                "account": policy.account_max_failures,
                "staff-login": policy.account_max_failures,
                "ip": ip_max_failures,
                "signin-ip": ip_max_failures,
                "agent": ip_max_failures,
            },
        )

    def cap_for(self, key: str) -> int | None:
        return self.caps.get(key.split(":", 1)[0])


def _unique(keys: Iterable[str]) -> list[str]:
    return sorted({k for k in keys if k})


def _lock_rows(uow: UnitOfWork, keys: list[str], now: dt.datetime) -> Mapping[str, Any]:
    return uow.attempts.lock(keys, now)


def _shared(key: str) -> bool:
    return key.split(":", 1)[0] in SHARED_SCOPES


def _ceiling(key: str) -> bool:
    return key.split(":", 1)[0] in CEILINGS


def _guarded_rows(uow: UnitOfWork, keys: list[str], now: dt.datetime) -> dict[str, Any]:
    """Per-customer keys created and locked; shared keys read as they are (a
    missing row is a key without failures)."""
    own = [k for k in keys if not _shared(k)]
    shared = [k for k in keys if _shared(k)]
    rows = dict(_lock_rows(uow, own, now)) if own else {}
    if shared:
        rows.update(uow.attempts.read(shared))
    return rows


def _expired(row: Any, now: dt.datetime, limits: Limits) -> bool:
    return bool(now >= row.window_start + limits.window)


def guard(uow: UnitOfWork, keys: Iterable[str], now: dt.datetime, limits: Limits) -> None:
    """Lock the counters of ``keys`` (shared ones only read, see the module doc);
    raise TooManyAttempts if any is backing off or capped.

    Ceiling keys (:data:`CEILINGS`, a source address) are not looked at: they
    never block. Nothing is checked by the caller when this raises, so a
    blocked caller learns nothing about the secret it guessed.
    """
    wanted = [k for k in _unique(keys) if not _ceiling(k)]
    rows = _guarded_rows(uow, wanted, now)
    capped, wait = _blocking(rows, wanted, now, limits)
    if capped:
        raise TooManyAttempts(
            "too many failed attempts; this is blocked for now",
            code="ATTEMPTS_CAPPED",
            retry_after=wait,
        )
    if wait > 0:
        raise TooManyAttempts(
            f"too many failed attempts; try again in {int(wait) + 1} seconds",
            code="BACKING_OFF",
            retry_after=wait,
        )


def _blocking(
    rows: Mapping[str, Any], keys: Iterable[str], now: dt.datetime, limits: Limits
) -> tuple[bool, float]:
    """(capped, seconds to wait) over the rows of ``keys``."""
    wait = 0.0
    capped = False
    for key in keys:
        row = rows.get(key)
        if row is None or _expired(row, now, limits):
            continue
        cap = limits.cap_for(key)
        if cap is not None and row.failures >= cap:
            capped = True
            wait = max(wait, (row.window_start + limits.window - now).total_seconds())
        elif row.blocked_until is not None and now < row.blocked_until:
            wait = max(wait, (row.blocked_until - now).total_seconds())
    return capped, wait


def record_failure(
    uow: UnitOfWork,
    keys: Iterable[str],
    now: dt.datetime,
    limits: Limits,
    *,
    actor: str = "system",
) -> None:
    """Count one failure on every key; apply back-off and, at a cap, its consequence.

    Reaching the account cap freezes replacements on the subscriber (audited)
    and raises an ``account_frozen`` alert; reaching the agent cap or an
    address's ceiling raises a ``brute_force`` alert. Each consequence happens
    once per window. A ceiling key gets no back-off and no block.
    """
    wanted = _unique(keys)
    rows = _lock_rows(uow, wanted, now)
    for key in wanted:
        row = rows[key]
        failures, start = (
            (0, now) if _expired(row, now, limits) else (row.failures, row.window_start)
        )
        failures += 1
        cap = limits.cap_for(key)
        blocked: dt.datetime | None = None
        if _ceiling(key):
            pass  # counted only; the alert below is its one consequence
        elif cap is not None and failures >= cap:
            blocked = start + limits.window
        elif failures >= limits.backoff_after:
            delay = limits.backoff_base_seconds * 2 ** (failures - limits.backoff_after)
            blocked = now + dt.timedelta(seconds=delay)
        uow.attempts.save(
            key, failures=failures, window_start=start, last_failure_at=now, blocked_until=blocked
        )
        if cap is not None and failures == cap:
            _at_cap(uow, key, failures, now, actor)


def _at_cap(uow: UnitOfWork, key: str, failures: int, now: dt.datetime, actor: str) -> None:
    scope, _, ident = key.partition(":")
    if scope == "account":
        subscriber = uow.subscribers.get(ident, lock=uow.dialect == "postgresql")
        if subscriber is not None and subscriber.replacements_frozen_at is None:
            subscriber.replacements_frozen_at = now
            subscriber.frozen_reason = "too many failed verification attempts"
            uow.audit(
                at=now,
                actor=actor,
                action="account.frozen",
                object_type="subscriber",
                object_id=ident,
                detail={"failures": failures, "reason": "attempt_cap"},
            )
            raise_alert(
                uow,
                at=now,
                kind="account_frozen",
                subject_type="subscriber",
                subject_id=ident,
                detail={"failures": failures},
            )
    elif scope in ("ip", "signin-ip", "agent"):
        raise_alert(
            uow,
            at=now,
            kind="brute_force",
            subject_type="staff" if scope == "agent" else "source_address",
            subject_id=ident[:40],
            detail={"failures": failures, "scope": scope},
        )


def clear(uow: UnitOfWork, keys: Iterable[str]) -> None:
    """Forget the counters of ``keys`` (after a success on that scope)."""
    uow.attempts.clear(_unique(keys))


def failures(uow: UnitOfWork, key: str, now: dt.datetime, limits: Limits) -> int:
    """Failures counted on ``key`` in the current window (for views and tests)."""
    row = uow.attempts.read([key]).get(key)
    if row is None or _expired(row, now, limits):
        return 0
    return int(row.failures)


@dataclass(frozen=True)
class Standing:
    """What the counters of some keys allow now, for a page to show honestly.

    ``left``: further failures counted before a capped key blocks (None: no
    key has a cap); ``wait_seconds``: how long until :func:`guard` lets the
    next attempt through (0: now). Ceiling keys are left out: they never block.
    """

    left: int | None
    wait_seconds: float


def standing(uow: UnitOfWork, keys: Iterable[str], now: dt.datetime, limits: Limits) -> Standing:
    """The :class:`Standing` of ``keys``, read without a lock (for views).

    The contract views rely on (tested as a property): ``left`` equals the
    number of further wrong attempts that :func:`guard` lets through, each
    tried after ``wait_seconds`` of the standing before it, until a cap blocks.
    """
    wanted = [k for k in _unique(keys) if not _ceiling(k)]
    rows = uow.attempts.read(wanted)
    capped, wait = _blocking(rows, wanted, now, limits)
    left: int | None = None
    for key in wanted:
        cap = limits.cap_for(key)
        if cap is None:
            continue
        row = rows.get(key)
        used = 0 if row is None or _expired(row, now, limits) else int(row.failures)
        left = max(cap - used, 0) if left is None else min(left, max(cap - used, 0))
    if capped:
        left = 0
    return Standing(left=left, wait_seconds=max(wait, 0.0))
