"""The replacement request's methods: each checks the table and records its event.

No database: requests are built in memory (``aggregate_builders``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from aggregate_builders import AT, opened, request_in

from resim.domain import events as ev
from resim.domain.model import DeliveryMode, RiskOutcome
from resim.domain.workflow import TRANSITIONS, State
from resim.errors import Conflict, InvalidTransition, Refused

LATER = AT + dt.timedelta(minutes=5)
SECRET_NAMES = {"ki", "opc", "matching_id", "activation_code", "activation_code_enc"}


def kinds(req: object) -> list[type]:
    return [type(e) for e in req.events]  # type: ignore[attr-defined]


class TestOpening:
    def test_a_new_request_waits_for_verification_and_says_so(self) -> None:
        req = opened(fee_minor=500, fee_currency="DKK", device_id="d" * 64)
        assert req.state == State.REQUESTED and req.open_line_id == "l1"
        (event,) = req.events
        assert isinstance(event, ev.Opened)
        assert event.device_signal and event.fee_minor == 500 and event.verify_by is not None

    def test_the_delivery_mode_sets_the_form(self) -> None:
        assert opened(delivery_mode=DeliveryMode.COURIER).target_form.value == "physical"

    def test_events_are_taken_once(self) -> None:
        req = opened()
        assert len(req.take_events()) == 1
        assert req.take_events() == [] and req.events == []


class TestVerification:
    def test_verifying_records_methods_evidence_and_the_edge(self) -> None:
        req = request_in(State.REQUESTED)
        req.verify(methods=["email_otp"], evidence=[{"method": "email_otp"}], actor="c", at=LATER)
        assert (req.state, req.verified_at, req.verification_methods) == (
            State.VERIFIED,
            LATER,
            ["email_otp"],
        )
        (event,) = req.events
        assert isinstance(event, ev.Verified)
        assert event.why == TRANSITIONS[(State.REQUESTED, State.VERIFIED)]

    def test_verifying_twice_is_refused_and_changes_nothing(self) -> None:
        req = request_in(State.VERIFIED, verification_methods=["pin"])
        with pytest.raises(InvalidTransition):
            req.verify(methods=["email_otp"], evidence=[], actor="c", at=LATER)
        assert req.verification_methods == ["pin"] and req.events == []

    def test_a_step_up_appends_without_leaving_verified(self) -> None:
        req = request_in(State.VERIFIED, verification_methods=["pin"], step_up_methods=["totp"])
        req.step_up(methods=["totp"], evidence=[{"method": "totp"}], actor="c", at=LATER)
        assert req.state == State.VERIFIED and req.verification_methods == ["pin", "totp"]
        assert kinds(req) == [ev.SteppedUp]

    def test_a_step_up_nobody_asked_for_is_refused(self) -> None:
        with pytest.raises(Conflict):
            request_in(State.VERIFIED).step_up(methods=["totp"], evidence=[], actor="c", at=AT)

    def test_failed_attempts_count_and_codes_are_single_use(self) -> None:
        req = request_in(State.REQUESTED, otp_hash="h")
        assert req.count_failed_attempt() == 1 and req.count_failed_attempt() == 2
        req.consume_code()
        assert req.otp_hash is None

    def test_a_fresh_code_is_audited_as_resent(self) -> None:
        req = request_in(State.REQUESTED)
        req.issue_code(otp_hash="h2", expires_at=LATER, actor="customer", at=AT)
        assert req.otp_hash == "h2"
        (event,) = req.events
        assert isinstance(event, ev.CodeIssued) and event.action == "request.code_resent"

    def test_no_not_me_link_after_fraud_was_reported(self) -> None:
        req = request_in(State.READY, fraud_reported_at=AT)
        req.issue_not_me_token("t")
        assert req.not_me_token_hash is None


def assess(req: object, decision: RiskOutcome, **over: object) -> RiskOutcome:
    args: dict[str, object] = {
        "outcome": decision,
        "decision": decision,
        "findings": [{"rule": "new_device", "outcome": decision.value, "reason": "x"}],
        "four_eyes": False,
        "step_up_methods": ["totp"],
        "step_up_rules": ["new_device"],
        "step_up_deadline": AT + dt.timedelta(hours=2),
        "deny_reason": "denied",
        "cooling_off": dt.timedelta(hours=1),
        "at": LATER,
    }
    args.update(over)
    return req.assess(**args)  # type: ignore[attr-defined,no-any-return]


class TestAssessing:
    def test_allow_approves_after_cooling_off(self) -> None:
        req = request_in(State.VERIFIED)
        assess(req, RiskOutcome.ALLOW)
        assert req.state == State.APPROVED
        assert req.cooling_off_until == LATER + dt.timedelta(hours=1)
        assert kinds(req) == [ev.RiskAssessed, ev.Approved]

    def test_review_holds_and_four_eyes_needs_two(self) -> None:
        req = request_in(State.VERIFIED)
        assess(req, RiskOutcome.REVIEW, four_eyes=True)
        assert req.state == State.IN_REVIEW and req.required_approvals == 2
        assert kinds(req) == [ev.RiskAssessed, ev.Held]

    def test_deny_rejects_with_the_reasons(self) -> None:
        req = request_in(State.VERIFIED)
        assess(req, RiskOutcome.DENY)
        assert (req.state, req.failure_code, req.failure_reason) == (
            State.REJECTED,
            "RISK_DENIED",
            "denied",
        )
        assert kinds(req) == [ev.RiskAssessed, ev.Rejected]

    def test_step_up_is_asked_for_once(self) -> None:
        req = request_in(State.VERIFIED)
        assess(req, RiskOutcome.STEP_UP)
        assert req.state == State.VERIFIED and req.step_up_methods == ["totp"]
        assert kinds(req) == [ev.RiskAssessed, ev.StepUpRequired]
        req.take_events()
        assess(req, RiskOutcome.STEP_UP)
        assert kinds(req) == [ev.RiskAssessed]

    def test_only_a_verified_request_is_assessed(self) -> None:
        with pytest.raises(Conflict):
            assess(request_in(State.REQUESTED), RiskOutcome.ALLOW)


class TestReviewing:
    def test_two_distinct_approvers_approve_a_four_eyes_request(self) -> None:
        req = request_in(State.IN_REVIEW, required_approvals=2)
        hour = dt.timedelta(hours=1)
        assert req.review(by="staff:a", approve_it=True, note=None, cooling_off=hour, at=AT) == (
            State.IN_REVIEW
        )
        with pytest.raises(Refused):
            req.review(by="staff:a", approve_it=True, note=None, cooling_off=hour, at=AT)
        req.review(by="staff:b", approve_it=True, note="ok", cooling_off=hour, at=LATER)
        assert req.state == State.APPROVED and [a["by"] for a in req.approvals] == [
            "staff:a",
            "staff:b",
        ]
        assert kinds(req) == [ev.ApprovalRecorded, ev.Approved]

    def test_one_rejection_rejects(self) -> None:
        req = request_in(State.IN_REVIEW, required_approvals=2)
        req.review(by="staff:a", approve_it=False, note=None, cooling_off=dt.timedelta(), at=LATER)
        assert (req.state, req.failure_code, req.reviewed_by) == (
            State.REJECTED,
            "REVIEW_REJECTED",
            "staff:a",
        )

    def test_only_a_held_request_is_reviewed(self) -> None:
        with pytest.raises(Conflict):
            request_in(State.VERIFIED).review(
                by="staff:a", approve_it=True, note=None, cooling_off=dt.timedelta(), at=AT
            )


class TestOrdering:
    def test_an_esim_goes_from_approved_to_ready(self) -> None:
        req = request_in(State.APPROVED)
        req.start_provisioning(at=AT)
        req.reserve_profile(iccid="89450001", matching_id="M-1", at=AT)
        req.record_smdp_step("ordered", at=AT)
        req.mark_ready(activation_code_enc="sealed", expires_at=LATER, at=AT)
        assert (req.state, req.smdp_step, req.activation_expires_at) == (
            State.READY,
            "confirmed",
            LATER,
        )
        assert kinds(req) == [
            ev.ProvisioningStarted,
            ev.SimReserved,
            ev.SmdpStepRecorded,
            ev.SmdpStepRecorded,
            ev.MarkedReady,
        ]

    def test_the_smdp_matching_id_is_recorded_when_it_differs(self) -> None:
        req = request_in(State.PROVISIONING, new_iccid="8945", matching_id="M-1")
        req.mark_ready(activation_code_enc="s", expires_at=LATER, smdp_matching_id="", at=AT)
        assert req.matching_id == ""
        assert ev.MatchingIdFromSmdp in kinds(req)

    def test_ready_only_from_provisioning_and_nothing_changes_otherwise(self) -> None:
        req = request_in(State.APPROVED)
        with pytest.raises(InvalidTransition):
            req.mark_ready(activation_code_enc="s", expires_at=LATER, at=AT)
        assert req.smdp_step is None and req.activation_code_enc is None

    def test_a_courier_card_is_reserved_then_dispatched(self) -> None:
        req = request_in(State.APPROVED, delivery_mode=DeliveryMode.COURIER)
        req.order_card(iccid="8945c", at=AT)
        req.dispatch(shipment_ref="T" * 80, at=LATER)
        assert (req.state, req.dispatched_at, len(req.shipment_ref or "")) == (
            State.READY,
            LATER,
            64,
        )
        with pytest.raises(Conflict):
            req.dispatch(shipment_ref="again", at=LATER)

    def test_a_store_hand_over_is_installed_at_once(self) -> None:
        req = request_in(State.APPROVED, delivery_mode=DeliveryMode.PICKUP)
        req.hand_over(iccid="8945p", actor="staff:s", at=AT)
        assert (req.state, req.installed_at) == (State.READY, AT)
        assert kinds(req) == [ev.HandedOver, ev.Installed]


class TestInstallingAndEnding:
    def test_install_is_recorded_once(self) -> None:
        req = request_in(State.READY, new_iccid="8945", install_failed_at=AT)
        assert req.install(how="esim", actor="worker", at=LATER)
        assert not req.install(how="esim", actor="worker", at=LATER)
        assert (req.installed_at, req.install_failed_at) == (LATER, None)

    def test_completing_needs_ready_and_a_new_sim(self) -> None:
        req = request_in(State.READY, new_iccid="8945")
        req.complete(at=LATER, sms_hold_until=None, port_out_block_until=None)
        assert (req.state, req.completed_at, req.open_line_id) == (State.COMPLETED, LATER, None)
        with pytest.raises(Conflict):
            request_in(State.READY).complete(
                at=LATER, sms_hold_until=None, port_out_block_until=None
            )

    def test_cancelling_a_ready_esim_withdraws_its_order(self) -> None:
        req = request_in(State.READY, new_iccid="8945")
        assert req.cancel(by="customer", note="changed my mind", at=LATER) == State.READY
        (event,) = req.events
        assert isinstance(event, ev.Cancelled) and event.withdraw_iccid == "8945"
        assert req.failure_reason == "changed my mind"

    def test_no_cancel_once_installed_or_closed(self) -> None:
        with pytest.raises(Conflict, match="installed"):
            request_in(State.READY, installed_at=AT).cancel(by="c", note=None, at=LATER)
        with pytest.raises(Conflict, match="already"):
            request_in(State.COMPLETED).cancel(by="c", note=None, at=LATER)

    def test_expiry_clears_the_code_and_withdraws_a_ready_order(self) -> None:
        req = request_in(State.READY, new_iccid="8945", otp_hash="h")
        req.expire(what="activation code unused", at=LATER)
        (event,) = req.events
        assert isinstance(event, ev.Expired) and event.withdraw_iccid == "8945"
        assert req.otp_hash is None

    def test_failing_records_code_reason_and_the_edge(self) -> None:
        req = request_in(State.PROVISIONING)
        req.fail(code="NO_STOCK", reason="none left", at=LATER)
        (event,) = req.events
        assert isinstance(event, ev.Failed)
        assert event.why == TRANSITIONS[(State.PROVISIONING, State.FAILED)]

    def test_reissue_starts_the_order_over(self) -> None:
        req = request_in(
            State.READY,
            new_iccid="8945",
            matching_id="M",
            smdp_step="confirmed",
            activation_code_enc="s",
            install_failed_at=AT,
        )
        assert req.reissue(actor="customer", at=LATER) == "8945"
        assert (req.state, req.new_iccid, req.smdp_step, req.install_failed_at) == (
            State.PROVISIONING,
            None,
            None,
            None,
        )
        assert kinds(req)[-1] is ev.Reissued

    def test_no_reissue_once_installed(self) -> None:
        with pytest.raises(Conflict, match="installed"):
            request_in(State.READY, installed_at=AT).reissue(actor="c", at=LATER)

    def test_not_me_uses_up_the_link(self) -> None:
        req = request_in(State.COMPLETED, not_me_token_hash="t")
        req.report_not_me(was=State.COMPLETED, cancelled=False, at=LATER)
        assert (req.not_me_token_hash, req.fraud_reported_at) == (None, LATER)


class TestSmallerSteps:
    def test_take_over_voids_the_customer_code(self) -> None:
        req = request_in(State.REQUESTED, otp_hash="h", otp_expires_at=LATER)
        req.take_over(session_id="sess", check_id="chk", actor="staff:a", at=AT)
        assert (req.channel.value, req.agent_session_id, req.otp_hash) == ("agent", "sess", None)

    def test_a_lock_override_needs_the_approvals_asked_for(self) -> None:
        req = request_in(State.REQUESTED)
        req.override_lock(
            identity_check="c", method="id", justification="j", approvals=2, actor="a", at=AT
        )
        assert req.lock_override and req.required_approvals == 2

    def test_language_changes_once(self) -> None:
        req = request_in(State.REQUESTED, language="en")
        assert req.set_language("da", actor="customer", at=AT)
        assert not req.set_language("da", actor="customer", at=AT)
        assert kinds(req) == [ev.LanguageSet]


def test_no_event_carries_a_secret_field() -> None:
    for cls in vars(ev).values():
        if isinstance(cls, type) and issubclass(cls, ev.RequestEvent):
            for f in dataclasses.fields(cls):
                secret = f.name in SECRET_NAMES or "otp" in f.name or "token" in f.name
                assert not secret, (cls, f.name)
