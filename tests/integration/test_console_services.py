"""The console's use cases on SQLite and PostgreSQL: dashboard figures, creating a
request on a customer's behalf, the audit trail and the physical SIM hand-over."""

from __future__ import annotations

import datetime as dt

import pytest
from risk_support import new_line, update_subscriber, verify
from test_replacement_flow import System, iccid, imsi
from test_replacement_flow import system as system

from resim.domain.model import SimForm
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Refused
from resim.services import repo
from resim.services.access import staff
from resim.services.access.tenancy import Scope
from resim.services.console import console, console_requests, dashboard
from resim.services.delivery import handover
from resim.services.onboarding import seed
from resim.services.replacement import queries, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration
DAY = dt.timedelta(days=1)


def _staff(system: System, username: str, role: str = "agent") -> str:
    return staff.create_staff(
        system.ctx,
        username=username,
        role=role,
        display_name=username,
        password="correct horse battery",
    ).staff_id


def _check(system: System, staff_id: str, msisdn: str) -> None:
    console.record_identity_check(
        system.ctx, staff_id=staff_id, msisdn=msisdn, document_type="passport", last_digits="4321"
    )


def _cards(system: System, n: int = 2, brand_id: str = "dk") -> list[str]:
    cards = [(iccid(), imsi()) for _ in range(n)]
    seed.add_stock(
        system.ctx, brand_id=brand_id, profile_type="card", profiles=cards, form=SimForm.PHYSICAL
    )
    return [c for c, _ in cards]


def _complete(system: System, n: int) -> str:
    msisdn, email = new_line(system, n)
    opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
    assert verify(system, opened.id, email) == State.APPROVED
    system.run_jobs()
    system.install(opened.id)
    system.run_jobs()
    assert queries.get_request_view(system.ctx, opened.id)["state"] == "completed"
    return opened.id


class TestDashboard:
    def test_figures_per_day_from_seeded_requests(self, system: System) -> None:
        start = system.clock.now()
        # Day 1: one completed in 0 minutes of wall time plus one held then rejected.
        _complete(system, 900)
        held_msisdn, held_email = new_line(system, 901)
        update_subscriber(system, held_msisdn, address_changed_at=start)
        held = requests.open_request(system.ctx, msisdn=held_msisdn, reason="lost")
        assert verify(system, held.id, held_email) == State.IN_REVIEW
        review.review(system.ctx, held.id, reviewer="staff:r1", approve_it=False)
        # Day 2: one completed 8 minutes after it was opened, and a "not me" report.
        system.clock.advance(DAY)
        msisdn, email = new_line(system, 902)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.clock.advance(dt.timedelta(minutes=8))
        assert verify(system, opened.id, email) == State.APPROVED
        system.run_jobs()
        system.install(opened.id)
        system.run_jobs()
        with system.ctx.uow() as uow:
            repo.get_request(uow, held.id, lock=True).fraud_reported_at = system.clock.now()
            uow.commit()

        board = dashboard.figures(system.ctx, days=3)
        assert [d.day for d in board.days] == [
            (start - DAY).date(),
            start.date(),
            (start + DAY).date(),
        ]
        before, first, second = board.days
        assert (before.replacements, before.held, before.rejected) == (0, 0, 0)
        assert (first.replacements, first.held, first.rejected, first.fraud_reports) == (1, 1, 1, 0)
        assert (second.replacements, second.held, second.rejected, second.fraud_reports) == (
            1,
            0,
            0,
            1,
        )
        assert first.median_minutes == 0.0
        assert second.median_minutes == 8.0
        assert board.median_minutes_to_completion == 4.0
        totals = board.totals
        assert (totals.replacements, totals.held, totals.rejected) == (2, 1, 1)

    def test_the_window_excludes_older_days_and_other_brands(self, system: System) -> None:
        _complete(system, 910)
        system.clock.advance(3 * DAY)
        board = dashboard.figures(system.ctx, days=2)
        assert board.totals.replacements == 0
        assert board.median_minutes_to_completion is None
        assert dashboard.figures(system.ctx, days=7).totals.replacements == 1
        other = dashboard.figures(system.ctx, days=7, scope=Scope.of_brand("other"))
        assert other.totals.replacements == 0

    def test_days_out_of_range_are_refused(self, system: System) -> None:
        with pytest.raises(InvalidInput):
            dashboard.figures(system.ctx, days=0)


