"""Issue 12, finding 5, over real HTTP: many customers behind one address (SQLite and PostgreSQL).

A shop's Wi-Fi or a reverse proxy puts many people behind one address. Six
wrong codes from it must not refuse a fresh customer with the right code, nor
keep the shop's agent from signing in; reaching the address's ceiling alerts
reviewers. Two ways in: through a reverse proxy named in
``RESIM_TRUSTED_PROXIES`` (``X-Forwarded-For`` believed, so the throttle and the
audit log see the customer's address), and direct (a forged ``X-Forwarded-For``
is ignored everywhere: portal, console and API agree on the socket's address).
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from identity_support import PASSWORD, enrol
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.onboarding import seed
from resim.services.replacement import requests

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SHOP = "203.0.113.50"  # the shop's public address, as the trusted proxy reports it
_numbers = itertools.count(7600)
_forged = itertools.count(1)


@dataclass
class Site:
    url: str
    mode: str  # "proxy" or "direct"

    @property
    def address(self) -> str:
        """The address every failure must be counted and audited on."""
        return SHOP if self.mode == "proxy" else "127.0.0.1"

    def headers(self) -> dict[str, str]:
        # Behind the proxy: the shop's address. Direct: a forged header, a new one
        # each time (an attacker dodging a per-address count), which must be ignored.
        forwarded = SHOP if self.mode == "proxy" else f"198.51.100.{next(_forged) % 250}"
        return {"X-Forwarded-For": forwarded, "Accept-Language": "en"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20, headers=self.headers())


@pytest.fixture(params=["proxy", "direct"])
def site(system: System, request: pytest.FixtureRequest) -> Iterator[Site]:
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),  # 5 per request; back-off after 3
        ),
    )
    trusted = ("127.0.0.1",) if request.param == "proxy" else ()
    running = ServerThread(build_app(system.ctx, ApiConfig(trusted_proxies=trusted))).start()
    yield Site(running.url, request.param)
    running.stop()


def text_of(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def token(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def customer(system: System) -> tuple[str, str]:
    """A customer with an open portal request: (request id, the code in their e-mail)."""
    msisdn, email, _, _ = add_line(system, next(_numbers))
    made = requests.open_request(system.ctx, msisdn=msisdn, reason="damaged", channel="portal")
    system.run_jobs()
    return made.id, system.code_for(email)


def enter(site: Site, rid: str, code: str) -> httpx.Response:
    """Type ``code`` on the verify page. Post/redirect/get: a refusal answers 303 back
    to the verify page, and this returns that page (see :func:`refused`); a code that
    gets in answers 303 to the status page, returned as it is."""
    with site.client() as http:
        here = f"/portal/requests/{rid}/verify"
        page = http.get(here)
        assert page.status_code == 200
        answer = http.post(here, data={"combo": "0", "email_otp": code, "csrf_token": token(page)})
        assert answer.status_code == 303, answer.text[:400]
        return http.get(here) if answer.headers["location"] == here else answer


def refused(answer: httpx.Response) -> bool:
    """Back on the verify page with an error (not on to the status page)."""
    return answer.url.path.endswith("/verify") and 'role="alert"' in answer.text


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def agent_signs_in(
    system: System, site: Site, member: tuple[str, str] | None = None, password: str = PASSWORD
) -> httpx.Response:
    username, totp_seed = member or enrol(system.ctx, "agent")
    with site.client() as http:
        form = http.get("/console/login")
        return http.post(
            "/console/login",
            data={
                "csrf_token": token(form),
                "username": username,
                "password": password,
                "totp": pyotp.TOTP(totp_seed).at(system.clock.now()),
            },
        )


def failure_addresses(system: System) -> set[str]:
    t = orm.audit_event
    with system.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.detail).where(t.c.action == "verification.failed"))
        return {(r.detail or {}).get("source_ip") for r in rows}


def alerts(system: System) -> list[tuple[str, str]]:
    with system.engine.connect() as conn:
        return [(a.kind, a.subject_id) for a in conn.execute(sa.select(orm.alert))]


class TestSixWrongCodesFromOneAddress:
    def test_a_fresh_customer_and_the_agent_still_get_in(self, system: System, site: Site) -> None:
        for rid, code in [customer(system) for _ in range(3)]:  # 3 x 2 = six wrong codes
            for left in (4, 3):
                answer = enter(site, rid, wrong(code))
                assert refused(answer), text_of(answer)[:400]
                assert f"You have {left} attempts left." in text_of(answer)
        fresh, fresh_code = customer(system)
        assert enter(site, fresh, fresh_code).status_code == 303  # straight to the status page
        by_api, api_code = customer(system)
        with site.client() as http:
            answer = http.post(f"/v1/requests/{by_api}/verification", json={"otp": api_code})
        assert answer.status_code == 200, answer.text
        assert agent_signs_in(system, site).status_code == 303
        assert failure_addresses(system) == {site.address}  # one resolved address everywhere
        assert alerts(system) == []

    def test_the_one_who_fails_is_still_stopped_with_an_honest_count(
        self, system: System, site: Site
    ) -> None:
        rid, code = customer(system)
        for _ in range(2):
            enter(site, rid, wrong(code))
        third = text_of(enter(site, rid, wrong(code)))
        assert "You have 2 attempts left." in third
        assert "You can try again in 30 seconds." in third  # a countdown, not a clock time
        blocked = enter(site, rid, code)  # even the right code waits
        assert refused(blocked)
        assert "You can try again in 30 seconds." in text_of(blocked)
        assert "+0" not in text_of(blocked) and "CET" not in text_of(blocked)  # no clock time
        assert "The code works for 10 more minutes." in text_of(blocked)

    def test_the_address_ceiling_raises_an_alert_and_blocks_nobody(
        self, system: System, site: Site
    ) -> None:
        system.ctx.ip_max_failures = 6
        for rid, code in [customer(system) for _ in range(3)]:
            for _ in range(2):
                assert refused(enter(site, rid, wrong(code)))
        assert alerts(system) == [("brute_force", site.address)]
        fresh, fresh_code = customer(system)
        assert enter(site, fresh, fresh_code).status_code == 303
        assert agent_signs_in(system, site).status_code == 303


class TestStaffSignInFromTheShop:
    def test_the_staff_member_who_fails_gets_a_countdown_and_a_colleague_gets_in(
        self, system: System, site: Site
    ) -> None:
        failing = enrol(system.ctx, "agent")
        for _ in range(3):
            assert agent_signs_in(system, site, failing, password="wrong").status_code == 401
        blocked = agent_signs_in(system, site, failing)
        assert blocked.status_code == 429
        assert "You can try again in 30 seconds." in text_of(blocked)
        assert agent_signs_in(system, site).status_code == 303  # a colleague on the same Wi-Fi
        fresh, fresh_code = customer(system)  # and a customer in the shop
        assert enter(site, fresh, fresh_code).status_code == 303
