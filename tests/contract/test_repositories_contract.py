"""The unit-of-work and repository contract (resim.services.repositories).

One set of cases, run against the in-memory unit of work (resim.adapters.memory)
and the SQLAlchemy one on SQLite and on PostgreSQL. What a use case may rely
on is what passes here on all three. History, identity checks, jobs and peer
calls: ``test_repositories_history_contract.py``; the rig: ``repo_rig.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from repo_rig import T0, Rig, close, line, request_, seeded, sim

from resim.domain.model import (
    RequestKind,
    SimForm,
    SimState,
)
from resim.domain.workflow import State
from resim.services.access.tenancy import Scope
from resim.services.unit_of_work import Duplicate

pytestmark = pytest.mark.integration


class TestTheUnitOfWork:
    def test_what_a_block_did_is_gone_unless_it_committed(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            found = uow.lines.get("line-1")
            assert found is not None
            found.sim_change_locked = True
            uow.lines.add(line("line-2", "+4520000002"))
            uow.enqueue("test.job", at=T0)
        with rig.uow() as uow:
            again = uow.lines.get("line-1")
            assert again is not None and again.sim_change_locked is False
            assert uow.lines.get("line-2") is None
        assert rig.jobs() == 0

    def test_a_commit_keeps_changes_and_jobs(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            found = uow.lines.get("line-1")
            assert found is not None
            found.sim_change_locked = True
            uow.lines.add(line("line-2", "+4520000002"))
            uow.enqueue("test.job", at=T0, payload={"a": 1})
            uow.commit()
        with rig.uow() as uow:
            again = uow.lines.get("line-1")
            assert again is not None and again.sim_change_locked is True
            assert uow.lines.get("line-2") is not None
        assert rig.jobs() == 1

    def test_changes_after_a_commit_need_another_commit(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            found = uow.lines.get("line-1")
            assert found is not None
            found.sim_change_locked = True
            uow.commit()
            found.sim_change_locked = False
        with rig.uow() as uow:
            again = uow.lines.get("line-1")
            assert again is not None and again.sim_change_locked is True

    def test_one_object_per_key_in_a_block(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            assert uow.lines.get("line-1") is uow.lines.by_msisdn("+4520000001")

    def test_two_open_requests_for_one_line_are_a_duplicate(self, rig: Rig) -> None:
        seeded(rig, request_("req-1"))
        with rig.uow() as uow:
            uow.requests.add(request_("req-2"))
            with pytest.raises(Duplicate):
                uow.flush()
        with rig.uow() as uow:
            assert uow.requests.get("req-2") is None

    def test_two_bound_sims_for_one_line_are_a_duplicate(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            uow.sims.add(sim("89450000000000000002", state=SimState.ACTIVE, line_id="line-1"))
            with pytest.raises(Duplicate):
                uow.commit()


# ------------------------------------------------------------------ requests


class TestRequests:
    def test_a_missing_request_is_none(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            assert uow.requests.get("nope") is None
            assert uow.requests.get("nope", lock=True) is None

    def test_scope_hides_another_brands_request_and_a_customers_other_ones(self, rig: Rig) -> None:
        seeded(rig, request_("req-1"))
        with rig.uow() as uow:
            assert uow.requests.get("req-1", scope=Scope.of_brand("nordlys")) is not None
            assert uow.requests.get("req-1", scope=Scope.of_brand("other")) is None
            mine = Scope.of_customer(line_id="line-1", request_id="req-1")
            assert uow.requests.get("req-1", lock=True, scope=mine) is not None
            other = Scope.of_customer(line_id="line-1", request_id="req-9")
            assert uow.requests.get("req-1", scope=other) is None
            assert (
                uow.requests.get("req-1", scope=Scope.of_customer(line_id=None, request_id=None))
                is None
            )

    def test_a_sealed_activation_is_read_in_scope_without_the_request(self, rig: Rig) -> None:
        ready = request_("req-1")
        ready.state = State.READY
        ready.activation_code_enc = "sealed-code"
        ready.activation_expires_at = T0 + dt.timedelta(days=30)
        cancelled = request_("req-2", at=T0 - dt.timedelta(days=1))
        close(cancelled)
        seeded(rig, cancelled, ready)
        with rig.uow() as uow:
            found = uow.requests.sealed_activation("req-1", scope=Scope.of_brand("nordlys"))
            assert found == ("req-1", State.READY, "sealed-code", T0 + dt.timedelta(days=30))
            mine = Scope.of_customer(line_id="line-1", request_id="req-1")
            assert uow.requests.sealed_activation("req-1", scope=mine) == found
            assert uow.requests.sealed_activation("req-1") == found
            assert uow.requests.sealed_activation("req-2") == ("req-2", State.CANCELLED, None, None)
            assert uow.requests.sealed_activation("req-2", scope=mine) is None
            assert uow.requests.sealed_activation("req-1", scope=Scope.of_brand("other")) is None
            nobody = Scope.of_customer(line_id=None, request_id=None)
            assert uow.requests.sealed_activation("req-1", scope=nobody) is None
            assert uow.requests.sealed_activation("nope") is None

    def test_the_open_request_of_a_line(self, rig: Rig) -> None:
        old = request_("req-0", at=T0 - dt.timedelta(days=1))
        close(old)
        seeded(rig, old, request_("req-1"))
        with rig.uow() as uow:
            found = uow.requests.open_for_line("line-1")
            assert found is not None and found.id == "req-1"
            assert uow.requests.open_for_line("line-1", lock=True) is found
            assert uow.requests.open_for_line("line-9") is None
            assert [
                r.id
                for r in uow.requests.open_replacing(
                    line_id="line-1", old_iccid="89450000000000000001"
                )
            ] == ["req-1"]
            assert not uow.requests.open_replacing(line_id="line-1", old_iccid="other")

    def test_the_newest_request_naming_a_profile_holds_it(self, rig: Rig) -> None:
        older = request_("req-0", at=T0 - dt.timedelta(days=1))
        close(older)
        older.new_iccid = "89450000000000000009"
        seeded(rig, older)
        with rig.uow() as uow:
            found = uow.requests.by_new_iccid("89450000000000000009", lock=True)
            assert found is not None and found.id == "req-0"
            assert uow.requests.by_new_iccid("89450000000000000008") is None

    def test_the_holder_of_a_profile_is_named_by_id_and_brand(self, rig: Rig) -> None:
        older = request_("req-0", at=T0 - dt.timedelta(days=1))
        close(older)
        older.new_iccid = "89450000000000000009"
        seeded(rig, older)
        with rig.uow() as uow:
            found = uow.requests.holder_of("89450000000000000009", lock=True)
            assert found == ("req-0", "nordlys")
            assert uow.requests.holder_of("89450000000000000009") == ("req-0", "nordlys")
            assert uow.requests.holder_of("89450000000000000008") is None

    def test_a_request_is_found_by_its_not_me_token(self, rig: Rig) -> None:
        req = request_()
        req.not_me_token_hash = "ab" * 32
        seeded(rig, req)
        with rig.uow() as uow:
            assert uow.requests.id_by_not_me_token("ab" * 32) == "req-1"
            assert uow.requests.id_by_not_me_token("cd" * 32) is None

    def test_counts_for_fees_and_agent_history(self, rig: Rig) -> None:
        done = request_("req-a", actor="staff:1", at=T0 - dt.timedelta(days=2))
        close(done, State.COMPLETED)
        done.completed_at = T0 - dt.timedelta(days=2)
        rejected = request_("req-b", actor="staff:1", at=T0 - dt.timedelta(days=1))
        close(rejected, State.REJECTED)
        reported = request_("req-c", actor="staff:1", at=T0 - dt.timedelta(hours=1))
        close(reported, State.COMPLETED)
        reported.completed_at = T0 - dt.timedelta(hours=1)
        reported.fraud_reported_at = T0
        seeded(rig, done, rejected, reported, request_("req-d", actor="staff:1"))
        with rig.uow() as uow:
            since = T0 - dt.timedelta(days=3)
            assert uow.requests.completed_since(line_id="line-1", since=since) == 2
            assert (
                uow.requests.completed_since(line_id="line-1", since=T0 - dt.timedelta(days=1)) == 1
            )
            assert uow.requests.opened_by(actor="staff:1", since=since, excluding="req-d") == 3
            assert (
                uow.requests.opened_by(
                    actor="staff:1", since=since, excluding="req-d", refused_only=True
                )
                == 2
            )
            assert uow.requests.opened_by(actor="staff:2", since=since, excluding="x") == 0

    def test_an_open_separation_holds_the_old_sim(self, rig: Rig) -> None:
        sep = request_()
        sep.kind = RequestKind.LINE_SEPARATION
        sep.old_sim_suspended = True
        seeded(rig, sep)
        with rig.uow() as uow:
            assert uow.requests.separation_holds("89450000000000000001")
            assert not uow.requests.separation_holds("89450000000000000002")

    def test_lists_are_scoped_and_ordered(self, rig: Rig) -> None:
        first = request_("req-1", at=T0 - dt.timedelta(hours=2))
        close(first)
        second = request_("req-2", at=T0 - dt.timedelta(hours=1))
        second.state = State.IN_REVIEW
        close(second, State.IN_REVIEW)
        third = request_("req-3", at=T0)
        close(third)
        seeded(rig, first, second, third)
        with rig.uow() as uow:
            assert [r.id for r in uow.requests.listed()] == ["req-3", "req-2", "req-1"]
            assert [r.id for r in uow.requests.listed(limit=1, offset=1)] == ["req-2"]
            assert [r.id for r in uow.requests.listed(state=State.IN_REVIEW)] == ["req-2"]
            assert not uow.requests.listed(scope=Scope.of_brand("other"))


# ------------------------------------------------------------------ lines, SIMs, stock


class TestLinesAndSims:
    def test_a_line_by_number_in_scope(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            found = uow.lines.by_msisdn("+4520000001", lock=True)
            assert found is not None and found.id == "line-1"
            assert uow.lines.by_msisdn("+4520000001", scope=Scope.of_brand("other")) is None
            assert uow.lines.get("line-1", lock=True, scope=Scope.of_brand("other")) is None
            mine = Scope.of_customer(line_id="line-1", request_id=None)
            assert uow.lines.get("line-1", scope=mine) is found
            assert uow.lines.by_msisdn("+4520000009") is None
            uow.lines.lock("line-1")  # holds the row; no answer

    def test_the_bound_sim_of_a_line(self, rig: Rig) -> None:
        seeded(rig, sim("89450000000000000002", state=SimState.RETIRED, line_id="line-1"))
        with rig.uow() as uow:
            bound = uow.sims.bound_to("line-1")
            assert bound is not None and bound.iccid == "89450000000000000001"
            assert uow.sims.get("89450000000000000001", lock=True) is bound
            bound.set_state(SimState.SUSPENDED)
            assert uow.sims.bound_to("line-1") is bound
            assert uow.sims.get("89450000000000000099") is None

    def test_a_sims_state_for_a_request(self, rig: Rig) -> None:
        suspending = request_()
        suspending.old_sim_suspended = True
        seeded(rig, suspending)
        iccid = "89450000000000000001"
        with rig.uow() as uow:
            assert uow.sims.state_for_request(iccid, None) == (SimState.ACTIVE, False)
            assert uow.sims.state_for_request(iccid, suspending.id) == (SimState.ACTIVE, True)
            assert uow.sims.state_for_request(iccid, "no-such-request") == (SimState.ACTIVE, False)
            assert uow.sims.state_for_request("89450000000000000099", None) == (None, False)
            uow.sims.get(iccid).set_state(SimState.SUSPENDED)  # type: ignore[union-attr]
            assert uow.sims.state_for_request(iccid, None) == (SimState.SUSPENDED, False)

    def test_stock_gives_the_first_free_profile_not_named_by_a_request(self, rig: Rig) -> None:
        named = request_()
        named.new_iccid = "89450000000000000010"
        seeded(
            rig,
            sim("89450000000000000010"),
            sim("89450000000000000011"),
            sim("89450000000000000012"),
            sim("89450000000000000013", profile_type="iot"),
            sim("89450000000000000014", form=SimForm.PHYSICAL, profile_type=None),
            named,
        )
        with rig.uow() as uow:
            taken = uow.stock.free_profile(brand_id="nordlys", profile_type="standard")
            assert taken is not None and taken.iccid == "89450000000000000011"
            iot = uow.stock.free_profile(brand_id="nordlys", profile_type="iot")
            assert iot is not None and iot.iccid == "89450000000000000013"
            assert uow.stock.free_profile(brand_id="other", profile_type="standard") is None
            card = uow.stock.free_card(brand_id="nordlys")
            assert card is not None and card.iccid == "89450000000000000014"
            card.set_state(SimState.RESERVED)
            assert uow.stock.free_card(brand_id="nordlys") is None


# ------------------------------------------------------------------ subscribers, brands


class TestSubscribersAndBrands:
    def test_a_subscriber_and_a_brand_by_id(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            found = uow.subscribers.get("sub-1", lock=True)
            assert found is not None and found.email == "ada@example.test"
            assert uow.subscribers.get("sub-9") is None
            assert uow.brands.get("nordlys") is not None
            assert uow.brands.get("other") is None

    def test_the_policy_follows_the_brand_data(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            assert uow.brands.policy("nordlys").otp_ttl_minutes == 7
            found = uow.brands.get("nordlys")
            assert found is not None
            found.policy_data = {"otp_ttl_minutes": 9}
            uow.commit()
        with rig.uow() as uow:
            assert uow.brands.policy("nordlys").otp_ttl_minutes == 9
            with pytest.raises(KeyError):
                uow.brands.policy("other")


# ------------------------------------------------------------------ SIM changes, loss reports