class TestCreateOnBehalf:
    def test_needs_the_agents_own_id_check(self, system: System) -> None:
        msisdn, _ = new_line(system, 920)
        a1, other = _staff(system, "a1"), _staff(system, "other")
        _check(system, other, msisdn)
        with pytest.raises(PermissionDenied) as refused:
            console_requests.create_on_behalf(
                system.ctx, staff_id=a1, msisdn=msisdn, reason="lost", target_form="esim"
            )
        assert refused.value.code == "IDENTITY_CHECK_REQUIRED"
        with system.ctx.uow() as uow:
            assert repo.open_request_for_line(uow, repo.get_line_by_msisdn(uow, msisdn).id) is None

    def test_the_id_check_verifies_and_the_risk_check_runs(self, system: System) -> None:
        msisdn, _ = new_line(system, 921)
        update_subscriber(system, msisdn, fraud_flags=1)  # a four-eyes rule fires
        a1 = _staff(system, "a1")
        _check(system, a1, msisdn)
        made = console_requests.create_on_behalf(
            system.ctx, staff_id=a1, msisdn=msisdn, reason="stolen", target_form="physical"
        )
        assert made.state == State.IN_REVIEW
        view = queries.get_request_view(system.ctx, made.request_id)
        assert view["channel"] == "agent" and view["actor"] == f"staff:{a1}"
        assert view["target_form"] == "physical"
        assert view["verification_methods"] == ["id_document"]
        assert view["review"]["required_approvals"] == 2
        # Issue 13: made by an agent alone, so a second staff member must approve it too.
        assert [r["rule"] for r in view["risk"]["reasons"]] == [
            "prior_fraud_flag",
            "agent_confirmation",
        ]
        assert [r["id"] for r in console_requests.review_queue(system.ctx)] == [made.request_id]
        actions = [
            e["action"]
            for e in console_requests.request_trail(system.ctx, request_id=made.request_id)
        ]
        assert actions[0] == "request.created"
        assert "risk.assessed" in actions and "request.held" in actions

    def test_the_trail_of_an_unknown_request_is_not_found(self, system: System) -> None:
        with pytest.raises(NotFound):
            console_requests.request_trail(system.ctx, request_id="nope")


class TestHandOver:
    def _approved_card_request(self, system: System, n: int) -> tuple[str, str, str]:
        msisdn, _ = new_line(system, n)
        a1 = _staff(system, f"a{n}")
        _check(system, a1, msisdn)
        made = console_requests.create_on_behalf(
            system.ctx, staff_id=a1, msisdn=msisdn, reason="damaged", target_form="physical"
        )
        # Issue 13: the agent's own ID check is not enough; a reviewer approves it.
        assert made.state == State.IN_REVIEW
        reviewer = _staff(system, f"r{n}", role="reviewer")
        review.review(system.ctx, made.request_id, reviewer=reviewer, approve_it=True)
        system.run_jobs()  # no eSIM order for a card
        assert queries.get_request_view(system.ctx, made.request_id)["state"] == "approved"
        return made.request_id, msisdn, a1

    def test_a_valid_card_completes_the_swap(self, system: System) -> None:
        rid, msisdn, a1 = self._approved_card_request(system, 930)
        (card, _spare) = _cards(system)
        spaced = " ".join(card[i : i + 4] for i in range(0, len(card), 4))  # as printed
        done = handover.hand_over(system.ctx, staff_id=a1, request_id=rid, iccid=spaced)
        assert done.iccid == card and done.state == State.READY
        system.run_jobs()
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == "completed" and view["new_iccid"] == card
        changes = queries.sim_changes(system.ctx, msisdn=msisdn)
        assert [c["new_iccid"] for c in changes] == [card]
        trail = console_requests.request_trail(system.ctx, request_id=rid)
        assert "sim.handed_over" in [e["action"] for e in trail]

    def test_refusals_change_nothing(self, system: System) -> None:
        rid, _, a1 = self._approved_card_request(system, 931)
        card, _ = _cards(system)
        wrong_digit = card[:-1] + str((int(card[-1]) + 1) % 10)
        with pytest.raises(InvalidInput) as bad:
            handover.hand_over(system.ctx, staff_id=a1, request_id=rid, iccid=wrong_digit)
        assert bad.value.code == "ICCID_INVALID" and "check digit" in bad.value.message
        unknown = iccid()
        with pytest.raises(NotFound):
            handover.hand_over(system.ctx, staff_id=a1, request_id=rid, iccid=unknown)
        esim_profile = _stock_esim(system)
        with pytest.raises(Refused) as not_card:
            handover.hand_over(system.ctx, staff_id=a1, request_id=rid, iccid=esim_profile)
        assert not_card.value.code == "SIM_NOT_AVAILABLE"
        with pytest.raises(PermissionDenied):  # another agent has not checked the ID
            handover.hand_over(
                system.ctx, staff_id=_staff(system, "a2"), request_id=rid, iccid=card
            )
        assert queries.get_request_view(system.ctx, rid)["state"] == "approved"

    def test_an_esim_request_takes_no_card(self, system: System) -> None:
        msisdn, _ = new_line(system, 932)
        a1 = _staff(system, "a1")
        _check(system, a1, msisdn)
        made = console_requests.create_on_behalf(
            system.ctx, staff_id=a1, msisdn=msisdn, reason="damaged", target_form="esim"
        )
        card, _ = _cards(system)
        with pytest.raises(Conflict) as refused:
            handover.hand_over(system.ctx, staff_id=a1, request_id=made.request_id, iccid=card)
        assert refused.value.code == "NOT_PHYSICAL"


def _stock_esim(system: System) -> str:
    import sqlalchemy as sa

    from resim.adapters.db import orm

    with system.engine.connect() as conn:
        found = conn.execute(
            sa.select(orm.sim.c.iccid).where(
                orm.sim.c.state == "in_stock", orm.sim.c.form == "esim"
            )
        ).first()
    assert found is not None
    return str(found[0])
