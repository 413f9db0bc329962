"""The replacement request: the aggregate at the centre, and its behaviour.

Pure Python (mapped to its table by ``resim.adapters.db.orm``). Callers ask the
request to act -- ``open``, ``verify``, ``assess``, ``approve``, ``reject``,
``start_provisioning`` (order), ``mark_ready``, ``install``, ``complete`` (cut
over), ``cancel``, ``expire``, ``fail``, ``reissue`` and the smaller steps
below -- and never assign its fields (a test walks ``src/resim`` for that).
Each method checks the transition table (``domain.workflow``) or a sub-state
table (``domain.substates``), raises ``InvalidTransition`` (nothing changed)
on a forbidden pair, and records what happened in :attr:`events`
(``domain.events``). The unit of work turns those into audit rows and outbox
jobs when it commits (``services.event_handlers``).

Policy decisions (which rules fire, how long cooling-off lasts, who may
review) stay with the callers; the request enforces its own consistency:
state and sub-states, the four-eyes count, the fields each step sets together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from resim.domain import events as ev
from resim.domain.kinds import (
    Channel,
    DeliveryMode,
    Reason,
    RequestKind,
    RiskOutcome,
    SimForm,
)
from resim.domain.substates import (
    INSTALL_STEPS,
    OLD_SIM_STEPS,
    SMDP_STEPS,
    InstallStep,
    OldSimStep,
    SmdpStep,
    check_substate,
)
from resim.domain.workflow import OPEN_STATES, State, check_transition
from resim.errors import Conflict, Refused

OPENED = "a new request, waiting for the customer to prove who they are"


class ReplacementRequest:
    """The aggregate. Only :meth:`move_to` changes ``state``; only the methods
    here change any field (the constructor is for the mapper and tests)."""

    def __init__(
        self,
        *,
        id: str,
        line_id: str,
        brand_id: str,
        subscriber_id: str,
        msisdn: str,
        reason: Reason,
        channel: Channel,
        actor: str,
        created_at: dt.datetime,
        old_iccid: str | None,
        eid: str | None = None,
        kind: RequestKind = RequestKind.REPLACEMENT,
    ) -> None:
        self.id = id
        self.kind = kind
        self.line_id = line_id
        self.brand_id = brand_id
        self.subscriber_id = subscriber_id
        self.msisdn = msisdn
        self.reason = reason
        self.channel = channel
        self.actor = actor
        self.created_at = created_at
        self.updated_at = created_at
        self.state = State.REQUESTED
        # Stored in the open-request partial index: equals line_id while open.
        self.open_line_id: str | None = line_id
        self.old_iccid = old_iccid
        self.eid = eid
        self.target_form = SimForm.ESIM
        # None on requests made before delivery modes existed: read ``delivery``.
        self.delivery_mode: DeliveryMode | None = None
        # courier: when the card was handed to the carrier and its reference
        self.dispatched_at: dt.datetime | None = None
        self.shipment_ref: str | None = None
        # the portal language the request was opened in: its messages use it
        self.language: str | None = None
        # verification
        self.otp_hash: str | None = None
        self.otp_expires_at: dt.datetime | None = None
        self.otp_attempts = 0
        self.verified_at: dt.datetime | None = None
        self.verification_methods: list[str] = []
        # every method proved, with its strength, time and who recorded it (no secrets)
        self.verification_evidence: list[dict[str, Any]] = []
        # methods the risk engine asked for on top (outcome step_up), None if none
        self.step_up_methods: list[str] | None = None
        # where the request came from (risk rules: new device or country)
        self.source_ip: str | None = None
        self.device_id: str | None = None  # SHA-256 of the device identifier
        self.country: str | None = None
        # risk and review
        self.risk_outcome: RiskOutcome | None = None
        self.risk_reasons: list[dict[str, str]] = []
        self.reviewed_by: str | None = None
        self.review_note: str | None = None
        # SEC-08 four eyes: high-risk and lock-override requests need two approvers
        self.required_approvals = 1
        self.approvals: list[dict[str, Any]] = []
        self.lock_override = False
        # SEC-07 cooling-off: provisioning starts no earlier than this
        self.cooling_off_until: dt.datetime | None = None
        self.fraud_reported_at: dt.datetime | None = None
        # fee (recorded, charged by billing later)
        self.fee_minor = 0
        self.fee_currency: str | None = None
        # provisioning
        self.new_iccid: str | None = None
        self.matching_id: str | None = None
        self.smdp_step: str | None = None  # None | "ordered" | "confirmed"
        self.activation_code_enc: str | None = None
        self.activation_expires_at: dt.datetime | None = None
        self.install_failed_at: dt.datetime | None = None
        self.installed_at: dt.datetime | None = None
        self.old_sim_suspended = False
        self.completed_at: dt.datetime | None = None
        # failure
        self.failure_code: str | None = None
        self.failure_reason: str | None = None
        self.not_me_token_hash: str | None = None
        # Issue 12: the console session of the agent who opened or took over the
        # request; only it shows the customer the eSIM on the hand-over screen.
        self.agent_session_id: str | None = None

    # ------------------------------------------------------------ reading

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def delivery(self) -> DeliveryMode:
        """The delivery mode; a physical request without one is a store pickup."""
        if self.delivery_mode is not None:
            return DeliveryMode(self.delivery_mode)
        return DeliveryMode.ESIM if self.target_form == SimForm.ESIM else DeliveryMode.PICKUP

    @property
    def events(self) -> list[ev.RequestEvent]:
        """What happened since the request was loaded, oldest first (not persisted).

        A request loaded by the mapper skips ``__init__``: the list is made on
        first use. The unit of work empties it when it translates the events.
        """
        found: list[ev.RequestEvent] | None = vars(self).get("_events")
        if found is None:
            found = []
            vars(self)["_events"] = found
        return found

    def take_events(self) -> list[ev.RequestEvent]:
        """Remove and return the recorded events (the unit of work calls this)."""
        found: list[ev.RequestEvent] | None = vars(self).get("_events")
        if not found:
            return []
        vars(self)["_events"] = []
        return found

    @property
    def smdp_progress(self) -> SmdpStep:
        return SmdpStep(self.smdp_step) if self.smdp_step else SmdpStep.NONE

    @property
    def install_progress(self) -> InstallStep:
        if self.installed_at is not None:
            return InstallStep.INSTALLED
        return InstallStep.FAILED if self.install_failed_at is not None else InstallStep.PENDING

    @property
    def old_sim_progress(self) -> OldSimStep:
        return OldSimStep.SUSPENDED if self.old_sim_suspended else OldSimStep.IN_SERVICE

    # ------------------------------------------------------------ the table

    def move_to(self, target: State, *, at: dt.datetime) -> str:
        """Change state if the table allows it; return the edge's reason.

        The low-level step under every method below; it records no event.
        """
        why = check_transition(self.state, target)
        self.state = target
        self.updated_at = at
        self.open_line_id = self.line_id if target in OPEN_STATES else None
        return why

    def _record(self, event: ev.RequestEvent) -> None:
        self.events.append(event)

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        id: str,
        line_id: str,
        brand_id: str,
        subscriber_id: str,
        msisdn: str,
        reason: Reason,
        channel: Channel,
        actor: str,
        at: dt.datetime,
        old_iccid: str | None,
        eid: str | None = None,
        kind: RequestKind = RequestKind.REPLACEMENT,
        delivery_mode: DeliveryMode = DeliveryMode.ESIM,
        fee_minor: int = 0,
        fee_currency: str | None = None,
        source_ip: str | None = None,
        device_id: str | None = None,
        country: str | None = None,
        language: str | None = None,
        otp_hash: str | None = None,
        otp_expires_at: dt.datetime | None = None,
        verify_by: dt.datetime | None = None,
        lock_override: bool = False,
        required_approvals: int = 1,
    ) -> ReplacementRequest:
        """A new request in REQUESTED; records ``Opened`` (``verify_by``: when it
        expires unverified, None for one verified in the same transaction)."""
        request = cls(
            id=id,
            line_id=line_id,
            brand_id=brand_id,
            subscriber_id=subscriber_id,
            msisdn=msisdn,
            reason=reason,
            channel=channel,
            actor=actor,
            created_at=at,
            old_iccid=old_iccid,
            eid=eid,
            kind=kind,
        )
        request.target_form = delivery_mode.form
        request.delivery_mode = delivery_mode
        request.fee_minor = fee_minor
        request.fee_currency = fee_currency
        request.source_ip = source_ip[:64] if source_ip else None
        request.device_id = device_id
        request.country = country
        request.language = language
        request.otp_hash = otp_hash
        request.otp_expires_at = otp_expires_at
        request.lock_override = lock_override
        request.required_approvals = max(required_approvals, 1)
        request._record(
            ev.Opened(
                request_id=id,
                at=at,
                actor=actor,
                why=OPENED,
                kind=kind.value,
                reason=reason.value,
                channel=channel.value,
                fee_minor=fee_minor,
                target_form=request.target_form.value,
                delivery_mode=delivery_mode.value,
                device_signal=device_id is not None,
                country=country,
                lock_override=lock_override,
                verify_by=verify_by,
            )
        )
        return request

    def override_lock(
        self,
        *,
        identity_check: str,
        method: str,
        justification: str,
        approvals: int,
        actor: str,
        at: dt.datetime,
    ) -> None:
        """SEC-05 override of the line's SIM-change lock: ``approvals`` people must approve."""
        self.lock_override = True
        self.required_approvals = max(self.required_approvals, approvals)
        self._record(
            ev.LockOverridden(
                request_id=self.id,
                at=at,
                actor=actor,
                identity_check=identity_check,
                method=method,
                justification=justification,
                required_approvals=self.required_approvals,
            )
        )

    def set_language(self, language: str, *, actor: str, at: dt.datetime) -> bool:
        """The language the request's messages use; False if it already was."""
        if self.language == language:
            return False
        was, self.language = self.language, language
        self._record(
            ev.LanguageSet(request_id=self.id, at=at, actor=actor, language=language, was=was)
        )
        return True

    def assign_agent_session(self, session_id: str) -> None:
        """Issue 12: the console session that shows the customer the eSIM."""
        self.agent_session_id = session_id

    # ------------------------------------------------------------ verification

    def issue_code(
        self,
        *,
        otp_hash: str,
        expires_at: dt.datetime,
        actor: str,
        at: dt.datetime,
        action: str | None = "request.code_resent",
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        """A fresh one-time code (its hash) replaces the old one; attempts keep counting."""
        self.otp_hash = otp_hash
        self.otp_expires_at = expires_at
        self._record(
            ev.CodeIssued(
                request_id=self.id,
                at=at,
                actor=actor,
                action=action,
                detail=dict(detail or {}),
                source=source,
            )
        )

    def note_link_sent(
        self,
        *,
        not_me_token_hash: str | None,
        actor: str,
        at: dt.datetime,
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        """A continue link was mailed (it carries "this was not me")."""
        if not_me_token_hash is not None:
            self.issue_not_me_token(not_me_token_hash)
        self._record(
            ev.CodeIssued(
                request_id=self.id,
                at=at,
                actor=actor,
                action="request.link_sent",
                detail=dict(detail or {}),
                source=source,
            )
        )

    def issue_not_me_token(self, token_hash: str) -> None:
        """A notice carries a "this was not me" link; none once fraud was reported."""
        if self.fraud_reported_at is None:
            self.not_me_token_hash = token_hash

    def consume_code(self) -> None:
        """A one-time code is single use: the proven one no longer verifies anything."""
        self.otp_hash = None

    def count_failed_attempt(self) -> int:
        """One more failed verification attempt; returns the count."""
        self.otp_attempts = (self.otp_attempts or 0) + 1
        return self.otp_attempts

    def verify(
        self,
        *,
        methods: Sequence[str],
        evidence: Sequence[dict[str, Any]],
        actor: str,
        at: dt.datetime,
    ) -> None:
        """requested -> verified with the methods proven and their evidence (no secrets)."""
        why = self.move_to(State.VERIFIED, at=at)
        self.verified_at = at
        self.verification_methods = list(methods)
        self.verification_evidence = list(evidence)
        self._record(
            ev.Verified(request_id=self.id, at=at, actor=actor, why=why, methods=tuple(methods))
        )

    def step_up(
        self,
        *,
        methods: Sequence[str],
        evidence: Sequence[dict[str, Any]],
        actor: str,
        at: dt.datetime,
    ) -> None:
        """A stronger method the risk check asked for was proven (the request stays verified)."""
        if self.state != State.VERIFIED or not self.step_up_methods:
            raise Conflict("no stronger verification is asked for", code="NO_STEP_UP")
        # JSON columns: assign anew so the change is seen
        self.verification_methods = [*self.verification_methods, *methods]
        self.verification_evidence = [*self.verification_evidence, *evidence]
        self._record(ev.SteppedUp(request_id=self.id, at=at, actor=actor, methods=tuple(methods)))

    def reconfirm(
        self, *, methods: Sequence[str], purpose: str, at: dt.datetime, source: str | None
    ) -> None:
        """The customer confirmed again (a code or stronger proof); the code is used up."""
        self.otp_hash = None
        self._record(
            ev.Reconfirmed(
                request_id=self.id,
                at=at,
                actor="customer",
                methods=tuple(methods),
                purpose=purpose,
                source=source,
            )
        )

    def take_over(
        self, *, session_id: str | None, check_id: str, actor: str, at: dt.datetime
    ) -> None:
        """An agent takes the request over after an ID check: the customer's code is void."""
        was = self.channel
        self.channel = Channel.AGENT
        self.agent_session_id = session_id
        self.otp_hash = None
        self.otp_expires_at = None
        self._record(
            ev.TakenOver(
                request_id=self.id,
                at=at,
                actor=actor,
                from_channel=Channel(was).value,
                state=self.state.value,
                check_id=check_id,
            )
        )

    # ------------------------------------------------------------ deciding

    def assess(
        self,
        *,
        outcome: RiskOutcome,
        decision: RiskOutcome,
        findings: Sequence[dict[str, str]],
        four_eyes: bool,
        step_up_methods: Sequence[str],
        step_up_rules: Sequence[str],
        step_up_deadline: dt.datetime,
        deny_reason: str,
        cooling_off: dt.timedelta,
        at: dt.datetime,
    ) -> RiskOutcome:
        """Record the risk check on a verified request and act on ``decision``.

        ``outcome``: the rules' own result; ``decision``: what to do (it also
        counts the confirmation finding, four eyes and a proven step-up).
        allow: approved; review: held; deny: rejected (``RISK_DENIED``);
        step_up: the first time, the methods are asked for (the request stays
        verified and expires at ``step_up_deadline``), afterwards nothing.
        Returns ``decision``.
        """
        if self.state != State.VERIFIED:
            raise Conflict("only a verified request is assessed", code="NOT_VERIFIED")
        if four_eyes:
            self.required_approvals = max(self.required_approvals or 1, 2)
        self.risk_outcome = outcome
        self.risk_reasons = [dict(f) for f in findings]
        rules = tuple(f["rule"] for f in findings)
        actor = "risk-engine"
        self._record(
            ev.RiskAssessed(
                request_id=self.id,
                at=at,
                actor=actor,
                outcome=outcome.value,
                decision=decision.value,
                rules=rules,
                required_approvals=self.required_approvals,
            )
        )
        if decision == RiskOutcome.STEP_UP:
            if self.step_up_methods is None:
                self.step_up_methods = list(step_up_methods)
                self._record(
                    ev.StepUpRequired(
                        request_id=self.id,
                        at=at,
                        actor=actor,
                        methods=tuple(step_up_methods),
                        rules=tuple(step_up_rules),
                        expires_at=step_up_deadline,
                    )
                )
        elif decision == RiskOutcome.ALLOW:
            self.approve(by=actor, cooling_off=cooling_off, at=at)
        elif decision == RiskOutcome.REVIEW:
            why = self.move_to(State.IN_REVIEW, at=at)
            self._record(ev.Held(request_id=self.id, at=at, actor=actor, why=why, rules=rules))
        else:
            self.reject(code="RISK_DENIED", reason=deny_reason, actor=actor, at=at)
        return decision

    def approve(self, *, by: str, cooling_off: dt.timedelta, at: dt.datetime) -> None:
        """-> approved; the order (or courier dispatch) waits ``cooling_off`` (SEC-07)."""
        why = self.move_to(State.APPROVED, at=at)
        self.cooling_off_until = at + cooling_off
        self._record(
            ev.Approved(
                request_id=self.id,
                at=at,
                actor=by,
                why=why,
                approvers=tuple(a["by"] for a in self.approvals),
                cooling_off_until=self.cooling_off_until,
                delivery=self.delivery.value,
            )
        )

    def review(
        self,
        *,
        by: str,
        approve_it: bool,
        note: str | None,
        cooling_off: dt.timedelta,
        at: dt.datetime,
    ) -> State:
        """A reviewer decides a held request (SEC-08 four eyes).

        Approving adds ``by`` to ``approvals``; the request is approved once
        ``required_approvals`` distinct people did. One rejection rejects.
        Nobody approves twice (DUPLICATE_APPROVAL); who may review at all is
        the caller's policy. Returns the new state.
        """
        if self.state != State.IN_REVIEW:
            raise Conflict("the request is not waiting for review", code="NOT_IN_REVIEW")
        if approve_it and any(a.get("by") == by for a in self.approvals):
            raise Refused(
                "this reviewer already approved the request; a second person must decide",
                code="DUPLICATE_APPROVAL",
            )
        self.reviewed_by = by
        self.review_note = note
        if not approve_it:
            self.reject(
                code="REVIEW_REJECTED",
                reason=note or "rejected by a reviewer",
                actor=by,
                at=at,
            )
            return self.state
        entry = {"by": by, "at": at.isoformat(), "note": note}
        self.approvals = [*self.approvals, entry]  # JSON column: assign anew
        needed = max(self.required_approvals or 1, 1)
        if len({a["by"] for a in self.approvals}) >= needed:
            self.approve(by=by, cooling_off=cooling_off, at=at)
        else:
            self._record(
                ev.ApprovalRecorded(
                    request_id=self.id,
                    at=at,
                    actor=by,
                    approvals=len(self.approvals),
                    required=needed,
                )
            )
        return self.state

    def reject(self, *, code: str, reason: str, actor: str, at: dt.datetime) -> None:
        """-> rejected (verification attempts used up, the risk check, a reviewer)."""
        why = self.move_to(State.REJECTED, at=at)
        self.failure_code = code
        self.failure_reason = reason
        self.otp_hash = None
        self._record(ev.Rejected(request_id=self.id, at=at, actor=actor, why=why, code=code))

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
        self._record(
            ev.Failed(request_id=self.id, at=at, actor=actor, why=why, code=code, reason=reason)
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
