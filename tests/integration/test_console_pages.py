"""The agent console's pages over real HTTP (no browser, no JavaScript), SQLite and PostgreSQL.

Each staff member is an httpx client with its own cookie jar that signs in
through the form (password + TOTP), as a browser without JavaScript would.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pyotp
import pytest
from identity_support import PASSWORD, bearer, enrol
from risk_support import new_line, update_subscriber
from test_replacement_flow import System, iccid, imsi
from test_replacement_flow import system as system

from resim.domain.model import SimForm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.console import dashboard
from resim.services.onboarding import seed
from resim.services.replacement import queries

pytestmark = pytest.mark.integration
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def server(system: System) -> Iterator[str]:
    running = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield running.url
    running.stop()


def line_url(msisdn: str) -> str:
    return f"/console/lines?msisdn={quote(msisdn)}"


def token_of(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def text_of(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


class Staff:
    """A staff member with a browser-like cookie jar."""

    def __init__(self, system: System, url: str, role: str) -> None:
        self.system = system
        self.username, self.seed = enrol(system.ctx, role)
        self.http = httpx.Client(base_url=url, timeout=20, follow_redirects=False)

    def sign_in(self, *, code: str | None = None) -> httpx.Response:
        form = self.http.get("/console/login")
        assert form.status_code == 200
        return self.http.post(
            "/console/login",
            data={
                "csrf_token": token_of(form),
                "username": self.username,
                "password": PASSWORD,
                "totp": code or pyotp.TOTP(self.seed).at(self.system.clock.now()),
            },
        )

    def post(self, path: str, page: str, **data: str) -> httpx.Response:
        """Submit a form found on ``page`` (GET), with its CSRF token."""
        shown = self.http.get(page)
        assert shown.status_code == 200, shown.text[:300]
        return self.http.post(path, data={"csrf_token": token_of(shown), **data})


def signed_in(system: System, url: str, role: str) -> Staff:
    member = Staff(system, url, role)
    assert member.sign_in().status_code == 303
    return member


def cards(system: System) -> list[str]:
    made = [(iccid(), imsi()) for _ in range(2)]
    seed.add_stock(
        system.ctx, brand_id="dk", profile_type="card", profiles=made, form=SimForm.PHYSICAL
    )
    return [c for c, _ in made]


def open_on_behalf(agent: Staff, msisdn: str, reason: str, form: str) -> str:
    line_page = line_url(msisdn)
    checked = agent.post(
        f"/console/lines/{msisdn}/identity-check",
        line_page,
        document_type="passport",
        name=f"Kunde {int(msisdn[-5:])}",
        birth_date="1980-01-01",
        last_digits="2468",
    )
    assert checked.status_code == 303
    made = agent.post(
        f"/console/lines/{msisdn}/requests", line_page, reason=reason, target_form=form
    )
    assert made.status_code == 303, text_of(made)
    return made.headers["location"].rsplit("/", 1)[1]


def approve_in_console(system: System, url: str, rid: str) -> None:
    """A second staff member (a reviewer) approves an agent's request (issue 13)."""
    reviewer = signed_in(system, url, "reviewer")
    page = f"/console/requests/{rid}"
    decided = reviewer.post(f"{page}/review", page, decision="approve")
    assert decided.status_code == 303, text_of(decided)
    assert queries.get_request_view(system.ctx, rid)["state"] == "approved"


