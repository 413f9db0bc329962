"""Fulfilling an approved request: the order, install, cut-over, and every ending.

Methods of ``ReplacementRequest`` (see ``resim.domain.request``); the
sub-steps follow ``domain.substates``.
"""

from __future__ import annotations

import datetime as dt

from resim.domain import events as ev
from resim.domain.kinds import (
    SimForm,
)
from resim.domain.request_state import RequestState
from resim.domain.substates import (
    INSTALL_STEPS,
    OLD_SIM_STEPS,
    SMDP_STEPS,
    InstallStep,
    OldSimStep,
    SmdpStep,
    check_substate,
)
from resim.domain.workflow import State, check_transition
from resim.errors import Conflict


class Fulfilment(RequestState):
    """Fulfilling an approved request: the order, install, cut-over, and every ending."""

    # ------------------------------------------------------------ ordering

    def start_provisioning(self, *, at: dt.datetime, actor: str = "worker") -> None:
        """approved -> provisioning: a worker starts ordering the new eSIM."""
        why = self.move_to(State.PROVISIONING, at=at)
        self._record(ev.ProvisioningStarted(request_id=self.id, at=at, actor=actor, why=why))

    def reserve_profile(
        self, *, iccid: str, matching_id: str, at: dt.datetime, actor: str = "worker"
    ) -> None:
        """A provisioning request takes an eSIM profile from stock; its order starts afresh."""
        if self.state != State.PROVISIONING or self.new_iccid is not None:
            raise Conflict("the request holds a profile already", code="PROFILE_HELD")
        self.record_smdp_step(None, at=at)
        self.new_iccid = iccid
        self.matching_id = matching_id
        self._record(
            ev.SimReserved(request_id=self.id, at=at, actor=actor, iccid=iccid, form="esim")
        )

    def order_card(self, *, iccid: str, at: dt.datetime, actor: str = "worker") -> None:
        """approved -> provisioning for a courier: the card is reserved to be posted."""
        why = self.move_to(State.PROVISIONING, at=at)
        self.new_iccid = iccid
        self._record(
            ev.SimReserved(
                request_id=self.id, at=at, actor=actor, why=why, iccid=iccid, form="courier"
            )
        )

    def record_smdp_step(self, step: str | None, *, at: dt.datetime) -> None:
        """The ES2+ order's sub-step (``SMDP_STEPS``); None starts the order over.

        Allowed whatever the request's state: a closed request's late job still
        records how far its order got, so the profile is withdrawn correctly.
        """
        target = SmdpStep(step) if step else SmdpStep.NONE
        why = check_substate(SMDP_STEPS, "smdp_step", self.smdp_progress, target)
        if why is None:
            return
        self.smdp_step = None if target == SmdpStep.NONE else target.value
        self._record(
            ev.SmdpStepRecorded(request_id=self.id, at=at, actor="worker", why=why, step=step)
        )

    def mark_ready(
        self,
        *,
        activation_code_enc: str,
        expires_at: dt.datetime,
        at: dt.datetime,
        smdp_matching_id: str | None = None,
    ) -> None:
        """provisioning -> ready: the order is confirmed, the activation code sealed.

        ``smdp_matching_id``: the SM-DP+'s answer when it differs from ours
        (SGP.22 5.3.2; it may be empty: an EID-bound order).
        """
        check_transition(self.state, State.READY)
        self.record_smdp_step(SmdpStep.CONFIRMED.value, at=at)
        if smdp_matching_id is not None and smdp_matching_id != self.matching_id:
            self.matching_id = smdp_matching_id  # sealed at rest like ours, even when empty
            self._record(
                ev.MatchingIdFromSmdp(
                    request_id=self.id, at=at, actor="worker", empty=smdp_matching_id == ""
                )
            )
        self.activation_code_enc = activation_code_enc
        self.activation_expires_at = expires_at
        why = self.move_to(State.READY, at=at)
        self._record(
            ev.MarkedReady(
                request_id=self.id, at=at, actor="worker", why=why, expires_at=expires_at
            )
        )

    def dispatch(self, *, shipment_ref: str, at: dt.datetime) -> None:
        """provisioning -> ready for a courier card: handed to the carrier."""
        if self.dispatched_at is not None or self.new_iccid is None:
            raise Conflict("the card was dispatched already", code="ALREADY_DISPATCHED")
        why = self.move_to(State.READY, at=at)
        self.dispatched_at = at
        self.shipment_ref = shipment_ref[:64]
        self._record(
            ev.Dispatched(
                request_id=self.id,
                at=at,
                actor="worker",
                why=why,
                iccid=self.new_iccid,
                shipment_ref=self.shipment_ref,
            )
        )

    def hand_over(self, *, iccid: str, actor: str, at: dt.datetime) -> None:
        """approved -> provisioning -> ready, installed: a card handed over in a store."""
        check_transition(self.state, State.PROVISIONING)
        self.new_iccid = iccid
        self.move_to(State.PROVISIONING, at=at)
        why = self.move_to(State.READY, at=at)
        self._record(ev.HandedOver(request_id=self.id, at=at, actor=actor, why=why, iccid=iccid))
        self.install(how="handed_over", actor=actor, at=at)

    # ------------------------------------------------------------ installing

    def install(self, *, how: str, actor: str, at: dt.datetime, source: str | None = None) -> bool:
        """The new SIM is on the device: record it (the cut-over job follows), once.

        False, and nothing changes, unless the request is ready and not yet
        installed: a late callback after a reconcile (or the reverse) is harmless.
        """
        if self.state != State.READY or self.installed_at is not None:
            return False
        why = check_substate(INSTALL_STEPS, "install", self.install_progress, InstallStep.INSTALLED)
        self.installed_at = at
        self.install_failed_at = None
        self._record(
            ev.Installed(
                request_id=self.id,
                at=at,
                actor=actor,
                why=why,
                how=how,
                iccid=self.new_iccid,
                source=source,
            )
        )
        return True

    def install_failed(self, *, at: dt.datetime, actor: str) -> bool:
        """Point 4 failed on the device: the customer may reissue. False if not ready."""
        if self.state != State.READY or self.installed_at is not None:
            return False
        why = check_substate(INSTALL_STEPS, "install", self.install_progress, InstallStep.FAILED)
        self.install_failed_at = at
        self._record(ev.InstallFailed(request_id=self.id, at=at, actor=actor, why=why))
        return True

    def complete(
        self,
        *,
        at: dt.datetime,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """ready -> completed: the number moved to the new SIM, the old one retired."""
        if self.new_iccid is None:
            raise Conflict("no new SIM to cut over to", code="NO_NEW_SIM")
        why = self.move_to(State.COMPLETED, at=at)
        self.completed_at = at
        self._record(
            ev.Completed(
                request_id=self.id,
                at=at,
                actor="worker",
                why=why,
                new_iccid=self.new_iccid,
                old_iccid=self.old_iccid,
                sms_hold_until=sms_hold_until,
                port_out_block_until=port_out_block_until,
            )
        )

    def reissue(self, *, actor: str, at: dt.datetime) -> str | None:
        """ready -> provisioning: the download failed on the device; order a new profile.

        Returns the withdrawn ICCID (the caller withdraws that order; its
        MatchingID must travel sealed, which the domain cannot do).
        """
        if self.installed_at is not None:
            raise Conflict("the eSIM is installed; nothing to reissue", code="ALREADY_INSTALLED")
        if self.state != State.READY:
            raise Conflict(
                f"only a ready request can be reissued; this one is {self.state.value}",
                code="NOT_READY",
            )
        withdrawn = self.new_iccid
        why = self.move_to(State.PROVISIONING, at=at)
        self.record_smdp_step(None, at=at)
        check_substate(INSTALL_STEPS, "install", self.install_progress, InstallStep.PENDING)
        self.new_iccid = None
        self.matching_id = None
        self.activation_code_enc = None
        self.activation_expires_at = None
        self.install_failed_at = None
        self._record(
            ev.Reissued(request_id=self.id, at=at, actor=actor, why=why, withdrawn_iccid=withdrawn)
        )
        return withdrawn

    # ------------------------------------------------------------ ending

    def cancel(self, *, by: str, note: str | None, at: dt.datetime) -> State:
        """-> cancelled (customer, agent, "this was not me"); returns the state it left.

        Refused once the new eSIM is installed: the number is moving to it.
        A ready eSIM's confirmed order is withdrawn (``Cancelled.withdraw_iccid``).
        """
        if not self.is_open:
            raise Conflict(f"the request is already {self.state.value}", code="REQUEST_CLOSED")
        if self.installed_at is not None:
            raise Conflict(
                "the new eSIM is already installed; the number is moving to it",
                code="ALREADY_INSTALLED",
            )
        was = self.state
        why = self.move_to(State.CANCELLED, at=at)
        self.failure_reason = note
        withdraw = (
            self.new_iccid
            if was == State.READY and self.new_iccid and self.target_form == SimForm.ESIM
            else None
        )
        self._record(
            ev.Cancelled(
                request_id=self.id,
                at=at,
                actor=by,
                why=why,
                from_state=was.value,
                withdraw_iccid=withdraw,
            )
        )
        return was

    def report_not_me(self, *, was: State, cancelled: bool, at: dt.datetime) -> None:
        """The account holder said "this was not me": the link is used up, fraud noted."""
        self.not_me_token_hash = None
        self.fraud_reported_at = at
        self._record(
            ev.ReportedNotMe(
                request_id=self.id,
                at=at,
                actor="customer:not-me",
                state=was.value,
                cancelled=cancelled,
            )
        )

    def expire(
        self,
        *,
        what: str,
        at: dt.datetime,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        """-> expired (not verified, step-up not given, activation code unused in time).

        An unused ready order is withdrawn (``Expired.withdraw_iccid``).
        """
        was = self.state
        why = self.move_to(State.EXPIRED, at=at)
        self.otp_hash = None
        if code is not None:
            self.failure_code = code
            self.failure_reason = reason
        withdraw = self.new_iccid if was == State.READY else None
        self._record(
            ev.Expired(
                request_id=self.id,
                at=at,
                actor="system",
                why=why,
                from_state=was.value,
                what=what,
                withdraw_iccid=withdraw,
            )
        )

    def fail(self, *, code: str, reason: str, at: dt.datetime, actor: str = "worker") -> None:
        """-> failed for good (no stock, the SM-DP+ or core network refused)."""
        why = self.move_to(State.FAILED, at=at)
        self.failure_code = code
        self.failure_reason = reason
        confirmed = self.new_iccid is not None and self.smdp_progress == SmdpStep.CONFIRMED
        self._record(
            ev.Failed(
                request_id=self.id,
                at=at,
                actor=actor,
                why=why,
                code=code,
                reason=reason,
                withdraw_iccid=self.new_iccid if confirmed else None,
            )
        )

    # ------------------------------------------------------------ the old SIM

    def old_sim_barred(
        self,
        suspended: bool,
        *,
        at: dt.datetime,
        actor: str = "worker",
        from_request: str | None = None,
    ) -> bool:
        """Whether the old SIM is barred on this request's behalf (``OLD_SIM_STEPS``).

        ``from_request``: this request takes over the suspension an earlier
        request of the line held (audited). Returns whether anything changed.
        """
        target = OldSimStep.SUSPENDED if suspended else OldSimStep.IN_SERVICE
        why = check_substate(OLD_SIM_STEPS, "old_sim", self.old_sim_progress, target)
        if why is None:
            return False
        self.old_sim_suspended = suspended
        self._record(
            ev.OldSimBarred(
                request_id=self.id,
                at=at,
                actor=actor,
                why=why,
                suspended=suspended,
                iccid=self.old_iccid,
                from_request=from_request,
            )
        )
        return True
