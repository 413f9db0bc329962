"""The CoreNetwork port on PyHSS, the open-source Python HSS, over its REST API.

Mapping (PyHSS 2.0; the API's quirks are described in ``pyhss_http``):

- keys: PyHSS keeps a SIM's Ki/OPc in an AuC record (``/auc``), loaded at stock
  intake (:meth:`PyHssCoreNetwork.load_credentials`, or the operator's own
  PyHSS tooling). ``provision_imsi`` makes the subscriber record (``/subscriber``)
  for an IMSI whose AuC record exists; without one it raises
  ``CORE_NO_CREDENTIALS`` (permanent): an HSS record without keys is useless.
- MSISDN: ``subscriber.msisdn`` (digits without ``+``; ``""`` clears it).
- suspend / resume: ``subscriber.enabled``. While the subscriber is served by
  an MME (``serving_mme``), suspend and retire also push a Cancel-Location
  (``PUT /push/clr/<imsi>``, cancellation type SUBSCRIPTION_WITHDRAWAL, TS
  29.272 section 7.3.24), so an attached phone is dropped at once instead of at
  its next attach. A Cancel-Location that PyHSS cannot queue (the MME's Diameter
  peer is not connected) is ``CORE_UNAVAILABLE`` and the job retries.
- retire: disabled, then the AuC's Ki and OPc overwritten with random values
  (never kept, never logged) and the AuC marked ``misc1 = "resim:retired"``, so
  the old card can never authenticate again and resim can tell a retired IMSI
  from a suspended one. PyHSS has no such flag of its own.
- attached: PyHSS records the serving MME (S6a Update-Location), VLR or SGSN
  (GSUP). Any of them set means a phone has registered with the IMSI.
- holds: PyHSS cannot hold SMS or block port-out: ``CORE_HOLDS_UNSUPPORTED``,
  as on osmo-hlr.

Uniqueness of the number. PyHSS does not enforce it, so resim does: after
setting the number on the new IMSI, the adapter looks the number up again.
PyHSS answers that lookup with the record only when exactly one subscriber
holds the number (``null`` when several do). Anything but our own record
means another client bound the same number at the same moment: ours is taken
off again and, after a short random pause, the move is decided afresh (at most
a few times, then ``CORE_BUSY``, retryable). So two IMSIs never keep one
number, across any number of resim processes. As on osmo-hlr there is no
transaction: between clearing the old IMSI and setting the new one the number
is on nobody; if setting it fails the number is put back, and a retry of the
same move completes an interrupted one (a free number binds to ``new_imsi``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from resim.adapters.corenet import rules
from resim.adapters.corenet.pyhss_http import PyHssApi
from resim.adapters.corenet.rules import CoreSubscriber
from resim.errors import ExternalError, InvalidInput

if TYPE_CHECKING:
    from resim.services.ports import CoreNetwork

RETIRED_MARK = "resim:retired"
NO_CREDENTIALS = "CORE_NO_CREDENTIALS"
SUBSCRIPTION_WITHDRAWAL = 2  # Cancellation-Type, TS 29.272 section 7.3.24
_HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")
_MOVE_TRIES = 4


@dataclass(frozen=True)
class PyHssSettings:
    url: str
    provisioning_key: str | None = None
    default_apn: int = 1  # the apn_id new subscribers get as their default
    apn_list: str = "1"  # comma-separated apn_ids they may use
    timeout: float = 5.0


@dataclass(frozen=True)
class _Record:
    subscriber_id: int
    auc_id: int
    imsi: str
    msisdn: str | None  # E.164 with "+"
    enabled: bool
    retired: bool
    serving: dict[str, Any]

    def view(self) -> CoreSubscriber:
        return CoreSubscriber(
            imsi=self.imsi, msisdn=self.msisdn, enabled=self.enabled, retired=self.retired
        )

    @property
    def attached(self) -> bool:
        return any(self.serving.get(k) for k in ("serving_mme", "serving_vlr", "serving_sgsn"))


class PyHssCoreNetwork:
    """One PyHSS API client per instance; operations on one instance are serialised."""

    def __init__(
        self, settings: PyHssSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._api = PyHssApi(
            settings.url,
            provisioning_key=settings.provisioning_key,
            timeout=settings.timeout,
            transport=transport,
        )
        self._lock = threading.RLock()

    def close(self) -> None:
        self._api.close()

    # ------------------------------------------------------------ the port

    def provision_imsi(self, *, imsi: str) -> None:
        rules.check_imsi(imsi)
        with self._lock:
            if self._record(imsi) is not None:
                return
            auc = self._api.auc_by_imsi(imsi)
            if auc is None or not isinstance(auc.get("auc_id"), int):
                raise ExternalError(
                    f"PyHSS has no keys (AuC record) for IMSI {imsi}; load them at stock intake",
                    retryable=False,
                    code=NO_CREDENTIALS,
                )
            body = {
                "imsi": imsi,
                "auc_id": auc["auc_id"],
                "default_apn": self._settings.default_apn,
                "apn_list": self._settings.apn_list,
                "enabled": True,
            }
            try:
                self._api.create_subscriber(body)
            except ExternalError:
                if self._record(imsi) is None:  # not "created meanwhile by another client"
                    raise

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None:
        digits = rules.check_msisdn(msisdn)[1:]
        rules.check_imsi(new_imsi)
        if old_imsi is not None:
            rules.check_imsi(old_imsi)
        with self._lock:
            for attempt in range(_MOVE_TRIES):
                if self._move_once(msisdn, digits, new_imsi, old_imsi):
                    return
                time.sleep(random.uniform(0, 0.03 * (attempt + 1)))
        raise rules.busy(f"{msisdn} is being bound by another client at the same time; retry")

    def suspend_imsi(self, *, imsi: str) -> None:
        with self._lock:
            rec = self._require(imsi)
            if rules.needs_suspend(rec.view()):
                self._api.update_subscriber(rec.subscriber_id, {"enabled": False})
            self._cancel_location(rec, reattach=False)

    def resume_imsi(self, *, imsi: str) -> None:
        with self._lock:
            rec = self._require(imsi)
            if rules.needs_resume(rec.view()):  # refuses a retired IMSI
                self._api.update_subscriber(rec.subscriber_id, {"enabled": True})

    def retire_imsi(self, *, imsi: str) -> None:
        """Disabled, then the keys overwritten; refused while the IMSI holds its number."""
        with self._lock:
            rec = self._require(imsi)
            if rules.needs_retire(rec.view()):
                if rec.enabled:
                    self._api.update_subscriber(rec.subscriber_id, {"enabled": False})
                # Last, so that a crash before it leaves "suspended", which a
                # retry of this call completes.
                self._api.update_auc(
                    rec.auc_id,
                    {"ki": _random_key(), "opc": _random_key(), "misc1": RETIRED_MARK},
                )
            self._cancel_location(rec, reattach=False)

    def msisdn_of(self, *, imsi: str) -> str | None:
        with self._lock:
            return self._require(imsi).msisdn

    def imsi_of(self, *, msisdn: str) -> str | None:
        digits = rules.check_msisdn(msisdn)[1:]
        with self._lock:
            found = self._api.subscriber_by_msisdn(digits)
            return str(found["imsi"]) if found else None

    def is_enabled(self, *, imsi: str) -> bool:
        with self._lock:
            return self._require(imsi).view().in_service

    def attached(self, *, imsi: str) -> bool:
        rules.check_imsi(imsi)
        with self._lock:
            rec = self._record(imsi)
            return rec is not None and rec.attached

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """PyHSS cannot hold SMS or block port-out: a hold is refused for good
        (``CORE_HOLDS_UNSUPPORTED``), never skipped in silence; see osmo_hlr.py."""
        rules.refuse_holds("PyHSS", imsi, sms_hold_until, port_out_block_until)

    # ------------------------------------------------------------ extras

    def subscriber(self, *, imsi: str) -> CoreSubscriber | None:
        rules.check_imsi(imsi)
        with self._lock:
            rec = self._record(imsi)
            return rec.view() if rec else None

    def load_credentials(self, *, imsi: str, iccid: str, k: str, opc: str) -> None:
        """Stock intake: the SIM's MILENAGE K and OPc (32 hex digits each) into an
        AuC record. Idempotent: keys already loaded for the IMSI are kept."""
        rules.check_imsi(imsi)
        if not _HEX128.match(k) or not _HEX128.match(opc):
            raise InvalidInput("K and OPc must be 32 hex digits each")
        with self._lock:
            if self._api.auc_by_imsi(imsi) is not None:
                return
            body = {"imsi": imsi, "iccid": iccid, "ki": k, "opc": opc, "amf": "8000", "sqn": 1}
            try:
                self._api.create_auc(body)
            except ExternalError:
                if self._api.auc_by_imsi(imsi) is None:
                    raise

    def cancel_location(self, *, imsi: str) -> bool:
        """Make the serving MME drop the IMSI and ask the phone to attach again
        (a network refresh). True when a Cancel-Location was queued, False when
        no MME serves the IMSI."""
        with self._lock:
            return self._cancel_location(self._require(imsi), reattach=True)

    # ------------------------------------------------------------ internals

    def _move_once(self, msisdn: str, digits: str, new_imsi: str, old_imsi: str | None) -> bool:
        """One attempt; True when done, False when another client collided."""
        new = self._record(new_imsi)
        old = self._record(old_imsi) if old_imsi is not None else None
        found = self._api.subscriber_by_msisdn(digits)
        holder = str(found["imsi"]) if found else None
        if any((rec.msisdn == msisdn) != (holder == rec.imsi) for rec in (new, old) if rec):
            # A record claims the number while the lookup by number disagrees:
            # another move of it is half done. Look again.
            return False
        plan = rules.plan_move(
            msisdn=msisdn,
            new=new.view() if new else None,
            new_imsi=new_imsi,
            old=old.view() if old else None,
            old_imsi=old_imsi,
            holder=holder,
        )
        if not plan.bind:
            return True
        assert new is not None  # plan_move refuses an unknown new IMSI
        cleared = old if old is not None and plan.clear_imsi == old.imsi else None
        if cleared is not None:
            self._api.update_subscriber(cleared.subscriber_id, {"msisdn": ""})
        try:
            self._api.update_subscriber(new.subscriber_id, {"msisdn": digits})
        except ExternalError:
            if cleared is not None:
                with contextlib.suppress(ExternalError):
                    self._api.update_subscriber(cleared.subscriber_id, {"msisdn": digits})
            raise
        check = self._api.subscriber_by_msisdn(digits)
        if check is not None and str(check.get("imsi")) == new_imsi:
            return True
        # Several subscribers hold the number now: another move of it ran at
        # the same moment. Take ours off; the next attempt decides afresh.
        self._api.update_subscriber(new.subscriber_id, {"msisdn": ""})
        return False

    def _cancel_location(self, rec: _Record, *, reattach: bool) -> bool:
        mme = rec.serving.get("serving_mme")
        if not mme:
            return False
        peer = str(rec.serving.get("serving_mme_peer") or mme).split(";")[0]
        self._api.push_clr(
            rec.imsi,
            {
                "diameterPeer": peer,
                "DestinationHost": mme,
                "DestinationRealm": rec.serving.get("serving_mme_realm") or "",
                "cancellationType": SUBSCRIPTION_WITHDRAWAL,
                "immediateReattach": reattach,
            },
        )
        return True

    def _record(self, imsi: str) -> _Record | None:
        sub = self._api.subscriber_by_imsi(imsi)
        if sub is None:
            return None
        sub_id, auc_id = sub.get("subscriber_id"), sub.get("auc_id")
        if sub.get("imsi") != imsi or not isinstance(sub_id, int) or not isinstance(auc_id, int):
            raise ExternalError(
                f"PyHSS answered an unexpected record for {imsi}",
                retryable=False,
                code=rules.PROTOCOL_ERROR,
            )
        auc = self._api.auc(auc_id)
        number = sub.get("msisdn")
        return _Record(
            subscriber_id=sub_id,
            auc_id=auc_id,
            imsi=imsi,
            msisdn=f"+{number}" if number else None,
            enabled=bool(sub.get("enabled")),
            retired=auc is None or auc.get("misc1") == RETIRED_MARK,
            serving={k: v for k, v in sub.items() if k.startswith("serving_")},
        )

    def _require(self, imsi: str) -> _Record:
        rules.check_imsi(imsi)
        rec = self._record(imsi)
        if rec is None:
            raise rules.unknown_imsi(imsi)
        return rec


def _random_key() -> str:
    return secrets.token_hex(16).upper()


if TYPE_CHECKING:

    def _conforms(adapter: PyHssCoreNetwork) -> CoreNetwork:
        return adapter