class TestSignIn:
    def test_password_and_totp_give_a_strict_httponly_cookie(
        self, system: System, server: str
    ) -> None:
        agent = Staff(system, server, "agent")
        wrong = agent.sign_in(code="000000")
        assert wrong.status_code == 401
        assert "username, password or code is not correct" in text_of(wrong)
        system.clock.advance(__import__("datetime").timedelta(seconds=31))
        ok = agent.sign_in()
        assert ok.status_code == 303 and ok.headers["location"] == "/console"
        cookie = ok.headers["set-cookie"]
        assert "resim_staff=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Path=/console" in cookie
        home = agent.http.get("/console")
        assert home.status_code == 200 and "Find a line" in home.text
        out = agent.post("/console/logout", "/console")
        assert out.status_code == 303
        assert agent.http.get("/console").status_code == 401  # cookie cleared
        # the old token no longer works even if replayed
        agent.http.cookies.set("resim_staff", re.findall(r"resim_staff=([^;]+)", cookie)[0])
        assert agent.http.get("/console").status_code == 401

    def test_a_danish_page(self, system: System, server: str) -> None:
        page = httpx.get(f"{server}/console/login?lang=da")
        assert page.status_code == 200 and '<html lang="da">' in page.text
        assert "Adgangskode" in page.text


class TestAgentPath:
    def test_redacted_until_the_id_check_then_created_on_behalf(
        self, system: System, server: str
    ) -> None:
        msisdn, _ = new_line(system, 940)
        agent = signed_in(system, server, "agent")
        before = agent.http.get(line_url(msisdn))
        assert before.status_code == 200
        assert "K*** 9***" in before.text and "Kunde 940" not in before.text
        assert "kunde940@example.dk" not in before.text
        other = signed_in(system, server, "agent")
        rid = open_on_behalf(agent, msisdn, "damaged", "esim")
        after = agent.http.get(line_url(msisdn))
        assert "Kunde 940" in after.text and "kunde940@example.dk" in after.text
        # another agent still sees the redacted view
        assert "Kunde 940" not in other.http.get(line_url(msisdn)).text
        view = queries.get_request_view(system.ctx, rid)
        # The agent's own ID check alone: held for a second staff member (issue 13).
        assert view["channel"] == "agent" and view["state"] == "in_review"
        shown = agent.http.get(f"/console/requests/{rid}")
        assert shown.status_code == 200 and 'data-state="in_review"' in shown.text
        assert "agent_confirmation" in shown.text
        approve_in_console(system, server, rid)

    def test_a_request_needs_the_id_check_first(self, system: System, server: str) -> None:
        msisdn, _ = new_line(system, 941)
        agent = signed_in(system, server, "agent")
        page = line_url(msisdn)
        refused = agent.post(
            f"/console/lines/{msisdn}/requests", page, reason="lost", target_form="esim"
        )
        assert refused.status_code == 403
        assert "Check the customer's ID document" in text_of(refused)

    def test_hand_over_refuses_a_wrong_iccid_and_takes_a_valid_card(
        self, system: System, server: str
    ) -> None:
        msisdn, _ = new_line(system, 942)
        card, _ = cards(system)
        agent = signed_in(system, server, "agent")
        rid = open_on_behalf(agent, msisdn, "damaged", "physical")
        page = f"/console/requests/{rid}"
        assert 'name="iccid"' not in agent.http.get(page).text  # not approved yet
        approve_in_console(system, server, rid)
        assert 'name="iccid"' in agent.http.get(page).text
        wrong = card[:-1] + str((int(card[-1]) + 3) % 10)
        refused = agent.post(f"{page}/handover", page, iccid=wrong)
        assert refused.status_code == 400
        assert "check digit" in text_of(refused) and 'aria-invalid="true"' in refused.text
        assert queries.get_request_view(system.ctx, rid)["state"] == "approved"
        done = agent.post(f"{page}/handover", page, iccid=card)
        assert done.status_code == 303
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "completed"
        reviewer = signed_in(system, server, "reviewer")
        trail = reviewer.http.get(f"{page}/audit")
        assert trail.status_code == 200
        actions = re.findall(r'<td class="action">([^<]+)</td>', trail.text)
        assert actions[0] == "request.created"
        assert "sim.handed_over" in actions and "request.completed" in actions


