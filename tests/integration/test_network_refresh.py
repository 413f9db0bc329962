"""A network refresh for a SIM that will not attach, over the API (issue 15, point 9).

An agent or the BSS (scope ``lines:refresh``) of the line's brand asks; the
worker sends a Cancel-Location through the core network and the outcome is in
the audit log and on ``GET``. Tried from the outside too: another brand's
staff and clients, a customer, nobody, a barred SIM, a malformed number, a
core network that cannot refresh. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, staff_session
from tenancy_support import OTHER, add_other_brand
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.corenet import rules
from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.db import orm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import ExternalError
from resim.services.replacement import requests

pytestmark = pytest.mark.integration


@pytest.fixture
def api(system: System) -> Iterator[httpx.Client]:
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http
    server.stop()


def path(msisdn: str) -> str:
    return f"/v1/lines/{msisdn}/network-refresh"


def audit(system: System, action: str) -> list[tuple[str, dict[str, object]]]:
    ev = orm.audit_event
    with system.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ev.c.actor, ev.c.detail).where(ev.c.action == action).order_by(ev.c.seq)
        ).all()
    return [(r.actor, r.detail) for r in rows]


def refreshes(system: System) -> int:
    with system.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).where(orm.job.c.kind == "core.refresh")
        return int(conn.execute(stmt).scalar_one())


class TestAnAgentRefreshesALine:
    def test_an_attached_sim_gets_a_cancel_location_and_keeps_service(
        self, system: System, api: httpx.Client
    ) -> None:
        msisdn, _, iccid, imsi = add_line(system, 1)
        system.core.record_attach(imsi=imsi)  # registered somewhere, yet "no service"
        agent = bearer(staff_session(system.ctx, "agent", brand_id="dk"))
        assert api.get(path(msisdn), headers=agent).json() is None  # never refreshed

        asked = api.post(path(msisdn), headers=agent)
        assert asked.status_code == 202, asked.text
        assert asked.json()["state"] == "queued"
        assert api.get(path(msisdn), headers=agent).json()["state"] == "queued"
        system.run_jobs()

        done = api.get(path(msisdn), headers=agent).json()
        assert (done["id"], done["state"], done["code"]) == (asked.json()["id"], "sent", None)
        assert done["finished_at"] is not None
        ops = [e.operation for e in system.core.events(imsi=imsi)]
        assert ops[-1] == rules.EV_REFRESHED
        assert system.core.is_enabled(imsi=imsi) is True
        ((actor, detail),) = audit(system, "line.network_refresh_requested")
        assert actor.startswith("staff:") and detail["iccid"] == iccid
        assert [a for a, _ in audit(system, "network_refresh.sent")] == ["worker"]

    def test_a_sim_nobody_serves_is_reported_so(self, system: System, api: httpx.Client) -> None:
        msisdn, _, _, _ = add_line(system, 2)
        key = bearer(client_key(system.ctx, "lines:refresh", brand_id="dk"))
        assert api.post(path(msisdn), headers=key).status_code == 202
        system.run_jobs()
        assert api.get(path(msisdn), headers=key).json()["state"] == "nobody_serving"

    def test_one_refresh_at_a_time_per_line(self, system: System, api: httpx.Client) -> None:
        msisdn, _, _, _ = add_line(system, 3)
        agent = bearer(staff_session(system.ctx, "agent", brand_id="dk"))
        assert api.post(path(msisdn), headers=agent).status_code == 202
        again = api.post(path(msisdn), headers=agent)
        assert again.status_code == 409 and again.json()["code"] == "REFRESH_PENDING"
        system.run_jobs()
        assert api.post(path(msisdn), headers=agent).status_code == 202  # after it ended
        assert refreshes(system) == 2


class TestWhatIsRefused:
    def test_a_barred_sim_is_not_refreshed(self, system: System, api: httpx.Client) -> None:
        msisdn, email, _, imsi = add_line(system, 4)
        opened = requests.open_request(system.ctx, msisdn=msisdn, reason="stolen")
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()  # stolen: the old SIM is suspended
        agent = bearer(staff_session(system.ctx, "agent", brand_id="dk"))
        answer = api.post(path(msisdn), headers=agent)
        assert answer.status_code == 409 and answer.json()["code"] == "NO_SIM_IN_SERVICE"
        assert refreshes(system) == 0
        assert system.core.is_enabled(imsi=imsi) is False

    def test_another_brand_customers_and_nobody_get_nothing(
        self, system: System, api: httpx.Client
    ) -> None:
        add_other_brand(system)
        msisdn, _, _, _ = add_line(system, 5)
        callers = {
            "other agent": (bearer(staff_session(system.ctx, "agent", brand_id=OTHER)), 404),
            "other client": (bearer(client_key(system.ctx, "lines:refresh", brand_id=OTHER)), 404),
            "own reviewer": (bearer(staff_session(system.ctx, "reviewer", brand_id="dk")), 403),
            "own lock client": (bearer(client_key(system.ctx, "lines:lock", brand_id="dk")), 403),
            "nobody": ({}, 401),
        }
        for who, (headers, status) in callers.items():
            for method in ("POST", "GET"):
                answer = api.request(method, path(msisdn), headers=headers)
                assert answer.status_code == status, (who, method, answer.text)
                assert msisdn not in answer.text
        assert refreshes(system) == 0
        assert audit(system, "line.network_refresh_requested") == []

    @pytest.mark.parametrize("bad", ["12", "+4520", "not-a-number", "+45 20 1"])
    def test_a_malformed_number_is_a_clear_4xx(
        self, system: System, api: httpx.Client, bad: str
    ) -> None:
        agent = bearer(staff_session(system.ctx, "agent", brand_id="dk"))
        answer = api.post(path(bad), headers=agent)
        assert 400 <= answer.status_code < 500 and answer.status_code not in (401, 403)
        assert refreshes(system) == 0


class NoRefreshCore(BuiltinCoreNetwork):
    """A core network that cannot send a Cancel-Location (as osmo-hlr 1.5)."""

    def cancel_location(self, *, imsi: str) -> bool:
        raise ExternalError("no", retryable=False, code=rules.REFRESH_UNSUPPORTED)


def test_a_core_network_that_cannot_refresh_says_why(system: System, api: httpx.Client) -> None:
    msisdn, _, _, imsi = add_line(system, 6)
    system.ctx.core = NoRefreshCore(system.engine)
    agent = bearer(staff_session(system.ctx, "agent", brand_id="dk"))
    assert api.post(path(msisdn), headers=agent).status_code == 202
    system.run_jobs()
    done = api.get(path(msisdn), headers=agent).json()
    assert (done["state"], done["code"]) == ("refused", "CORE_REFRESH_UNSUPPORTED")
    assert system.core.is_enabled(imsi=imsi) is True
