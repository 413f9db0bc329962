"""Issue 15.9 from the console: an agent who checked the caller's ID asks the core
network for a refresh from the line page; SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from risk_support import new_line
from test_console_pages import Staff, line_url, signed_in, text_of
from test_console_pages import server as server
from test_dashboard import BrandStaff
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.services.onboarding import seed

pytestmark = pytest.mark.integration


def checked(agent: Staff, msisdn: str) -> None:
    done = agent.post(
        f"/console/lines/{msisdn}/identity-check",
        line_url(msisdn),
        document_type="passport",
        name=f"Kunde {int(msisdn[-5:])}",
        birth_date="1980-01-01",
        last_digits="2468",
    )
    assert done.status_code == 303, text_of(done)


def refresh_jobs(system: System) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(orm.job.c.kind == "core.refresh")
            ).scalar_one()
        )


def test_an_agent_refreshes_from_the_line_page_and_sees_the_outcome(
    system: System, server: str
) -> None:
    msisdn, _ = new_line(system, 1300)
    agent = signed_in(system, server, "agent")
    assert 'id="network-refresh"' not in agent.http.get(line_url(msisdn)).text  # ID first
    checked(agent, msisdn)
    assert 'id="refresh-button"' in agent.http.get(line_url(msisdn)).text
    sent = agent.post(f"/console/lines/{msisdn}/network-refresh", line_url(msisdn))
    assert sent.status_code == 303
    shown = agent.http.get(sent.headers["location"]).text
    assert 'id="refresh-queued"' in shown and 'data-state="queued"' in shown
    assert refresh_jobs(system) == 1
    again = agent.post(f"/console/lines/{msisdn}/network-refresh", line_url(msisdn))
    assert again.status_code == 409 and refresh_jobs(system) == 1  # one at a time
    system.run_jobs()
    after = agent.http.get(line_url(msisdn)).text
    state = re.search(r'id="refresh-last" data-state="([a-z_]+)"', after)
    assert state and state.group(1) in ("sent", "nobody_serving")
    with system.engine.connect() as conn:
        actions = set(
            conn.execute(
                sa.select(orm.audit_event.c.action).where(
                    orm.audit_event.c.action.like("%network_refresh%")
                )
            ).scalars()
        )
    assert "line.network_refresh_requested" in actions


def test_others_cannot_refresh_a_line(system: System, server: str) -> None:
    msisdn, _ = new_line(system, 1301)
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec("no", "Fjord Tele", "NO", "NOK", "nb", "Europe/Oslo", BrandPolicy()),
    )
    outsider = BrandStaff(system, server, "agent", brand_id="no")
    assert outsider.sign_in().status_code == 303
    foreign = outsider.post(f"/console/lines/{msisdn}/network-refresh", "/console/lines")
    assert foreign.status_code == 404
    reviewer = signed_in(system, server, "reviewer")
    assert reviewer.post(f"/console/lines/{msisdn}/network-refresh", "/console").status_code == 403
    agent = signed_in(system, server, "agent")
    forged = agent.http.post(
        f"/console/lines/{msisdn}/network-refresh", data={"csrf_token": "forged"}
    )
    assert forged.status_code == 400
    agent.http.cookies.clear()
    assert agent.http.post(f"/console/lines/{msisdn}/network-refresh").status_code == 401
    assert refresh_jobs(system) == 0
