"""Who may give a barred SIM back: never a cancel (issue 12); a rejection of the
request that barred it, yes (the one rejected may have been a fraudster).
"""

from __future__ import annotations

import datetime as dt

import pytest
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.domain.workflow import State
from resim.services.locks import loss
from resim.services.replacement import cancel, queries, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration


class TestCancellingRequestsNeverLiftsTheLossReport:
    """Issue 12 finding 6: cancelling used to give a stolen SIM its service back.

    The lost phone's SIM is barred by a loss report, which outlives every
    request on the line: neither cancel below resumes it.
    """

    def test_a_cancelled_lost_request_and_a_newer_cancelled_one_leave_the_sim_barred(
        self, system: System
    ) -> None:
        msisdn, email, _, old_imsi = add_line(system, 50)
        lost = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        requests.submit_verification(system.ctx, lost.id, otp=system.code_for(email))
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False

        cancel.cancel(system.ctx, lost.id, actor="customer")
        newer = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged")
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False

        cancel.cancel(system.ctx, newer.id, actor="customer")
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert system.core.imsi_of(msisdn=msisdn) == old_imsi
        assert loss.status(system.ctx, msisdn=msisdn).blocked is True


class TestARejectionGivesTheLineItsServiceBack:
    """Found by the state machine: a rejected lost/stolen request left the SIM barred.

    Whoever was rejected may have been a fraudster who passed verification; the
    account holder must keep service.
    """

    def test_a_reviewer_rejection_resumes_the_suspended_sim(self, system: System) -> None:
        recent = system.ctx.now() - dt.timedelta(days=1)  # recent e-mail change: review
        msisdn, email, _, old_imsi = add_line(system, 60, email_changed_at=recent)
        stolen = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        state = requests.submit_verification(system.ctx, stolen.id, otp=system.code_for(email))
        assert state == State.IN_REVIEW
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is False

        review.review(system.ctx, stolen.id, reviewer="rita", approve_it=False, note="fraud")
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True
        assert queries.get_request_view(system.ctx, stolen.id)["state"] == "rejected"

    def test_a_rejection_before_the_suspension_ran_leaves_the_sim_alone(
        self, system: System
    ) -> None:
        recent = system.ctx.now() - dt.timedelta(days=1)
        msisdn, email, _, old_imsi = add_line(system, 61, email_changed_at=recent)
        lost = requests.open_request(system.ctx, msisdn=msisdn, reason="lost")
        system.run_jobs()
        requests.submit_verification(system.ctx, lost.id, otp=system.code_for(email))
        # the reviewer rejects before the worker ran the suspension job
        review.review(system.ctx, lost.id, reviewer="rita", approve_it=False)
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True
