"""Loss reports as their own thing (issue 12, "What to build" 1 and finding 6).

A lost or stolen phone's SIM is blocked by a loss report, in resim and in the
core network, until a replacement's cut-over retires the SIM or the customer
lifts the block with strong verification. Cancelling, expiring or rejecting
someone else's replacement never gives the SIM back.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from identity_support import signed_in
from loss_support import (
    ALT,
    PIN,
    add_customer,
    audit_actions,
    kinds_to,
    loss_code,
    sim_state,
    texts_to,
)
from test_replacement_flow import System
from test_replacement_flow import system as system  # re-export the fixture

from resim.domain.activation import parse_activation_code
from resim.domain.loss import LossChannel
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, NotFound, VerificationFailed
from resim.services.console import console
from resim.services.cutover.cutover import handle_download_progress
from resim.services.locks import loss
from resim.services.replacement import cancel, queries, requests
from resim.services.risk import review
from resim.services.verification.verification import Evidence

pytestmark = pytest.mark.integration


def block_with_code(system: System, msisdn: str, email: str, reason: str = "stolen") -> None:
    assert loss.send_code(system.ctx, msisdn=msisdn) is True
    system.run_jobs()
    loss.report(
        system.ctx,
        msisdn=msisdn,
        reason=reason,
        channel=LossChannel.PORTAL,
        actor="customer",
        evidence=Evidence(otp=loss_code(system, email)),
    )
    system.run_jobs()


class TestBlockMySimNow:
    def test_one_e_mailed_code_blocks_the_sim_in_resim_and_in_the_core(
        self, system: System
    ) -> None:
        msisdn, email, old_iccid, old_imsi = add_customer(system, 1)
        block_with_code(system, msisdn, email)
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert sim_state(system, old_iccid) == "suspended"
        status = loss.status(system.ctx, msisdn=msisdn)
        assert status.blocked and status.suspended and status.reason == "stolen"
        assert "loss_reported" in kinds_to(system, email)
        assert texts_to(system, ALT), "the alternate number is told"
        assert not [t for t in texts_to(system, msisdn) if "spærret" in t], "never the lost phone"
        assert audit_actions(system, "loss_report") == ["loss.reported"]

    def test_the_pin_alone_blocks_it_without_any_mail(self, system: System) -> None:
        msisdn, _, _, old_imsi = add_customer(system, 2)
        status, opened = loss.report(
            system.ctx,
            msisdn=msisdn,
            reason="lost",
            channel=LossChannel.PORTAL,
            actor="customer",
            evidence=Evidence(pin=PIN),
        )
        assert opened and status.blocked
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False

    def test_a_wrong_pin_blocks_nothing_and_is_counted(self, system: System) -> None:
        msisdn, _, _, old_imsi = add_customer(system, 3)
        with pytest.raises(VerificationFailed):
            loss.report(
                system.ctx,
                msisdn=msisdn,
                reason="lost",
                channel=LossChannel.PORTAL,
                actor="customer",
                evidence=Evidence(pin="0000"),
            )
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True
        assert loss.status(system.ctx, msisdn=msisdn).blocked is False
        assert "verification.failed" in audit_actions(system, "line")

    def test_pressing_twice_keeps_one_report(self, system: System) -> None:
        msisdn, email, _, _ = add_customer(system, 4)
        block_with_code(system, msisdn, email)
        again, opened = loss.report(
            system.ctx,
            msisdn=msisdn,
            reason="lost",
            channel=LossChannel.PORTAL,
            actor="customer",
            evidence=Evidence(pin=PIN),
        )
        assert opened is False and again.blocked
        assert audit_actions(system, "loss_report") == ["loss.reported"]

    def test_a_bad_reason_or_unknown_number_changes_nothing(self, system: System) -> None:
        msisdn, _, _, _ = add_customer(system, 5)
        with pytest.raises(InvalidInput):
            loss.report(
                system.ctx,
                msisdn=msisdn,
                reason="damaged",
                channel=LossChannel.PORTAL,
                actor="customer",
                evidence=Evidence(pin=PIN),
            )
        with pytest.raises(NotFound):
            loss.send_code(system.ctx, msisdn="+4520199999")
        assert loss.status(system.ctx, msisdn=msisdn).report_id is None

    def test_an_agent_needs_a_recorded_id_check(self, system: System) -> None:
        msisdn, _, _, old_imsi = add_customer(system, 6)
        _, agent = signed_in(system.ctx, "agent")
        with pytest.raises(VerificationFailed):
            loss.report(
                system.ctx,
                msisdn=msisdn,
                reason="stolen",
                channel=LossChannel.AGENT,
                actor=f"staff:{agent}",
                evidence=Evidence(staff_id=agent),
            )
        console.record_identity_check(
            system.ctx,
            staff_id=agent,
            msisdn=msisdn,
            document_type="passport",
            last_digits="1234",
        )
        status, _ = loss.report(
            system.ctx,
            msisdn=msisdn,
            reason="stolen",
            channel=LossChannel.AGENT,
            actor=f"staff:{agent}",
            evidence=Evidence(staff_id=agent),
        )
        system.run_jobs()
        assert status.blocked and system.core.is_enabled(imsi=old_imsi) is False


def verified_stolen(system: System, msisdn: str, email: str) -> str:
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
    system.run_jobs()
    requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
    system.run_jobs()
    return opened.id


class TestEndingAReplacementNeverLiftsIt:
    def test_cancelling_a_stolen_request_leaves_the_sim_barred(self, system: System) -> None:
        """Finding 6: the cancel used to send sim.resumed 0.4 s after sim.suspended."""
        msisdn, email, old_iccid, old_imsi = add_customer(system, 10)
        rid = verified_stolen(system, msisdn, email)
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert loss.status(system.ctx, msisdn=msisdn).channel == "replacement"
        cancel.cancel(system.ctx, rid, actor="customer")
        system.run_jobs()
        system.clock.advance(dt.timedelta(days=3))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "cancelled"
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert sim_state(system, old_iccid) == "suspended"
        assert "sim.resumed" not in audit_actions(system, "sim")
        assert loss.status(system.ctx, msisdn=msisdn).blocked is True

    def test_an_unused_activation_code_expiring_leaves_it_barred(self, system: System) -> None:
        msisdn, email, _, old_imsi = add_customer(system, 11)
        rid = verified_stolen(system, msisdn, email)
        assert queries.get_request_view(system.ctx, rid)["state"] == "ready"
        system.clock.advance(dt.timedelta(hours=73))
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "expired"
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert loss.status(system.ctx, msisdn=msisdn).blocked is True

    def test_a_request_after_block_my_sim_joins_the_report_and_its_cancel_keeps_it(
        self, system: System
    ) -> None:
        msisdn, email, _, old_imsi = add_customer(system, 12)
        block_with_code(system, msisdn, email)
        rid = verified_stolen(system, msisdn, email)
        assert queries.get_request_view(system.ctx, rid)["old_sim_suspended"] is True
        cancel.cancel(system.ctx, rid, actor="customer")
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert audit_actions(system, "loss_report") == ["loss.reported", "loss.joined"]

    def test_a_rejected_request_never_lifts_a_report_the_customer_opened(
        self, system: System
    ) -> None:
        recent = dt.datetime(2026, 2, 28, tzinfo=dt.UTC)  # e-mail changed: held for review
        msisdn, email, _, old_imsi = add_customer(system, 13, email_changed_at=recent)
        block_with_code(system, msisdn, email)
        rid = verified_stolen(system, msisdn, email)
        assert queries.get_request_view(system.ctx, rid)["state"] == "in_review"
        review.review(system.ctx, rid, reviewer="rita", approve_it=False)
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert loss.status(system.ctx, msisdn=msisdn).blocked is True

    def test_a_request_that_was_never_verified_leaves_no_report(self, system: System) -> None:
        msisdn, _, _, old_imsi = add_customer(system, 14)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        for _ in range(5):
            with pytest.raises(VerificationFailed):
                requests.submit_verification(system.ctx, opened.id, otp="000000")
            system.clock.advance(dt.timedelta(minutes=5))  # past the back-off
        assert queries.get_request_view(system.ctx, opened.id)["state"] == "rejected"
        system.run_jobs()
        assert loss.status(system.ctx, msisdn=msisdn).report_id is None
        assert system.core.is_enabled(imsi=old_imsi) is True


class TestTheCutOverResolvesIt:
    def test_installing_the_new_esim_retires_the_old_sim_and_resolves_the_report(
        self, system: System
    ) -> None:
        msisdn, email, old_iccid, _ = add_customer(system, 20)
        rid = verified_stolen(system, msisdn, email)
        code = queries.activation_view(system.ctx, rid, reader="test", via="test")
        parsed = parse_activation_code(code["activation_code"])
        for note in system.smdp.download_and_install(parsed.matching_id, parsed.smdp_address):
            handle_download_progress(system.ctx, note)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == State.COMPLETED
        assert sim_state(system, old_iccid) == "retired"
        status = loss.status(system.ctx, msisdn=msisdn)
        assert status.blocked is False and status.last_state == "resolved"
        assert audit_actions(system, "loss_report")[-1] == "loss.resolved"
        with pytest.raises(Conflict):  # nothing left to lift
            loss.lift(system.ctx, msisdn=msisdn, actor="customer", evidence=Evidence(pin=PIN))


class TestIFoundMyPhone:
    def test_one_factor_is_not_enough(self, system: System) -> None:
        msisdn, email, _, old_imsi = add_customer(system, 30)
        block_with_code(system, msisdn, email)
        with pytest.raises(InvalidInput):
            loss.lift(system.ctx, msisdn=msisdn, actor="customer", evidence=Evidence(pin=PIN))
        assert loss.send_code(system.ctx, msisdn=msisdn)
        system.run_jobs()
        with pytest.raises(InvalidInput):
            loss.lift(
                system.ctx,
                msisdn=msisdn,
                actor="customer",
                evidence=Evidence(otp=loss_code(system, email)),
            )
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False

    def test_code_and_pin_lift_it_and_every_channel_is_told(self, system: System) -> None:
        msisdn, email, old_iccid, old_imsi = add_customer(system, 31)
        block_with_code(system, msisdn, email)
        system.clock.advance(dt.timedelta(minutes=1))
        assert loss.send_code(system.ctx, msisdn=msisdn)
        system.run_jobs()
        lift_mail = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "loss_code"]
        assert "ophæve spærringen" in lift_mail[-1].text  # the customer's language
        status = loss.lift(
            system.ctx,
            msisdn=msisdn,
            actor="customer",
            evidence=Evidence(otp=loss_code(system, email), pin=PIN),
        )
        assert status.blocked is False and status.last_state == "lifted"
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True
        assert sim_state(system, old_iccid) == "active"
        assert "loss_lifted" in kinds_to(system, email)
        assert [t for t in texts_to(system, msisdn) if "virker igen" in t]
        assert [t for t in texts_to(system, ALT) if "virker igen" in t]
        assert audit_actions(system, "loss_report")[-1] == "loss.lifted"
        assert audit_actions(system, "sim")[-1] == "sim.resumed"

    def test_a_used_code_cannot_lift_it_twice(self, system: System) -> None:
        msisdn, email, _, _ = add_customer(system, 32)
        block_with_code(system, msisdn, email)
        with pytest.raises(VerificationFailed):  # the blocking code was single use
            loss.lift(
                system.ctx,
                msisdn=msisdn,
                actor="customer",
                evidence=Evidence(otp=loss_code(system, email), pin=PIN),
            )

    def test_an_agents_id_check_lifts_it(self, system: System) -> None:
        msisdn, email, _, old_imsi = add_customer(system, 33)
        block_with_code(system, msisdn, email)
        _, agent = signed_in(system.ctx, "agent")
        console.record_identity_check(
            system.ctx, staff_id=agent, msisdn=msisdn, document_type="passport", last_digits="9876"
        )
        loss.lift(
            system.ctx, msisdn=msisdn, actor=f"staff:{agent}", evidence=Evidence(staff_id=agent)
        )
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True


class TestPressingAtOnce:
    def test_block_my_sim_and_a_stolen_verification_at_once_make_one_report(
        self, system: System
    ) -> None:
        """Three tabs: "Block my SIM now" twice and a stolen request's code, sent together
        (found deadlocking on PostgreSQL when the line was locked before the counters)."""
        msisdn, email, _, imsi = add_customer(system, 40)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        code = system.code_for(email)
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def press() -> None:
            start.wait()
            try:
                loss.report(
                    system.ctx,
                    msisdn=msisdn,
                    reason="stolen",
                    channel=LossChannel.PORTAL,
                    actor="customer",
                    evidence=Evidence(pin=PIN),
                )
            except BaseException as exc:  # reported below
                errors.append(exc)

        def verify() -> None:
            start.wait()
            try:
                requests.submit_verification(system.ctx, opened.id, otp=code)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=f) for f in (press, press, verify)]
        for thread in threads:
            thread.start()
        start.wait()
        for thread in threads:
            thread.join(30)
        assert errors == []
        system.run_jobs()
        actions = audit_actions(system, "loss_report")
        assert actions.count("loss.reported") == 1, actions
        assert system.core.is_enabled(imsi=imsi) is False
