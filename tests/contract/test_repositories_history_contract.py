"""The repository contract, continued: SIM-change history, identity checks,
jobs and peer calls, on the same three back ends (see
``test_repositories_contract.py`` and ``repo_rig.py``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from repo_rig import T0, Rig, request_, seeded

from resim.domain.loss import LossChannel, LossReason, LossReport, LossState
from resim.domain.model import (
    SimChange,
)
from resim.domain.security import IdentityCheck, Role, StaffUser
from resim.services.access.tenancy import Scope
from resim.services.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration


class TestHistory:
    def test_sim_changes_by_request_and_the_last_replacement(self, rig: Rig) -> None:
        first = SimChange(
            id="c-1",
            msisdn="+4520000001",
            line_id="line-1",
            changed_at=T0 - dt.timedelta(days=30),
            new_iccid="89450000000000000001",
            old_iccid=None,
            request_id=None,
        )
        seeded(rig, request_(), first)
        with rig.uow() as uow:
            assert uow.sim_changes.last_replacement_at("line-1") is None
            uow.sim_changes.add(
                SimChange(
                    id="c-2",
                    msisdn="+4520000001",
                    line_id="line-1",
                    changed_at=T0,
                    new_iccid="89450000000000000002",
                    old_iccid="89450000000000000001",
                    request_id="req-1",
                )
            )
            uow.commit()
        with rig.uow() as uow:
            found = uow.sim_changes.for_request("req-1")
            assert found is not None and found.id == "c-2"
            assert uow.sim_changes.last_replacement_at("line-1") == T0
            assert [c.id for c in uow.sim_changes.listed()] == ["c-2", "c-1"]
            assert [c.id for c in uow.sim_changes.listed(msisdn="+4520000009")] == []
            assert not uow.sim_changes.listed(scope=Scope.of_brand("other"))
            assert len(uow.sim_changes.listed(scope=Scope.of_brand("nordlys"), limit=1)) == 1

    def test_loss_reports_open_newest_and_holding(self, rig: Rig) -> None:
        def report(id: str, at: dt.datetime, *, open_: bool) -> LossReport:
            found = LossReport(
                id=id,
                line_id="line-1",
                brand_id="nordlys",
                subscriber_id="sub-1",
                msisdn="+4520000001",
                iccid="89450000000000000001",
                reason=LossReason.LOST,
                channel=LossChannel.PORTAL,
                opened_by="customer",
                opened_at=at,
            )
            if not open_:
                found.state = LossState.LIFTED
                found.open_line_id = None
            return found

        seeded(rig, report("r-1", T0 - dt.timedelta(days=1), open_=False))
        with rig.uow() as uow:
            assert uow.loss_reports.open_for_line("line-1") is None
            assert not uow.loss_reports.holds("89450000000000000001")
            uow.loss_reports.add(report("r-2", T0, open_=True))
            uow.commit()
        with rig.uow() as uow:
            found = uow.loss_reports.open_for_line("line-1", lock=True)
            assert found is not None and found.id == "r-2"
            assert uow.loss_reports.newest_for_line("line-1") is found
            assert uow.loss_reports.get("r-1", lock=True) is not None
            assert uow.loss_reports.holds("89450000000000000001")


# ------------------------------------------------------------------ identity checks


class TestIdentityChecks:
    def test_the_newest_unexpired_check_of_one_agent_on_one_line(self, rig: Rig) -> None:
        def check(id: str, at: dt.datetime, method: str) -> IdentityCheck:
            return IdentityCheck(
                id=id,
                staff_id="staff-1",
                line_id="line-1",
                method=method,
                verified_at=at,
                expires_at=at + dt.timedelta(minutes=30),
            )

        staff = StaffUser(
            id="staff-1",
            username="agent",
            display_name="Agent",
            password_hash="x",
            role=Role.AGENT,
            created_at=T0,
        )
        with rig.uow() as uow:
            _seed_staff(uow, staff)
            uow.commit()
        seeded(
            rig,
            check("k-1", T0 - dt.timedelta(minutes=20), "id_document"),
            check("k-2", T0 - dt.timedelta(minutes=10), "pin"),
        )
        with rig.uow() as uow:
            newest = uow.identity_checks.newest_valid(staff_id="staff-1", line_id="line-1", at=T0)
            assert newest is not None and newest.id == "k-2"
            doc = uow.identity_checks.newest_valid(
                staff_id="staff-1", line_id="line-1", at=T0, method="id_document"
            )
            assert doc is not None and doc.id == "k-1"
            later = T0 + dt.timedelta(minutes=15)
            assert (
                uow.identity_checks.newest_valid(
                    staff_id="staff-1", line_id="line-1", at=later, method="id_document"
                )
                is None
            )


def _seed_staff(uow: UnitOfWork, staff: StaffUser) -> None:
    # Staff accounts are not a repository of this contract; the foreign key of
    # identity_check needs one in the database.
    if uow.dialect != "memory":
        uow.session.add(staff)


# ------------------------------------------------------------------ jobs and calls


class TestJobsAndCalls:
    def test_jobs_are_found_by_request_kind_state_and_time(self, rig: Rig) -> None:
        seeded(rig)
        with rig.uow() as uow:
            first = uow.jobs.add("esim.provision", at=T0, request_id="req-1")
            uow.enqueue(
                "esim.cancel_order", at=T0, request_id="req-1", run_after=T0 + dt.timedelta(hours=1)
            )
            uow.commit()
        with rig.uow() as uow:
            assert uow.jobs.exists(request_id="req-1")
            assert uow.jobs.exists(request_id="req-1", kind="esim.provision", states=["pending"])
            assert not uow.jobs.exists(request_id="req-1", kind="esim.provision", excluding=first)
            assert not uow.jobs.exists(request_id="req-1", kind="esim.provision", states=["done"])
            assert not uow.jobs.exists(request_id="req-1", kind="esim.cancel_order", due_by=T0)
            assert uow.jobs.exists(
                request_id="req-1", kind="esim.cancel_order", due_by=T0 + dt.timedelta(hours=1)
            )
            assert not uow.jobs.exists(request_id="req-2")

    def test_a_call_may_have_taken_effect_unless_it_failed_for_good(self, rig: Rig) -> None:
        seeded(rig)
        rig.record_call("req-1", "es2.downloadOrder", "failed", False)
        rig.record_call("req-2", "es2.downloadOrder", "failed", True)
        rig.record_call("req-3", "courier.dispatch", "started", None)
        rig.record_call("req-4", "es2.confirmOrder", "succeeded", None)
        targets = ["es2.downloadOrder", "courier.dispatch"]
        with rig.uow() as uow:
            assert not uow.calls.may_have_taken_effect(request_id="req-1", targets=targets)
            assert uow.calls.may_have_taken_effect(request_id="req-2", targets=targets)
            assert uow.calls.may_have_taken_effect(request_id="req-3", targets=targets)
            assert not uow.calls.may_have_taken_effect(request_id="req-4", targets=targets)
