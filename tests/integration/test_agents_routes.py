"""The routes and console pages of issue 12 point 4 over real HTTP, as attackers and
as the staff they are for (SQLite and PostgreSQL): another brand's staff get 404
and change nothing, a plain agent where a reviewer is required 403, nobody 401;
the hand-over screen is never cached and shown to its own session only."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pyotp
import pytest
from identity_support import PASSWORD, bearer, enrol, signed_in
from risk_support import new_line, set_policy
from tenancy_support import OTHER, add_other_brand, snapshot
from test_agents_act import _frozen_by_not_me, _subscriber_row
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.access import staff
from resim.services.console import console
from resim.services.replacement import queries, requests
from resim.services.risk import review

pytestmark = pytest.mark.integration


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    running = ServerThread(build_app(system.ctx, ApiConfig())).start()
    with httpx.Client(base_url=running.url, timeout=20, follow_redirects=False) as client:
        yield client
    running.stop()


def _text(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


def _staff(system: System, role: str, brand: str | None = "dk") -> tuple[dict[str, str], str]:
    token, staff_id = signed_in(system.ctx, role, brand_id=brand)
    return bearer(token), staff_id


def _check(system: System, staff_id: str, msisdn: str) -> None:
    console.record_identity_check(
        system.ctx, staff_id=staff_id, msisdn=msisdn, document_type="passport", last_digits="1234"
    )


def _pending(system: System, n: int) -> tuple[str, str]:
    msisdn, _ = new_line(system, n)
    opened = requests.open_request(
        system.ctx, msisdn=msisdn, reason="device_change", channel="portal", actor="customer"
    )
    return msisdn, opened.id


def _attempts(msisdn: str, request_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    line = quote(msisdn)
    return [
        ("POST", f"/v1/requests/{request_id}/take-over", {"json": {}}),
        ("POST", f"/v1/lines/{line}/unfreeze", {"json": {"reason": "x"}}),
        ("POST", f"/console/requests/{request_id}/take-over", {"data": {}}),
        ("POST", f"/console/requests/{request_id}/cancel", {"data": {}}),
        ("GET", f"/console/requests/{request_id}/screen", {}),
        ("POST", f"/console/lines/{line}/unfreeze", {"data": {"reason": "x"}}),
    ]


class TestFromTheOutside:
    def test_another_brands_staff_find_nothing_and_change_nothing(
        self, system: System, http: httpx.Client
    ) -> None:
        add_other_brand(system)
        msisdn, request_id = _pending(system, 1)
        frozen, _, _ = _frozen_by_not_me(system, 2)
        agent, agent_id = _staff(system, "agent", OTHER)
        reviewer, _ = _staff(system, "reviewer", OTHER)
        # Even with an ID check recorded on a line of its own brand.
        before = snapshot(system)
        frozen_before = _subscriber_row(system, frozen)
        for method, url, body in _attempts(msisdn, request_id) + _attempts(frozen, request_id):
            for who in (agent, reviewer):
                answer = http.request(method, url, headers=who, **body)
                assert answer.status_code in (403, 404), (url, answer.status_code)
                if "unfreeze" in url and who is reviewer:
                    assert answer.status_code == 404, url
                if "unfreeze" not in url and who is agent:
                    assert answer.status_code == 404, url
        assert snapshot(system) == before
        assert _subscriber_row(system, frozen) == frozen_before
        alerts = http.get("/v1/alerts", headers=reviewer)
        assert alerts.status_code == 200 and alerts.json() == []
        page = http.get("/console/alerts", headers=reviewer)
        assert page.status_code == 200 and "No open alerts." in page.text
        assert agent_id

    def test_a_plain_agent_cannot_unfreeze_or_read_alerts(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _ = _frozen_by_not_me(system, 3)
        agent, _ = _staff(system, "agent")
        url = f"/v1/lines/{quote(msisdn)}/unfreeze"
        assert http.post(url, json={"reason": "x"}, headers=agent).status_code == 403
        page = f"/console/lines/{quote(msisdn)}/unfreeze"
        assert http.post(page, data={"reason": "x"}, headers=agent).status_code == 403
        assert http.get("/v1/alerts", headers=agent).status_code == 403
        assert http.get("/console/alerts", headers=agent).status_code == 403
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is not None
        # The agent's line page says "frozen" and offers no way to open a request.
        shown = http.get(f"/console/lines?msisdn={quote(msisdn)}", headers=agent)
        assert 'id="frozen"' in shown.text
        assert "Only a fraud reviewer can unfreeze it." in _text(shown)
        assert f"/console/lines/{quote(msisdn)}/requests" not in shown.text
        assert "unfreeze-reason" not in shown.text  # the reviewer's form is not offered

    def test_nobody_signed_in_is_turned_away(self, system: System, http: httpx.Client) -> None:
        msisdn, request_id = _pending(system, 4)
        for method, url, body in _attempts(msisdn, request_id):
            assert http.request(method, url, **body).status_code == 401, url
        assert http.get("/v1/alerts").status_code == 401
        assert http.get("/console/alerts").status_code == 401

    def test_a_reason_is_required_and_the_page_says_so_in_the_reviewers_language(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _ = _frozen_by_not_me(system, 5)
        reviewer, _ = _staff(system, "reviewer")
        answer = http.post(
            f"/v1/lines/{quote(msisdn)}/unfreeze", json={"reason": ""}, headers=reviewer
        )
        assert answer.status_code == 422
        page = http.post(
            f"/console/lines/{quote(msisdn)}/unfreeze",
            data={"reason": "  "},
            headers={**reviewer, "Accept-Language": "da"},
        )
        assert page.status_code == 400
        assert "Angiv årsagen til at ophæve spærringen af kontoen." in _text(page)
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is not None


class TestAsTheStaffTheyAreFor:
    def test_the_reviewer_unfreezes_over_the_api_with_a_second_reviewer(
        self, system: System, http: httpx.Client
    ) -> None:
        set_policy(system, unfreeze_reviewers=2)
        msisdn, _, _ = _frozen_by_not_me(system, 6)
        r1, _ = _staff(system, "reviewer")
        r2, _ = _staff(system, "reviewer")
        url = f"/v1/lines/{quote(msisdn)}/unfreeze"
        alerts = http.get("/v1/alerts", headers=r1).json()
        assert [(a["kind"], a["msisdn"]) for a in alerts] == [("not_me", msisdn)]
        first = http.post(url, json={"reason": "customer called"}, headers=r1)
        assert first.status_code == 200 and first.json()["unfrozen"] is False
        again = http.post(url, json={"reason": "again"}, headers=r1)
        assert again.status_code == 403 and again.json()["code"] == "SAME_REVIEWER"
        second = http.post(url, json={"reason": "agreed"}, headers=r2)
        assert second.status_code == 200 and second.json()["unfrozen"] is True
        assert http.get("/v1/alerts", headers=r1).json() == []

    def test_take_over_over_the_api_needs_the_agents_id_check(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, request_id = _pending(system, 7)
        agent, agent_id = _staff(system, "agent")
        url = f"/v1/requests/{request_id}/take-over"
        refused = http.post(url, headers=agent)
        assert refused.status_code == 403 and refused.json()["code"] == "IDENTITY_CHECK_REQUIRED"
        console.record_identity_check(
            system.ctx,
            staff_id=agent_id,
            msisdn=msisdn,
            document_type="passport",
            last_digits="1234",
        )
        taken = http.post(url, headers=agent)
        assert taken.status_code == 200 and taken.json()["state"] == "in_review"
        assert queries.get_request_view(system.ctx, request_id)["channel"] == "agent"

    def test_the_screen_is_not_cached_and_only_for_the_opening_session(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _ = new_line(system, 8)
        username, seed = enrol(system.ctx, "agent", brand_id="dk")

        def sign_in() -> tuple[str, str]:
            system.clock.advance(dt.timedelta(seconds=31))  # a fresh TOTP step
            login = staff.login(
                system.ctx,
                username=username,
                password=PASSWORD,
                totp_code=pyotp.TOTP(seed).at(system.clock.now()),
            )
            return login.session.token, login.staff_id

        token, agent_id = sign_in()
        console.record_identity_check(
            system.ctx,
            staff_id=agent_id,
            msisdn=msisdn,
            document_type="passport",
            last_digits="1234",
        )
        made = http.post(
            f"/console/lines/{quote(msisdn)}/requests",
            data={"reason": "device_change", "target_form": "esim"},
            headers=bearer(token),
        )
        assert made.status_code == 303
        request_id = made.headers["location"].rsplit("/", 1)[1]
        _, second = _staff(system, "reviewer")
        review.review(system.ctx, request_id, reviewer=f"staff:{second}", approve_it=True)
        system.run_jobs()
        page = http.get(f"/console/requests/{request_id}", headers=bearer(token))
        assert 'id="open-screen"' in page.text
        screen = http.get(f"/console/requests/{request_id}/screen", headers=bearer(token))
        assert screen.status_code == 200
        assert screen.headers["cache-control"] == "no-store"
        assert "smdp.resim.test" in screen.text and "data:image/png;base64," in screen.text
        # The same agent in another session (another browser, another desk) is refused.
        other_session, same_agent = sign_in()
        assert same_agent == agent_id
        elsewhere = http.get(
            f"/console/requests/{request_id}/screen", headers=bearer(other_session)
        )
        assert elsewhere.status_code == 403
        assert "smdp.resim.test" not in elsewhere.text
        assert elsewhere.headers["cache-control"] == "no-store"


class TestAcknowledgingAnAlert:
    def test_only_the_brands_reviewer_acknowledges_and_it_leaves_the_list(
        self, system: System, http: httpx.Client
    ) -> None:
        add_other_brand(system)
        msisdn, _, _ = _frozen_by_not_me(system, 9)
        own, _ = _staff(system, "reviewer")
        foreign, _ = _staff(system, "reviewer", OTHER)
        agent, _ = _staff(system, "agent")
        [alert] = http.get("/v1/alerts", headers=own).json()
        url = f"/v1/alerts/{alert['id']}/acknowledge"
        assert http.post(url).status_code == 401
        assert http.post(url, headers=agent).status_code == 403
        assert http.post(url, headers=foreign).status_code == 404
        page = f"/console/alerts/{alert['id']}/acknowledge"
        assert http.post(page, headers=foreign).status_code == 404
        assert http.get("/v1/alerts", headers=own).json() == [alert]
        assert http.post(url, headers=own).status_code == 204
        assert http.get("/v1/alerts", headers=own).json() == []
        assert http.post(url, headers=own).status_code == 404  # once
        # Acknowledging the alert does not unfreeze the account.
        assert _subscriber_row(system, msisdn)["replacements_frozen_at"] is not None
