"""The CoreNetwork port on a real HLR: Osmocom's osmo-hlr, over CTRL and VTY.

Two interfaces, because neither does everything (osmo-hlr 1.5):

- CTRL (IPA framing, default port 4259, :mod:`.osmo_ctrl`) reads records and
  writes data: ``subscriber.create``, ``msisdn``, ``aud2g`` / ``aud3g``,
  ``info``. Its ``cs-enabled`` / ``ps-enabled`` variables only write the
  database: a phone attached at that moment keeps service until its next
  location update. So this adapter never uses them.
- VTY (telnet, default port 4258, :mod:`.osmo_vty`) switches access:
  ``subscriber imsi <IMSI> update network-access-mode none`` (suspend, and
  the first step of retire) and ``... cs+ps`` (resume). Switching off through
  the VTY makes osmo-hlr send GSUP Delete-Subscriber-Data to the VLR/SGSN
  serving the IMSI, which drops the phone at once; a later location update
  is refused. (Proved by ``tests/integration/test_corenet_detach.py`` with a
  fake VLR attached over GSUP.) osmo-hlr sends that message only when a
  flag goes from on to off: an IMSI already off is not detached again.

Mapping:

- provision: CTRL ``SET subscriber.create <IMSI>`` (the HLR creates it with
  CS and PS access on, as the built-in adapter does);
- MSISDN: CTRL ``msisdn`` (digits, or ``none``). resim speaks E.164 with
  ``+``; the HLR stores the same number without it. CTRL does not tell the
  network either: when the new IMSI is registered already, the number is
  written once more over the VTY (``update msisdn``), which sends GSUP
  InsertSubscriberData with it to the serving VLR/SGSN;
- suspend / resume: VTY ``network-access-mode none`` / ``cs+ps``;
- retire: VTY ``network-access-mode none`` (detaches), then the
  authentication data deleted over CTRL (``aud2g`` and ``aud3g`` to
  ``none``), so the old card can never authenticate again;
- attached: CTRL ``info`` names the VLR (``vlr_number``) and SGSN
  (``sgsn_number``) whose location update the HLR accepted last; it prints
  them only once one came, and keeps them after a Delete-Subscriber-Data.
  Either present means the IMSI has registered since the record was made.

Errors are classified alike on both interfaces: a connection that breaks,
is refused or stays silent is a retryable ``CORE_UNAVAILABLE``; an unknown
IMSI is ``CORE_UNKNOWN_IMSI``; any other refusal is a permanent
``CORE_REJECTED``; an answer we cannot read is ``CORE_PROTOCOL_ERROR``.

osmo-hlr has no "retired" flag. This adapter reads an IMSI as retired when
both access flags are off *and* it has no authentication data, which is what
``retire_imsi`` leaves behind. Consequence: a record that never got keys and
is then suspended reads as retired (resume and moves onto it are refused).
Load the SIM's keys (:meth:`OsmoHlrCoreNetwork.set_milenage_keys`, or the
HLR's own tools at stock intake) before relying on suspend/resume.
``is_enabled`` is true while either access flag is on (any service at all).

The MSISDN is UNIQUE in osmo-hlr, so ``move_msisdn`` clears it on the old IMSI
before setting it on the new one. CTRL has no transactions: between the two
commands other CTRL clients can see the number on nobody. If setting it on the
new IMSI fails, the number is put back on the old one before the error is
raised; if even that fails (the HLR went away), the number stays unbound and
a retry of the same move completes it (a free number binds to ``new_imsi``).
Within one process, operations on one instance are serialised by a lock;
across processes the HLR's unique index keeps two IMSIs from ever sharing a
number. Errors: see :mod:`resim.adapters.corenet.rules`, ``osmo_ctrl`` and ``osmo_vty``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from typing import TYPE_CHECKING

from resim.adapters.corenet import rules
from resim.adapters.corenet.osmo_ctrl import CtrlClient, CtrlError, parse_table
from resim.adapters.corenet.osmo_records import Record, holder_of, read_record
from resim.adapters.corenet.osmo_vty import DEFAULT_VTY_PORT, VtyClient, VtyError
from resim.adapters.corenet.rules import CoreSubscriber
from resim.errors import ExternalError, InvalidInput

if TYPE_CHECKING:
    from resim.services.ports import CoreNetwork

DEFAULT_CTRL_PORT = 4259
# What osmo-hlr 1.5 answers to a SET of an MSISDN another subscriber holds
# (its database's unique constraint), learnt against the running daemon.
MSISDN_TAKEN = "Update MSISDN failed"
# ... and what its VTY prints for the same refusal.
MSISDN_TAKEN_VTY = "% Error: cannot update MSISDN"
_HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")


class OsmoHlrCoreNetwork:
    """Talks to osmo-hlr's CTRL port (default 4259) and VTY (default 4258).

    One connection to each per instance, opened on first use; ``vty_host``
    defaults to ``host``. ``timeout`` bounds connecting and each answer.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_CTRL_PORT,
        *,
        vty_host: str | None = None,
        vty_port: int = DEFAULT_VTY_PORT,
        timeout: float = 5.0,
    ) -> None:
        self._ctrl = CtrlClient(host, port, timeout=timeout)
        self._vty = VtyClient(vty_host or host, vty_port, timeout=timeout)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._ctrl.close()
        self._vty.close()

    # ------------------------------------------------------------ the port

    def provision_imsi(self, *, imsi: str) -> None:
        rules.check_imsi(imsi)
        with self._lock:
            if self._record(imsi) is not None:
                return
            try:
                self._ctrl.set("subscriber.create", imsi)
            except CtrlError:
                if self._record(imsi) is None:  # not "created meanwhile by another client"
                    raise

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None:
        digits = rules.check_msisdn(msisdn)[1:]
        rules.check_imsi(new_imsi)
        if old_imsi is not None:
            rules.check_imsi(old_imsi)
        with self._lock:
            new, old, holder = self._snapshot(msisdn, digits, new_imsi, old_imsi)
            plan = rules.plan_move(
                msisdn=msisdn,
                new=new.view() if new else None,
                new_imsi=new_imsi,
                old=old.view() if old else None,
                old_imsi=old_imsi,
                holder=holder,
            )
            if plan.bind:
                self._bind(msisdn, digits, new_imsi, plan.clear_imsi)
            self._tell_serving_network(new_imsi, digits)

    def _bind(self, msisdn: str, digits: str, new_imsi: str, clear_imsi: str | None) -> None:
        """The writes of a move, over CTRL (lock held); see the module docstring."""
        if clear_imsi is not None:
            # Narrow the window in which another client could have moved the
            # number away (and given the old IMSI another one) since we looked.
            if self._holder(digits) != clear_imsi:
                raise rules.busy(f"{msisdn} moved while being moved; retry")
            self._set(clear_imsi, "msisdn", "none")
        try:
            self._set(new_imsi, "msisdn", digits)
        except ExternalError as exc:
            self._after_failed_bind(msisdn, digits, new_imsi, clear_imsi, exc)

    def _tell_serving_network(self, imsi: str, digits: str) -> None:
        """A VLR/SGSN that serves ``imsi`` learns its number now (lock held).

        CTRL's ``msisdn`` only writes the database; the VTY's ``update msisdn``
        also sends GSUP InsertSubscriberData with the number to the VLR/SGSN on
        record. Writing the same number again over the VTY is how to send that
        (osmo-hlr has no command that only notifies). Needed when the new SIM
        registered before the cut-over (an eSIM installed and attached, its
        callback late): without it the network keeps it without a number until
        its next location update. Also run on a repeated move, so a retry after
        a failure here completes the notice.
        """
        info = parse_table(self._ctrl.get(f"subscriber.by-imsi-{imsi}.info"))
        if info.get("msisdn") != digits:
            return  # moved on meanwhile: whoever moved it tells the network
        if not (info.get("vlr_number") or info.get("sgsn_number")):
            return  # not registered anywhere: the location update will carry it
        try:
            self._vty.run(f"subscriber imsi {imsi} update msisdn {digits}")
        except VtyError as exc:
            if exc.code == rules.UNKNOWN_IMSI:
                raise rules.unknown_imsi(imsi) from exc
            if exc.reason.startswith(MSISDN_TAKEN_VTY):
                # Another client took the number between our read and this write.
                raise rules.busy(f"+{digits} moved while its new IMSI was notified") from exc
            raise

    def suspend_imsi(self, *, imsi: str) -> None:
        with self._lock:
            rec = self._require(imsi)
            if not rec.retired and (rec.cs or rec.ps):
                self._set_access(imsi, False)

    def resume_imsi(self, *, imsi: str) -> None:
        with self._lock:
            rec = self._require(imsi)
            rules.needs_resume(rec.view())  # refuses a retired IMSI
            if not (rec.cs and rec.ps):  # also completes a half-done resume
                self._set_access(imsi, True)

    def retire_imsi(self, *, imsi: str) -> None:
        """Access off, then keys deleted; refused while the IMSI holds its MSISDN."""
        with self._lock:
            rec = self._require(imsi)
            if not rules.needs_retire(rec.view()):
                return
            self._set_access(imsi, False)
            for var in ("aud2g", "aud3g"):
                # Deleting absent keys is an error on osmo-hlr: look first.
                if self._ctrl.get(f"subscriber.by-imsi-{imsi}.{var}") != "none":
                    self._set(imsi, var, "none")

    def msisdn_of(self, *, imsi: str) -> str | None:
        with self._lock:
            return self._require(imsi).msisdn

    def imsi_of(self, *, msisdn: str) -> str | None:
        digits = rules.check_msisdn(msisdn)[1:]
        with self._lock:
            return self._holder(digits)

    def is_enabled(self, *, imsi: str) -> bool:
        with self._lock:
            return self._require(imsi).view().in_service

    def attached(self, *, imsi: str) -> bool:
        rules.check_imsi(imsi)
        with self._lock:
            try:
                info = parse_table(self._ctrl.get(f"subscriber.by-imsi-{imsi}.info"))
            except CtrlError as exc:
                if exc.code == rules.UNKNOWN_IMSI:
                    return False
                raise
        if info.get("imsi") != imsi or "nam_cs" not in info:
            raise ExternalError(
                f"osmo-hlr answered an unexpected record for {imsi}",
                retryable=False,
                code=rules.PROTOCOL_ERROR,
            )
        return bool(info.get("vlr_number") or info.get("sgsn_number"))

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """osmo-hlr cannot hold SMS or block port-out: a hold is refused for good.

        SEC-06 must not be skipped in silence. An operator on osmo-hlr sets the
        brand's ``sms_hold_hours`` and ``port_out_block_days`` to 0 (resim then
        asks for no hold) or puts the holds in the SMSC and number portability
        database; asking for a hold here raises ``CORE_HOLDS_UNSUPPORTED``
        (permanent), so the cut-over fails before the number moves.
        """
        rules.refuse_holds("osmo-hlr", imsi, sms_hold_until, port_out_block_until)

    def cancel_location(self, *, imsi: str) -> bool:
        """osmo-hlr 1.5 sends Cancel-Location only when a phone registers elsewhere.

        Neither CTRL nor VTY asks for one; the only lever, switching access off
        and on again (Delete-Subscriber-Data), bars the SIM for a moment and
        leaves it barred if the second command fails, which resim cannot tell
        apart from a suspension afterwards. So a refresh is refused for good
        (``CORE_REFRESH_UNSUPPORTED``): the customer restarts the phone.
        """
        rules.check_imsi(imsi)
        raise ExternalError(
            "osmo-hlr cannot send a Cancel-Location on request; ask the customer to restart "
            "the phone (or switch airplane mode on and off)",
            retryable=False,
            code=rules.REFRESH_UNSUPPORTED,
        )

    # ------------------------------------------------------------ extras

    def subscriber(self, *, imsi: str) -> CoreSubscriber | None:
        rules.check_imsi(imsi)
        with self._lock:
            rec = self._record(imsi)
            return rec.view() if rec else None

    def set_milenage_keys(self, *, imsi: str, k: str, opc: str) -> None:
        """Load a SIM's 3G keys (MILENAGE, K and OPc as 32 hex digits each)."""
        if not _HEX128.match(k) or not _HEX128.match(opc):
            raise InvalidInput("K and OPc must be 32 hex digits each")
        with self._lock:
            rec = self._require(imsi)
            if rec.retired:
                raise rules.imsi_retired(imsi)
            self._set(imsi, "aud3g", f"milenage,{k},opc,{opc}")

    # ------------------------------------------------------------ internals

    def _record(self, imsi: str) -> Record | None:
        return read_record(self._ctrl, imsi)

    def _require(self, imsi: str) -> Record:
        rules.check_imsi(imsi)
        rec = self._record(imsi)
        if rec is None:
            raise rules.unknown_imsi(imsi)
        return rec

    def _holder(self, digits: str) -> str | None:
        return holder_of(self._ctrl, digits)

    def _snapshot(
        self, msisdn: str, digits: str, new_imsi: str, old_imsi: str | None, tries: int = 5
    ) -> tuple[Record | None, Record | None, str | None]:
        """Read both records and the holder until they agree with each other.

        CTRL reads are separate commands, so another client can move the number
        between them; a record that claims the number while the lookup by
        number names someone else (or the reverse) means: look again.
        """
        for _ in range(tries):
            new = self._record(new_imsi)
            old = self._record(old_imsi) if old_imsi is not None else None
            holder = self._holder(digits)
            if all((rec.msisdn == msisdn) == (holder == rec.imsi) for rec in (new, old) if rec):
                return new, old, holder
        raise rules.busy(f"{msisdn} keeps moving while being read")

    def _set(self, imsi: str, variable: str, value: str) -> None:
        try:
            self._ctrl.set(f"subscriber.by-imsi-{imsi}.{variable}", value)
        except CtrlError as exc:
            if exc.code == rules.UNKNOWN_IMSI:
                raise rules.unknown_imsi(imsi) from exc
            raise

    def _set_access(self, imsi: str, on: bool) -> None:
        """Both access flags on or off, through the VTY so that the network hears of it.

        Off sends Delete-Subscriber-Data to the serving VLR/SGSN (see the module
        docstring); CTRL's ``cs-enabled``/``ps-enabled`` would not. One command
        sets both flags, so no half-done state is left between two commands.
        """
        mode = "cs+ps" if on else "none"
        try:
            self._vty.run(f"subscriber imsi {imsi} update network-access-mode {mode}")
        except VtyError as exc:
            if exc.code == rules.UNKNOWN_IMSI:
                raise rules.unknown_imsi(imsi) from exc
            raise

    def _after_failed_bind(
        self,
        msisdn: str,
        digits: str,
        new_imsi: str,
        cleared: str | None,
        exc: ExternalError,
    ) -> None:
        """Setting the number on ``new_imsi`` failed: put it back, then explain."""
        if cleared is not None:
            # Taken meanwhile, or the HLR is gone: either shows in the holder below.
            with contextlib.suppress(ExternalError):
                self._set(cleared, "msisdn", digits)
        try:
            holder = self._holder(digits)
        except ExternalError:
            raise exc from None
        if holder == new_imsi:
            return  # the SET took effect; only its answer was lost
        if holder is not None and holder != cleared:
            raise rules.msisdn_conflict(msisdn, holder) from exc
        if isinstance(exc, CtrlError) and exc.reason == MSISDN_TAKEN:
            # The HLR's unique-number refusal, yet nobody else holds the number
            # now: another client held it for a moment (between our look and our
            # SET) and moved it on. Nothing is wrong with this move; try again.
            raise rules.busy(f"{msisdn} was held by another move for a moment; retry") from exc
        raise exc


if TYPE_CHECKING:

    def _conforms(adapter: OsmoHlrCoreNetwork) -> CoreNetwork:
        return adapter
