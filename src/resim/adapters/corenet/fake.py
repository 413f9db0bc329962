"""An in-memory core network with the semantics of the real ones.

Thread-safe: one lock guards every operation, so each is atomic, including
``move_msisdn``. It passes the same contract suite as
:class:`~resim.adapters.corenet.builtin.BuiltinCoreNetwork`, keeps the same
history and raises the same errors (see :mod:`resim.adapters.corenet.rules`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from resim.adapters.corenet import rules
from resim.adapters.corenet.rules import CoreEvent, CoreSubscriber


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FakeCoreNetwork:
    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clock = clock or _utcnow
        self._lock = threading.Lock()
        self._subs: dict[str, CoreSubscriber] = {}
        self._by_msisdn: dict[str, str] = {}
        self._events: list[CoreEvent] = []

    # ------------------------------------------------------------ the port

    def provision_imsi(self, *, imsi: str) -> None:
        rules.check_imsi(imsi)
        with self._lock:
            if imsi in self._subs:
                return
            now = self._now()
            self._subs[imsi] = CoreSubscriber(
                imsi=imsi, msisdn=None, enabled=True, retired=False, updated_at=now
            )
            self._log(imsi, None, rules.EV_PROVISIONED, now)

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None:
        rules.check_msisdn(msisdn)
        rules.check_imsi(new_imsi)
        if old_imsi is not None:
            rules.check_imsi(old_imsi)
        with self._lock:
            plan = rules.plan_move(
                msisdn=msisdn,
                new=self._subs.get(new_imsi),
                new_imsi=new_imsi,
                old=self._subs.get(old_imsi) if old_imsi else None,
                old_imsi=old_imsi,
                holder=self._by_msisdn.get(msisdn),
            )
            if not plan.bind:
                return
            now = self._now()
            if plan.clear_imsi is not None:
                self._put(plan.clear_imsi, now, msisdn=None)
                self._log(plan.clear_imsi, msisdn, rules.EV_UNBOUND, now)
            self._put(new_imsi, now, msisdn=msisdn)
            self._log(new_imsi, msisdn, rules.EV_BOUND, now)

    def suspend_imsi(self, *, imsi: str) -> None:
        with self._lock:
            sub = self._require(imsi)
            if rules.needs_suspend(sub):
                now = self._now()
                self._put(imsi, now, enabled=False)
                self._log(imsi, sub.msisdn, rules.EV_SUSPENDED, now)
                if rules.detaches(sub):
                    self._log(imsi, sub.msisdn, rules.EV_DETACHED, now)

    def resume_imsi(self, *, imsi: str) -> None:
        with self._lock:
            sub = self._require(imsi)
            if rules.needs_resume(sub):
                now = self._now()
                self._put(imsi, now, enabled=True)
                self._log(imsi, sub.msisdn, rules.EV_RESUMED, now)

    def retire_imsi(self, *, imsi: str) -> None:
        with self._lock:
            sub = self._require(imsi)
            if rules.needs_retire(sub):
                now = self._now()
                self._put(imsi, now, enabled=False, retired=True)
                self._log(imsi, None, rules.EV_RETIRED, now)
                if rules.detaches(sub):
                    self._log(imsi, None, rules.EV_DETACHED, now)

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        sms = rules.check_aware(sms_hold_until, "sms_hold_until")
        port = rules.check_aware(port_out_block_until, "port_out_block_until")
        with self._lock:
            sub = self._require(imsi)
            if rules.needs_holds(sub, sms, port):
                now = self._now()
                self._put(imsi, now, sms_hold_until=sms, port_out_block_until=port)
                self._log(imsi, sub.msisdn, rules.EV_HOLDS, now)

    def msisdn_of(self, *, imsi: str) -> str | None:
        with self._lock:
            return self._require(imsi).msisdn

    def imsi_of(self, *, msisdn: str) -> str | None:
        rules.check_msisdn(msisdn)
        with self._lock:
            return self._by_msisdn.get(msisdn)

    def is_enabled(self, *, imsi: str) -> bool:
        with self._lock:
            return self._require(imsi).in_service

    def attached(self, *, imsi: str) -> bool:
        rules.check_imsi(imsi)
        with self._lock:
            sub = self._subs.get(imsi)
            return sub is not None and sub.attached_at is not None

    def cancel_location(self, *, imsi: str) -> bool:
        """A network refresh (see BuiltinCoreNetwork.cancel_location)."""
        with self._lock:
            sub = self._require(imsi)
            if not rules.refreshes(sub):
                return False
            self._log(imsi, sub.msisdn, rules.EV_REFRESHED, self._now())
            return True

    def record_attach(self, *, imsi: str) -> None:
        """A device with ``imsi`` registered (see BuiltinCoreNetwork.record_attach)."""
        rules.check_imsi(imsi)
        with self._lock:
            sub = self._require(imsi)
            if not sub.in_service:
                raise rules.rejected(f"{imsi} has no network access; location update refused")
            if sub.attached_at is None:
                now = self._now()
                self._put(imsi, now, attached_at=now)
                self._log(imsi, sub.msisdn, rules.EV_ATTACHED, now)

    # ------------------------------------------------------------ read helpers

    def subscriber(self, *, imsi: str) -> CoreSubscriber | None:
        rules.check_imsi(imsi)
        with self._lock:
            return self._subs.get(imsi)

    def events(self, *, imsi: str | None = None, msisdn: str | None = None) -> list[CoreEvent]:
        with self._lock:
            return [
                e
                for e in self._events
                if (imsi is None or e.imsi == imsi) and (msisdn is None or e.msisdn == msisdn)
            ]

    # ------------------------------------------------------------ internals (lock held)

    def _now(self) -> dt.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(dt.UTC)

    def _require(self, imsi: str) -> CoreSubscriber:
        rules.check_imsi(imsi)
        return rules.require(self._subs.get(imsi), imsi)

    def _put(self, imsi: str, now: dt.datetime, **changes: Any) -> None:
        before = self._subs[imsi]
        after = replace(before, updated_at=now, **changes)
        if after.msisdn is not None:
            # The uniqueness a real HLR's index enforces: never overwrite a binding.
            holder = self._by_msisdn.get(after.msisdn, imsi)
            if holder != imsi:
                raise AssertionError(f"fake core network: {after.msisdn} already on {holder}")
        if before.msisdn is not None and before.msisdn != after.msisdn:
            del self._by_msisdn[before.msisdn]
        if after.msisdn is not None:
            self._by_msisdn[after.msisdn] = imsi
        self._subs[imsi] = after

    def _log(self, imsi: str, msisdn: str | None, operation: str, now: dt.datetime) -> None:
        self._events.append(CoreEvent(imsi=imsi, msisdn=msisdn, operation=operation, at=now))


if TYPE_CHECKING:
    from resim.services.ports import CoreNetwork

    def _conforms(adapter: FakeCoreNetwork) -> CoreNetwork:
        return adapter
