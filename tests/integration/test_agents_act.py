"""Agents and the fraud team can act (issue 12, point 4), on SQLite and PostgreSQL:
unfreezing an account (reason, two-person rule, tenancy, notices, alerts), taking
over or cancelling a customer's pending request, and the agent-made eSIM reaching
the customer (hand-over screen or e-mail; no code mail for a request that needs none).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from risk_support import new_line, set_policy, update_subscriber
from tenancy_support import OTHER, add_other_brand
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Refused
from resim.services import repo
from resim.services.access import staff
from resim.services.access.tenancy import Scope
from resim.services.console import agent_actions, alert_inbox, console, console_requests
from resim.services.locks import unfreeze
from resim.services.replacement import cancel, queries, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration
DK = Scope.of_brand("dk")


def _staff(system: System, username: str, role: str = "agent", brand: str | None = "dk") -> str:
    return staff.create_staff(
        system.ctx,
        username=username,
        role=role,
        display_name=username,
        password="correct horse battery",
        brand_id=brand,
    ).staff_id


def _check(system: System, staff_id: str, msisdn: str) -> None:
    console.record_identity_check(
        system.ctx, staff_id=staff_id, msisdn=msisdn, document_type="passport", last_digits="4321"
    )


def _kinds(system: System, email: str) -> list[str]:
    return [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]


def _frozen_by_not_me(system: System, n: int) -> tuple[str, str, str]:
    """A line whose customer said "not me": (msisdn, e-mail, request id)."""
    msisdn, email = new_line(system, n)
    update_subscriber(system, msisdn, alt_msisdn=f"+45601{n:05d}")
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
    system.run_jobs()
    notice = next(
        m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "replacement_requested"
    )
    token = re.search(r"/not-me/([A-Za-z0-9_-]+)", notice.text)
    assert token
    cancel.report_not_me(system.ctx, token.group(1))
    system.run_jobs()
    return msisdn, email, opened.id


def _subscriber_row(system: System, msisdn: str) -> dict[str, Any]:
    s, ln = orm.subscriber, orm.line
    columns = [
        s.c.replacements_frozen_at,
        s.c.frozen_reason,
        s.c.unfreeze_requested_by,
        s.c.unfreeze_requested_at,
        s.c.unfreeze_reason,
        s.c.fraud_flags,
    ]
    with system.engine.connect() as conn:
        row = conn.execute(
            sa.select(*columns).join(ln, ln.c.subscriber_id == s.c.id).where(ln.c.msisdn == msisdn)
        ).one()
    return dict(row._mapping)


def _audit(system: System, action: str) -> list[dict[str, Any]]:
    a = orm.audit_event
    with system.engine.connect() as conn:
        rows = conn.execute(sa.select(a).where(a.c.action == action).order_by(a.c.seq)).all()
    return [dict(r._mapping) for r in rows]


class TestUnfreeze:
    def test_a_reviewer_unfreezes_with_a_reason_and_the_customer_is_told(
        self, system: System
    ) -> None:
        msisdn, email, request_id = _frozen_by_not_me(system, 1)
        reviewer = _staff(system, "r1", "reviewer")
        assert console.line_view(system.ctx, staff_id=reviewer, msisdn=msisdn)["frozen"]
        assert [a["kind"] for a in alert_inbox.open_alerts(system.ctx, scope=DK)] == ["not_me"]

        done = unfreeze.unfreeze(
            system.ctx,
            msisdn=msisdn,
            reviewer=f"staff:{reviewer}",
            reason="Called the customer back; the request was their partner's",
            scope=DK,
        )

        assert done.unfrozen
        row = _subscriber_row(system, msisdn)
        assert row["replacements_frozen_at"] is None and row["frozen_reason"] is None
        [event] = _audit(system, "account.unfrozen")
        assert event["actor"] == f"staff:{reviewer}"
        assert event["detail"]["frozen_reason"] == "not_me"
        assert event["detail"]["reasons"] == [
            "Called the customer back; the request was their partner's"
        ]
        assert alert_inbox.open_alerts(system.ctx, scope=DK) == []
        system.run_jobs()
        assert "account_unfrozen" in _kinds(system, email)
        assert any(m.to == f"+45601{1:05d}" for m in system.sms.sent)  # every contact point
        assert not console.line_view(system.ctx, staff_id=reviewer, msisdn=msisdn)["frozen"]
        # A new request opens again.
        requests.open_request(system.ctx, msisdn=msisdn, reason="device_change")
        assert request_id

    def test_no_reason_no_unfreeze(self, system: System) -> None:
        msisdn, _, _ = _frozen_by_not_me(system, 2)
        reviewer = _staff(system, "r1", "reviewer")
        for reason in ("", "   ", "x" * 501):
            with pytest.raises(InvalidInput):
                unfreeze.unfreeze(
                    system.ctx, msisdn=msisdn, reviewer=f"staff:{reviewer}", reason=reason
                )
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is not None

    def test_two_person_rule_needs_a_different_second_reviewer(self, system: System) -> None:
        set_policy(system, unfreeze_reviewers=2)
        msisdn, _, _ = _frozen_by_not_me(system, 3)
        r1, r2 = _staff(system, "r1", "reviewer"), _staff(system, "r2", "reviewer")

        first = unfreeze.unfreeze(
            system.ctx, msisdn=msisdn, reviewer=f"staff:{r1}", reason="checked", scope=DK
        )
        assert not first.unfrozen and first.approvals_needed == 1
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is not None
        view = console.line_view(system.ctx, staff_id=r2, msisdn=msisdn)
        assert view["unfreeze_requested_by"] == f"staff:{r1}"
        with pytest.raises(Refused) as same:
            unfreeze.unfreeze(
                system.ctx, msisdn=msisdn, reviewer=f"staff:{r1}", reason="again", scope=DK
            )
        assert same.value.code == "SAME_REVIEWER"
        with pytest.raises(Refused) as frozen:
            requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        assert frozen.value.code == "ACCOUNT_FROZEN"

        second = unfreeze.unfreeze(
            system.ctx, msisdn=msisdn, reviewer=f"staff:{r2}", reason="agreed", scope=DK
        )
        assert second.unfrozen
        [event] = _audit(system, "account.unfrozen")
        assert event["detail"]["reviewers"] == [f"staff:{r1}", f"staff:{r2}"]
        assert len(_audit(system, "account.unfreeze_approved")) == 1

    def test_two_reviewers_at_once_are_decided_one_after_the_other(self, system: System) -> None:
        set_policy(system, unfreeze_reviewers=2)
        msisdn, _, _ = _frozen_by_not_me(system, 7)
        reviewers = [_staff(system, f"rc{i}", "reviewer") for i in range(2)]
        start = threading.Barrier(2)
        outcomes: list[bool] = []

        def approve(staff_id: str) -> None:
            start.wait()
            done = unfreeze.unfreeze(
                system.ctx, msisdn=msisdn, reviewer=f"staff:{staff_id}", reason="ok", scope=DK
            )
            outcomes.append(done.unfrozen)

        threads = [threading.Thread(target=approve, args=(r,)) for r in reviewers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == [False, True]  # one first approval, one lift
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is None
        assert len(_audit(system, "account.unfreeze_approved")) == 1
        assert len(_audit(system, "account.unfrozen")) == 1

    def test_another_brands_reviewer_finds_nothing_and_changes_nothing(
        self, system: System
    ) -> None:
        add_other_brand(system)
        msisdn, _, _ = _frozen_by_not_me(system, 4)
        foreign = _staff(system, "r-no", "reviewer", brand=OTHER)
        before = _subscriber_row(system, msisdn)
        with pytest.raises(NotFound):
            unfreeze.unfreeze(
                system.ctx,
                msisdn=msisdn,
                reviewer=f"staff:{foreign}",
                reason="x",
                scope=Scope.of_brand(OTHER),
            )
        assert _subscriber_row(system, msisdn) == before
        assert alert_inbox.open_alerts(system.ctx, scope=Scope.of_brand(OTHER)) == []
        assert _audit(system, "account.unfrozen") == []

    def test_an_account_that_is_not_frozen_is_refused(self, system: System) -> None:
        msisdn, _ = new_line(system, 5)
        with pytest.raises(Conflict) as refused:
            unfreeze.unfreeze(system.ctx, msisdn=msisdn, reviewer="staff:r", reason="x")
        assert refused.value.code == "NOT_FROZEN"

    def test_the_command_line_names_a_reviewer(self, system: System) -> None:
        msisdn, _, _ = _frozen_by_not_me(system, 6)
        _staff(system, "agent1", "agent")
        _staff(system, "rev1", "reviewer")
        with pytest.raises(PermissionDenied):
            unfreeze.unfreeze_by_username(system.ctx, msisdn=msisdn, username="agent1", reason="x")
        done = unfreeze.unfreeze_by_username(system.ctx, msisdn=msisdn, username="rev1", reason="x")
        assert done.unfrozen


class TestTakeOverAndCancel:
    def _pending(self, system: System, n: int) -> tuple[str, str, str]:
        msisdn, email = new_line(system, n)
        opened = requests.open_request(
            system.ctx, msisdn=msisdn, reason="device_change", channel="portal", actor="customer"
        )
        system.run_jobs()
        return msisdn, email, opened.id

    def test_an_agent_with_an_id_check_takes_over_a_stuck_request(self, system: System) -> None:
        msisdn, email, request_id = self._pending(system, 10)
        code = system.code_for(email)
        agent = _staff(system, "a1")
        with pytest.raises(PermissionDenied) as unchecked:
            agent_actions.take_over(system.ctx, staff_id=agent, request_id=request_id, scope=DK)
        assert unchecked.value.code == "IDENTITY_CHECK_REQUIRED"
        _check(system, agent, msisdn)

        state = agent_actions.take_over(
            system.ctx, staff_id=agent, request_id=request_id, session_id="s1", scope=DK
        )

        view = queries.get_request_view(system.ctx, request_id)
        assert view["channel"] == "agent"
        assert view["verification_methods"] == ["id_document"]
        # Made by staff now: a second person confirms it (domain.agent_channel).
        assert state == State.IN_REVIEW
        [event] = _audit(system, "request.taken_over")
        assert event["actor"] == f"staff:{agent}" and event["detail"]["from_channel"] == "portal"
        system.run_jobs()
        assert "request_taken_over" in _kinds(system, email)
        # The customer's old code verifies nothing any more.
        with pytest.raises(Conflict):
            requests.submit_verification(system.ctx, request_id, otp=code)

    def test_another_brands_agent_gets_not_found_and_nothing_changes(self, system: System) -> None:
        add_other_brand(system)
        msisdn, _, request_id = self._pending(system, 11)
        foreign = _staff(system, "a-no", brand=OTHER)
        with system.ctx.uow() as uow:
            before = dict(vars(repo.get_request(uow, request_id)))
        for act in (agent_actions.take_over, agent_actions.cancel_for_customer):
            with pytest.raises(NotFound):
                act(
                    system.ctx,
                    staff_id=foreign,
                    request_id=request_id,
                    scope=Scope.of_brand(OTHER),
                )
        with system.ctx.uow() as uow:
            after = dict(vars(repo.get_request(uow, request_id)))
        before.pop("_sa_instance_state"), after.pop("_sa_instance_state")
        assert before == after
        assert msisdn

    def test_a_request_waiting_for_a_step_up_is_taken_over_with_the_check(
        self, system: System
    ) -> None:
        msisdn, email, request_id = self._pending(system, 14)
        # A portal request without a device signal is asked for a stronger method.
        state = requests.submit_verification(system.ctx, request_id, otp=system.code_for(email))
        assert state == State.VERIFIED
        assert (
            "id_document"
            in queries.get_request_view(system.ctx, request_id)["risk"]["step_up_methods"]
        )
        agent = _staff(system, "a1")
        _check(system, agent, msisdn)
        state = agent_actions.take_over(system.ctx, staff_id=agent, request_id=request_id)
        view = queries.get_request_view(system.ctx, request_id)
        assert view["verification_methods"] == ["email_otp", "id_document"]
        assert view["channel"] == "agent" and state != State.VERIFIED

    def test_a_request_past_verification_is_not_taken_over(self, system: System) -> None:
        msisdn, email = new_line(system, 12)
        request_id = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged").id
        system.run_jobs()
        state = requests.submit_verification(system.ctx, request_id, otp=system.code_for(email))
        assert state == State.APPROVED
        agent = _staff(system, "a1")
        _check(system, agent, msisdn)
        with pytest.raises(Conflict) as refused:
            agent_actions.take_over(system.ctx, staff_id=agent, request_id=request_id)
        assert refused.value.code == "NOT_PENDING"

    def test_the_agent_cancels_only_with_an_id_check(self, system: System) -> None:
        msisdn, email, request_id = self._pending(system, 13)
        agent = _staff(system, "a1")
        with pytest.raises(PermissionDenied):
            agent_actions.cancel_for_customer(system.ctx, staff_id=agent, request_id=request_id)
        _check(system, agent, msisdn)
        offers = agent_actions.offers(
            system.ctx, staff_id=agent, session_id=None, request_id=request_id
        )
        assert offers["cancel"] and offers["take_over"]
        state = agent_actions.cancel_for_customer(
            system.ctx, staff_id=agent, request_id=request_id, scope=DK
        )
        assert state == State.CANCELLED
        system.run_jobs()
        assert "replacement_cancelled" in _kinds(system, email)


class TestAnAgentsEsimReachesTheCustomer:
    def _ready(self, system: System, n: int, session: str = "s1") -> tuple[str, str, str, str]:
        msisdn, email = new_line(system, n)
        agent, second = _staff(system, f"a{n}"), _staff(system, f"r{n}", "reviewer")
        _check(system, agent, msisdn)
        made = console_requests.create_on_behalf(
            system.ctx,
            staff_id=agent,
            msisdn=msisdn,
            reason="device_change",
            target_form="esim",
            scope=DK,
            session_id=session,
        )
        assert made.state == State.IN_REVIEW  # the second person
        review.review(system.ctx, made.request_id, reviewer=f"staff:{second}", approve_it=True)
        system.run_jobs()
        assert queries.get_request_view(system.ctx, made.request_id)["state"] == "ready"
        return msisdn, email, agent, made.request_id

    def test_no_code_mail_for_a_request_the_id_check_verifies(self, system: System) -> None:
        _, email, _, _ = self._ready(system, 20)
        assert "one_time_code" not in _kinds(system, email)

    def test_the_screen_shows_the_esim_to_the_opening_session_only(self, system: System) -> None:
        _, email, agent, request_id = self._ready(system, 21)
        shown = agent_actions.handover_screen(
            system.ctx, staff_id=agent, session_id="s1", request_id=request_id, scope=DK
        )
        assert shown["smdp_address"] == "smdp.resim.test" and shown["matching_id"]
        assert shown["qr_payload"].startswith("LPA:1$")
        [read] = [e for e in _audit(system, "activation.read") if e["object_id"] == request_id]
        assert read["actor"] == f"staff:{agent}" and read["detail"] == {"via": "console.screen"}
        for session in ("s2", None):
            with pytest.raises(PermissionDenied) as refused:
                agent_actions.handover_screen(
                    system.ctx, staff_id=agent, session_id=session, request_id=request_id
                )
            assert refused.value.code == "NOT_YOUR_SCREEN"
        assert "esim_ready" in _kinds(system, email)

    def test_with_the_email_policy_the_customer_gets_the_ready_link(self, system: System) -> None:
        set_policy(system, agent_esim_handoff="email")
        _, email, agent, request_id = self._ready(system, 22)
        with pytest.raises(Refused) as refused:
            agent_actions.handover_screen(
                system.ctx, staff_id=agent, session_id="s1", request_id=request_id
            )
        assert refused.value.code == "HANDOFF_BY_EMAIL"
        ready = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "esim_ready"]
        assert ready and f"/c/{request_id}." in ready[-1].text  # signed continue link
        assert "one_time_code" not in _kinds(system, email)
