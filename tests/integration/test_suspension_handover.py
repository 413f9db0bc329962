"""Regression (found by tests/property/test_workflow_stateful.py): a cancel gives service back.

A lost phone's request suspends the old SIM; cancelling it enqueues the resume.
If a newer request for the line opened before that job ran, the job left the
SIM to the newer request -- which never suspended it, so its cancel resumed
nothing and the line stayed barred with no request in progress.
"""

from __future__ import annotations

import pytest
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system  # re-export the fixture

from resim.services import cancel, queries, requests

pytestmark = pytest.mark.integration


class TestCancellingEveryRequestGivesTheLineItsServiceBack:
    def test_a_newer_request_takes_over_the_suspension_and_its_cancel_resumes(
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
        system.run_jobs()  # the resume job finds the newer request open
        assert system.core.is_enabled(imsi=old_imsi) is False
        assert queries.get_request_view(system.ctx, newer.id)["old_sim_suspended"] is True

        cancel.cancel(system.ctx, newer.id, actor="customer")
        system.run_jobs()
        assert system.core.is_enabled(imsi=old_imsi) is True
        assert system.core.imsi_of(msisdn=msisdn) == old_imsi