class TestReview:
    def test_four_eyes_and_self_approval_refused(self, system: System, server: str) -> None:
        msisdn, email = new_line(system, 950)
        update_subscriber(system, msisdn, fraud_flags=1)  # prior_fraud_flag: four eyes
        creator = signed_in(system, server, "reviewer")
        token = creator.http.cookies["resim_staff"]
        # A reviewer who opened a request through the API may not decide it.
        made = creator.http.post(
            "/v1/requests",
            json={"msisdn": msisdn, "reason": "lost", "channel": "agent"},
            headers=bearer(token),
        )
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        system.run_jobs()
        verified = creator.http.post(  # the customer proves who they are
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
        )
        assert verified.json().get("state") == "in_review", verified.text
        page = f"/console/requests/{rid}"
        queue = creator.http.get("/console/queue")
        assert rid in queue.text and "opened by you" in queue.text
        assert "fraud" in text_of(queue).lower()  # the risk reason is shown
        own = creator.post(f"{page}/review", page, decision="approve")
        assert own.status_code == 409
        assert "You cannot approve or reject a request you created yourself" in text_of(own)

        first, second = (signed_in(system, server, "reviewer") for _ in range(2))
        assert first.post(f"{page}/review", page, decision="approve").status_code == 303
        assert queries.get_request_view(system.ctx, rid)["state"] == "in_review"
        again = first.post(f"{page}/review", page, decision="approve")
        assert again.status_code == 409 and "second reviewer" in text_of(again)
        assert second.post(f"{page}/review", page, decision="approve").status_code == 303
        assert queries.get_request_view(system.ctx, rid)["state"] == "approved"


class TestDashboardPage:
    def test_the_figures_of_the_service_are_shown(self, system: System, server: str) -> None:
        msisdn, _ = new_line(system, 960)
        agent = signed_in(system, server, "agent")
        rid = open_on_behalf(agent, msisdn, "damaged", "physical")
        approve_in_console(system, server, rid)
        card, _ = cards(system)
        assert (
            agent.post(
                f"/console/requests/{rid}/handover", f"/console/requests/{rid}", iccid=card
            ).status_code
            == 303
        )
        system.run_jobs()
        admin = signed_in(system, server, "admin")
        page = admin.http.get("/console/dashboard?days=7")
        assert page.status_code == 200
        shown = re.search(r'id="total-replacements">([^<]+)<', page.text)
        assert shown and shown.group(1) == "1"
        assert dashboard.figures(system.ctx, days=7).totals.replacements == 1


class TestRefusals:
    def test_csrf_refused_and_nothing_changes(self, system: System, server: str) -> None:
        msisdn, _ = new_line(system, 970)
        agent = signed_in(system, server, "agent")
        forged = agent.http.post(
            f"/console/lines/{msisdn}/identity-check",
            data={"csrf_token": "forged", "document_type": "passport", "last_digits": "1111"},
        )
        assert forged.status_code == 400 and "Reload the page" in text_of(forged)
        missing = agent.http.post(
            f"/console/lines/{msisdn}/identity-check",
            data={"document_type": "passport", "last_digits": "1111"},
        )
        assert missing.status_code == 400
        assert "K*** 9***" in agent.http.get(line_url(msisdn)).text

    def test_roles(self, system: System, server: str) -> None:
        agent = signed_in(system, server, "agent")
        reviewer = signed_in(system, server, "reviewer")
        admin = signed_in(system, server, "admin")
        anonymous = httpx.Client(base_url=server, timeout=10)
        assert anonymous.get("/console/queue").status_code == 401
        assert "Sign in" in anonymous.get("/console").text
        assert agent.http.get("/console/queue").status_code == 403
        assert agent.http.get("/console/dashboard").status_code == 403
        # Issue 12: reviewers open a line (redacted) to see and lift a freeze.
        assert reviewer.http.get("/console/lines").status_code == 200
        assert admin.http.get("/console/lines").status_code == 403
        assert admin.http.get("/console/queue").status_code == 403
        assert reviewer.http.get("/console/dashboard").status_code == 200
        denied = admin.post("/console/requests/x/review", "/console", decision="approve")
        assert denied.status_code == 403
