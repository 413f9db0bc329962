"""The customer portal without JavaScript: plain form posts over real HTTP (issue 5).

Real server on loopback (ServerThread), real database (SQLite and PostgreSQL),
the in-package SM-DP+ fake and the built-in core network; jobs run in-test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from risk_support import origin_rules_off
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.domain.policy import BrandPolicy, FeeRule
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.onboarding import seed

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def base_url(system: System) -> Iterator[str]:
    origin_rules_off(system)  # a test browser is always a new device: see risk_support
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield server.url
    server.stop()


def browser(base_url: str, language: str = "en") -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=10, headers={"Accept-Language": language})


def token(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def request_count(system: System) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(orm.replacement_request)).scalar()
            or 0
        )


def open_via_forms(system: System, http: httpx.Client, msisdn: str, reason: str = "lost") -> str:
    """Open through the forms; the request's id comes from the link in the code mail
    (the portal says "check your e-mail" whatever the number, issue 13 finding 15)."""
    start = http.get("/portal")
    assert start.status_code == 200
    moved = http.post("/portal/start", data={"msisdn": msisdn, "csrf_token": token(start)})
    assert moved.status_code == 303 and moved.headers["location"] == "/portal/choose"
    choose = http.get("/portal/choose")
    assert choose.status_code == 200 and 'name="reason"' in choose.text
    opened = http.post(
        "/portal/requests",
        data={"msisdn": msisdn, "reason": reason, "form": "esim", "csrf_token": token(choose)},
    )
    assert opened.status_code == 303, opened.text[:500]
    assert opened.headers["location"].split("?")[0] == "/portal/sent"
    assert http.get("/portal/sent").status_code == 200  # "check your e-mail"
    system.run_jobs()
    return system.request_id_from_mail()


def verify_via_form(http: httpx.Client, rid: str, code: str, **extra: str) -> httpx.Response:
    page = http.get(f"/portal/requests/{rid}/verify")
    assert page.status_code == 200
    return http.post(
        f"/portal/requests/{rid}/verify",
        data={"combo": "0", "email_otp": code, "csrf_token": token(page), **extra},
    )


def run_until(system: System, http: httpx.Client, rid: str, text: str) -> httpx.Response:
    for _ in range(10):
        system.run_jobs()
        page = http.get(f"/portal/requests/{rid}")
        if text in page.text:
            return page
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text.split("<main", 1)[-1]))
    raise AssertionError(f"never showed {text!r}: {shown[:800]}")


class TestTheCorePathWorksWithoutJavaScript:
    def test_start_verify_status_and_the_esim_only_for_the_verified_session(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 900)
        with browser(base_url) as http, browser(base_url) as stranger:
            rid = open_via_forms(system, http, msisdn)
            verify_page = http.get(f"/portal/requests/{rid}/verify")
            assert "Free" in verify_page.text and msisdn not in verify_page.text
            system.run_jobs()
            done = verify_via_form(http, rid, system.code_for(email))
            assert done.status_code == 303 and done.headers["location"] == f"/portal/requests/{rid}"
            cookie = done.headers["set-cookie"].lower()
            assert "resim_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
            ready = run_until(system, http, rid, "Install your new eSIM")
            assert 'src="data:image/png;base64,' in ready.text
            assert "esimsetup.apple.com" not in ready.text  # a desktop: the QR code first
            iphone = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"}
            on_iphone = http.get(f"/portal/requests/{rid}", headers=iphone)
            assert "esimsetup.apple.com" in on_iphone.text
            assert 'id="smdp-address" value="smdp.resim.test"' in ready.text
            matching = re.search(r'id="matching-id" value="([^"]+)"', ready.text)
            assert matching
            # another browser (no session) sees where it is, never the eSIM
            seen = stranger.get(f"/portal/requests/{rid}")
            assert seen.status_code == 200 and "ready to install" in seen.text
            assert matching.group(1) not in seen.text and "data:image/png" not in seen.text
            polled = stranger.get(f"/portal/requests/{rid}/status.json").json()
            assert polled["state"] == "ready" and matching.group(1) not in polled["html"]
            assert matching.group(1) in http.get(f"/portal/requests/{rid}/status.json").text
            refused = stranger.post(
                f"/portal/requests/{rid}/reissue",
                data={"csrf_token": token(stranger.get("/portal"))},
            )
            assert refused.status_code == 303  # back to the status page, which says why
            assert refused.headers["location"] == f"/portal/requests/{rid}"
            told = stranger.get(f"/portal/requests/{rid}")
            assert "confirm who you are again. Nothing was changed." in told.text
            assert matching.group(1) in http.get(f"/portal/requests/{rid}").text  # not reissued
            system.install(rid)
            run_until(system, http, rid, "Done: your new eSIM is active.")
            assert matching.group(1) not in http.get(f"/portal/requests/{rid}").text

    def test_the_mail_link_shows_the_same_status_page(self, system: System, base_url: str) -> None:
        msisdn, _, _, _ = add_line(system, 901)
        with browser(base_url) as http:
            rid = open_via_forms(system, http, msisdn)
            page = http.get(f"/status/{rid}")
            assert page.status_code == 200 and "Waiting for you to confirm" in page.text
            assert msisdn not in page.text
            assert http.get("/status/unknown").status_code == 404


class TestRefusals:
    def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        self, system: System, base_url: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 902)
        before = request_count(system)
        with browser(base_url) as http:
            http.get("/portal")
            for data in ({}, {"csrf_token": "0" * 64}):
                refused = http.post(
                    "/portal/requests", data={"msisdn": msisdn, "reason": "lost", **data}
                )
                assert refused.status_code == 303  # post/redirect/get: the page says why
                assert "This form has expired" in http.get(refused.headers["location"]).text
        assert request_count(system) == before

    def test_bad_input_gets_a_localised_message_and_changes_nothing(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 903)
        before = request_count(system)
        with browser(base_url, "da-DK,da;q=0.9") as http:
            start = http.get("/portal")
            moved = http.post("/portal/start", data={"msisdn": "abc", "csrf_token": token(start)})
            assert moved.status_code == 303 and moved.headers["location"] == "/portal"
            bad = http.get("/portal")
            assert bad.status_code == 200 and 'aria-invalid="true"' in bad.text
            assert "Det ligner ikke et mobilnummer" in bad.text and 'value="abc"' in bad.text
            assert "Det ligner ikke" not in http.get("/portal").text  # shown once
            http.post("/portal/start", data={"msisdn": msisdn, "csrf_token": token(start)})
            choose = http.get("/portal/choose")
            no_reason = http.post(
                "/portal/requests",
                data={"msisdn": msisdn, "reason": "bored", "csrf_token": token(choose)},
            )
            assert no_reason.status_code == 303
            assert no_reason.headers["location"] == "/portal/choose"
            assert "Vælg" in http.get("/portal/choose").text
            assert request_count(system) == before
            rid = open_via_forms(system, http, msisdn)
            system.run_jobs()
            wrong = "000000" if system.code_for(email) != "000000" else "111111"
            failed = verify_via_form(http, rid, wrong)
            assert failed.status_code == 303
            assert failed.headers["location"] == f"/portal/requests/{rid}/verify"
            assert "resim_session" not in failed.headers.get("set-cookie", "")
            assert "Du har 4 forsøg tilbage." in http.get(failed.headers["location"]).text

    def test_a_fee_must_be_accepted_before_confirming(self, system: System, base_url: str) -> None:
        seed.upsert_brand(
            system.ctx,
            seed.BrandSpec(
                "dk",
                "Nordlys Mobil",
                "DK",
                "DKK",
                "da",
                "Europe/Copenhagen",
                BrandPolicy(
                    verification=email_code_alone(),
                    fee=FeeRule(amount_minor=9900, free_per_window=0),
                ),
            ),
        )
        msisdn, email, _, _ = add_line(system, 904)
        with browser(base_url, "da") as http:
            rid = open_via_forms(system, http, msisdn)
            page = http.get(f"/portal/requests/{rid}/verify")
            assert "99,00\xa0kr." in page.text
            system.run_jobs()
            code = system.code_for(email)
            refused = verify_via_form(http, rid, code)
            assert refused.status_code == 303
            assert "resim_session" not in refused.headers.get("set-cookie", "")
            assert "requested" in http.get(f"/portal/requests/{rid}/status.json").text
            accepted = verify_via_form(http, rid, code, accept_fee="yes")
            assert accepted.status_code == 303


class TestLanguages:
    def test_the_browser_language_is_used_and_the_switch_is_remembered(self, base_url: str) -> None:
        with browser(base_url, "zh-CN,zh;q=0.9") as http:
            page = http.get("/portal")
            assert '<html lang="zh-Hans">' in page.text
            assert "您的手机号码" in page.text
            switched = http.get("/portal?lang=fr")
            assert (
                '<html lang="fr">' in switched.text and "lang=fr" in switched.headers["set-cookie"]
            )
            again = http.get("/portal")
            assert '<html lang="fr">' in again.text
            assert again.headers["content-language"] == "fr"
