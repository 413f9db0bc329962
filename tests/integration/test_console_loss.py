"""The console's line page blocks a lost or stolen phone's SIM and lifts the block (issue 12)."""

from __future__ import annotations

import pytest
from loss_support import add_customer
from test_console_pages import line_url, signed_in, text_of
from test_console_pages import server as server
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.services.locks import loss

pytestmark = pytest.mark.integration


class TestTheLinePage:
    def test_after_the_id_check_the_agent_blocks_and_lifts(
        self, system: System, server: str
    ) -> None:
        msisdn, _, _, imsi = add_customer(system, 601)
        agent = signed_in(system, server, "agent")
        page = agent.http.get(line_url(msisdn))
        assert 'id="loss-none"' in page.text
        assert f"/console/lines/{msisdn}/loss-report" not in page.text  # redacted: no buttons
        refused = agent.post(
            f"/console/lines/{msisdn}/loss-report", line_url(msisdn), reason="lost"
        )
        assert refused.status_code == 400 and "ID document" in text_of(refused)
        assert loss.status(system.ctx, msisdn=msisdn).report_id is None

        checked = agent.post(
            f"/console/lines/{msisdn}/identity-check",
            line_url(msisdn),
            document_type="passport",
            name=f"Kunde {int(msisdn[-5:])}",
            birth_date="1980-01-01",
            last_digits="1357",
        )
        assert checked.status_code == 303
        blocked = agent.post(
            f"/console/lines/{msisdn}/loss-report", line_url(msisdn), reason="stolen"
        )
        assert blocked.status_code == 303, text_of(blocked)
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is False
        shown = agent.http.get(line_url(msisdn))
        assert 'id="loss-blocked"' in shown.text and "stolen" in shown.text
        assert loss.status(system.ctx, msisdn=msisdn).channel == "agent"

        lifted = agent.post(f"/console/lines/{msisdn}/loss-report/lift", line_url(msisdn))
        assert lifted.status_code == 303, text_of(lifted)
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is True
        assert loss.status(system.ctx, msisdn=msisdn).last_state == "lifted"

    def test_a_bad_reason_and_a_missing_token_change_nothing(
        self, system: System, server: str
    ) -> None:
        msisdn, _, _, imsi = add_customer(system, 602)
        agent = signed_in(system, server, "agent")
        agent.post(
            f"/console/lines/{msisdn}/identity-check",
            line_url(msisdn),
            document_type="passport",
            name=f"Kunde {int(msisdn[-5:])}",
            birth_date="1980-01-01",
            last_digits="1357",
        )
        bad = agent.post(f"/console/lines/{msisdn}/loss-report", line_url(msisdn), reason="broken")
        assert bad.status_code == 400
        forged = agent.http.post(f"/console/lines/{msisdn}/loss-report", data={"reason": "lost"})
        assert forged.status_code == 400
        system.run_jobs()
        assert loss.status(system.ctx, msisdn=msisdn).report_id is None
        assert system.core.is_enabled(imsi=imsi) is True
