"""The portal speaks as the brand and is specific (issue 12, "what to build" 6).

Plain HTTP against the real app on SQLite and PostgreSQL, as a customer's
browser without JavaScript would: the number in the formats people type, the
brand's look once the number is known, its contact points wherever a page says
"contact us", the fee before any code is sent, the language switch that keeps
the number, the mail in the portal's language, the install button for the
device, a failed download that says only "failed", and the completion receipt.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_support import origin_rules_off
from test_portal_pages import browser, run_until, token, verify_via_form
from test_replacement_flow import System, add_line, iccid, imsi
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.demo.demo_identity import LAGO, NORDLYS
from resim.domain.policy import BrandPolicy, FeeRule
from resim.domain.verification import email_code_alone
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.notifications import brand_look
from resim.services.onboarding import seed

pytestmark = pytest.mark.integration

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
IT_LINE = "+393331234567"
NO_TWIN = "+4741234567"  # the same eight digits as the Danish line below
DK_TWIN = "+4541234567"


def branded(system: System) -> None:
    """The test brand "dk" with its look and contact points, a fee of 99 kr.
    (the first in a year free), and an Italian brand with one line."""
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
                verification=email_code_alone(), fee=FeeRule(amount_minor=9900), identity=NORDLYS
            ),
        ),
    )
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "it",
            "Lago Mobile",
            "IT",
            "EUR",
            "it",
            "Europe/Rome",
            BrandPolicy(verification=email_code_alone(), identity=LAGO),
        ),
    )
    seed.add_line(
        system.ctx,
        seed.LineSpec(
            brand_id="it",
            msisdn=IT_LINE,
            name="Giulia Rossi",
            email="giulia@lago.example",
            iccid=iccid(),
            imsi=imsi(),
        ),
    )


@pytest.fixture
def base_url(system: System) -> Iterator[str]:
    branded(system)
    origin_rules_off(system)  # after: it changes the brands' policies
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield server.url
    server.stop()


def start_with(http: httpx.Client, typed: str) -> httpx.Response:
    """Type the number; the page the 303 leads to (post/redirect/get): choose, or the
    start page again with the error."""
    start = http.get("/portal")
    moved = http.post("/portal/start", data={"msisdn": typed, "csrf_token": token(start)})
    assert moved.status_code == 303, moved.text[:600]
    return http.get(moved.headers["location"])


def visible(page: httpx.Response) -> str:
    """The page's text as a reader sees it (tags dropped)."""
    return re.sub(r"<[^>]+>", " ", page.text)


def hidden_number(page: httpx.Response) -> str:
    found = re.search(r'name="msisdn" value="([^"]*)"', page.text)
    assert found, page.text[:600]
    return found.group(1)


def open_request(system: System, http: httpx.Client, msisdn: str, reason: str = "lost") -> str:
    choose = start_with(http, msisdn)
    assert choose.status_code == 200, choose.text[:600]
    opened = http.post(
        "/portal/requests",
        data={"msisdn": msisdn, "reason": reason, "delivery": "esim", "csrf_token": token(choose)},
    )
    assert opened.status_code == 303
    system.run_jobs()
    return system.request_id_from_mail()


def verified(system: System, http: httpx.Client, rid: str, email: str) -> None:
    page = http.get(f"/portal/requests/{rid}/verify")
    extra = {"accept_fee": "yes"} if 'name="accept_fee"' in page.text else {}
    done = verify_via_form(http, rid, system.code_for(email), **extra)
    assert done.status_code == 303, done.text[:600]


class TestNumbersAreReadAsTheBrandsCountryWritesThem:
    @pytest.mark.parametrize(
        "typed",
        ["20 10 09 01", "20100901", "0045 20 10 09 01", "004520100901", "+45 20 10 09 01"],
    )
    def test_danish_national_and_00_formats(
        self, system: System, base_url: str, typed: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 901)
        with browser(base_url) as http:
            choose = start_with(http, typed)
        assert choose.status_code == 200, choose.text[:600]
        assert hidden_number(choose) == msisdn

    @pytest.mark.parametrize("typed", ["333 123 4567", "3331234567", "0039 333 1234567"])
    def test_italian_national_format(self, system: System, base_url: str, typed: str) -> None:
        with browser(base_url) as http:
            choose = start_with(http, typed)
        assert choose.status_code == 200 and hidden_number(choose) == IT_LINE
        assert "Lago Mobile" in choose.text

    def test_an_unknown_number_is_told_on_the_page_where_it_was_typed(
        self, system: System, base_url: str
    ) -> None:
        with browser(base_url) as http:
            answer = start_with(http, "20 99 88 77")
        assert answer.status_code == 200 and answer.url.path == "/portal"
        assert "We could not find a subscription with that number" in answer.text
        assert 'value="20 99 88 77"' in answer.text and 'aria-invalid="true"' in answer.text
        assert 'name="reason"' not in answer.text

    def test_digits_that_are_a_line_in_two_countries_ask_for_the_country_code(
        self, system: System, base_url: str
    ) -> None:
        seed.add_line(
            system.ctx,
            seed.LineSpec(
                brand_id="dk",
                msisdn=DK_TWIN,
                name="Twin",
                email="twin@example.dk",
                iccid=iccid(),
                imsi=imsi(),
            ),
        )
        seed.upsert_brand(
            system.ctx,
            seed.BrandSpec("no", "Fjordnett", "NO", "NOK", "nb", "Europe/Oslo", BrandPolicy()),
        )
        seed.add_line(
            system.ctx,
            seed.LineSpec(
                brand_id="no",
                msisdn=NO_TWIN,
                name="Tvilling",
                email="tvilling@example.no",
                iccid=iccid(),
                imsi=imsi(),
            ),
        )
        with browser(base_url) as http:
            twice = start_with(http, "41 23 45 67")
            assert twice.url.path == "/portal" and "more than one country" in twice.text
            assert hidden_number(start_with(http, "+47 41 23 45 67")) == NO_TWIN

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        prefix=st.sampled_from(["", "+45", "0045", "+45 ", "0045 "]),
        groups=st.sampled_from([(8,), (2, 2, 2, 2), (4, 4), (2, 3, 3)]),
        separator=st.sampled_from([" ", "-", ".", ""]),
    )
    def test_any_common_spelling_finds_the_line(
        self, system: System, prefix: str, groups: tuple[int, ...], separator: str
    ) -> None:
        if not getattr(system, "_line_added", False):
            add_line(system, 902)
            branded(system)
            system._line_added = True  # type: ignore[attr-defined]
        digits, parts, at = "20100902", [], 0
        for size in groups:
            parts.append(digits[at : at + size])
            at += size
        found = brand_look.find_number(system.ctx, prefix + separator.join(parts))
        assert (found.msisdn, found.brand_id) == ("+4520100902", "dk")


class TestTheBrandSpeaksOnceTheNumberIsKnown:
    def test_the_start_page_is_neutral_and_the_choose_page_is_the_brands(
        self, system: System, base_url: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 910)
        with browser(base_url) as http:
            start = http.get("/portal")
            assert "Nordlys" not in start.text and "resim" not in visible(start)
            assert "New SIM or eSIM" in visible(start)
            assert "/portal/brand/" not in start.text
            choose = start_with(http, msisdn)
            assert "<span>Nordlys Mobil</span>" in choose.text
            assert "· Nordlys Mobil</title>" in choose.text and "resim" not in visible(choose)
            logo = re.search(r'src="(/portal/brand/dk/logo\.svg\?v=\w+)"', choose.text)
            style = re.search(r'href="(/portal/brand/dk/style\.css\?v=\w+)"', choose.text)
            assert logo and style
            svg = http.get(logo.group(1))
            assert svg.headers["content-type"].startswith("image/svg+xml")
            assert "sandbox" in svg.headers["content-security-policy"]
            assert "<svg" in svg.text and "Nordlys Mobil" in svg.text
            css = http.get(style.group(1))
            assert "--accent: #0f6b5c" in css.text
            assert http.get("/portal/brand/nobody/logo.svg").status_code == 404

    def test_the_fee_and_the_ways_to_get_the_sim_come_before_any_code(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 911)
        with browser(base_url) as http:
            choose = start_with(http, msisdn)
        text = choose.text.replace("\xa0", " ")
        assert "What it costs" in text
        assert "A new SIM costs DKK99.00. The first replacement within 365 days is free." in text
        assert 'name="delivery" value="esim"' in text
        system.run_jobs()
        assert system.mail.to(email) == []  # nothing sent yet

    def test_every_contact_us_names_the_brands_customer_service(
        self, system: System, base_url: str
    ) -> None:
        msisdn, _, _, _ = add_line(system, 912)
        with browser(base_url) as http:
            choose = start_with(http, msisdn)
            opened = http.post(
                "/portal/requests",
                data={
                    "msisdn": msisdn,
                    "reason": "lost",
                    "delivery": "esim",
                    "csrf_token": token(choose),
                },
            )
            sent = http.get(opened.headers["location"])
            system.run_jobs()
            rid = system.request_id_from_mail()
            with system.engine.begin() as conn:
                conn.execute(
                    sa.update(orm.replacement_request)
                    .where(orm.replacement_request.c.id == rid)
                    .values(state="failed", open_line_id=None)
                )
            failed = http.get(f"/portal/requests/{rid}")
        for page in (choose, sent, failed):
            assert "Customer service of Nordlys Mobil:" in page.text
            assert 'href="tel:+4570102030"' in page.text
            assert "https://nordlys.example/kundeservice" in page.text
        assert "Please contact us." in failed.text


class TestLanguage:
    def test_the_language_switch_keeps_the_typed_number(
        self, system: System, base_url: str
    ) -> None:
        with browser(base_url) as http:
            start = http.get("/portal")
            assert 'form="number-form" formaction="/portal/language"' in start.text
            switched = http.post(
                "/portal/language",
                data={"lang": "it", "msisdn": "20 10 09 20", "csrf_token": token(start)},
            )
            assert switched.status_code == 303 and switched.headers["location"] == "/portal"
            again = http.get("/portal")
        assert again.headers["content-language"] == "it"
        assert 'value="20 10 09 20"' in again.text

    def test_the_portal_language_decides_the_mail_language(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 921)  # a Danish subscriber
        with browser(base_url, language="fr") as http:
            open_request(system, http, msisdn)
        mails = system.mail.to(email)
        assert {m.headers["X-Resim-Kind"] for m in mails} == {
            "one_time_code",
            "replacement_requested",
        }
        assert {m.language for m in mails} == {"fr"}
        assert {m.sender_name for m in mails} == {"Nordlys Mobil"}  # from the brand
        with system.engine.connect() as conn:
            stored = conn.scalar(sa.select(orm.replacement_request.c.language))
        assert stored == "fr"

    def test_a_new_code_asked_for_in_another_language_comes_in_that_one(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 922)
        with browser(base_url, language="fr") as http:
            rid = open_request(system, http, msisdn)
        with browser(base_url, language="it") as http:
            page = http.get(f"/portal/requests/{rid}/verify")
            resent = http.post(f"/portal/requests/{rid}/code", data={"csrf_token": token(page)})
            assert resent.status_code == 303
            assert "Ti abbiamo inviato un nuovo codice" in http.get(resent.headers["location"]).text
        system.run_jobs()
        codes = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "one_time_code"]
        assert [m.language for m in codes] == ["fr", "it"]
        with system.engine.connect() as conn:
            actions = conn.scalars(
                sa.select(orm.audit_event.c.action).where(
                    orm.audit_event.c.object_id == rid,
                    orm.audit_event.c.action == "request.language_set",
                )
            ).all()
        assert actions == ["request.language_set"]


class TestTheEsimPage:
    def ready(self, system: System, http: httpx.Client, n: int) -> str:
        msisdn, email, _, _ = add_line(system, n)
        rid = open_request(system, http, msisdn, reason="device_change")
        verified(system, http, rid, email)
        run_until(system, http, rid, "Install your new eSIM")
        return rid

    def test_the_install_button_matches_the_device(self, system: System, base_url: str) -> None:
        with browser(base_url) as http:
            rid = self.ready(system, http, 930)
            pages = {
                ua: http.get(f"/portal/requests/{rid}", headers={"User-Agent": ua}).text
                for ua in (IPHONE, ANDROID, DESKTOP)
            }
        main = {ua: re.search(r'id="install-main" href="([^"]+)"', t) for ua, t in pages.items()}
        assert main[IPHONE] and main[IPHONE].group(1).startswith("https://esimsetup.apple.com/")
        assert main[ANDROID] and main[ANDROID].group(1).startswith("LPA:1$")
        assert main[DESKTOP] is None
        assert "esimsetup.apple.com" not in pages[ANDROID] + pages[DESKTOP]
        assert "Install on this iPhone" not in pages[ANDROID] + pages[DESKTOP]
        assert "Scan this code with the camera" in pages[DESKTOP]

    def test_a_failed_download_says_failed_only(self, system: System, base_url: str) -> None:
        with browser(base_url) as http:
            rid = self.ready(system, http, 931)
            system.install(rid, fail=True)
            page = run_until(system, http, rid, "The download to your phone failed.")
        assert "ready to install" not in page.text
        assert "Make a new eSIM code" in page.text

    def test_the_completion_page_gives_a_receipt_and_next_steps(
        self, system: System, base_url: str
    ) -> None:
        with browser(base_url) as http:
            msisdn, email, _, _ = add_line(system, 932)
            rid = open_request(system, http, msisdn, reason="stolen")
            verified(system, http, rid, email)
            run_until(system, http, rid, "Install your new eSIM")
            system.clock.advance(dt.timedelta(minutes=5))
            system.install(rid)
            page = run_until(system, http, rid, "Done: your new eSIM is active.")
        text = page.text
        assert "Receipt" in text and rid[:8].upper() in text
        assert "Requested" in text and "Completed" in text and "Free" in text
        assert "blocked when you confirmed who you are" in text
        assert "Restart your phone" in text and "banking and payment apps" in text
        assert "MitID" in text  # the brand's own note (policy identity.after_swap_note)


class TestFromOutside:
    def test_the_language_post_needs_the_forms_token_and_keeps_only_a_number(
        self, system: System, base_url: str
    ) -> None:
        with browser(base_url) as http:
            forged = http.post("/portal/language", data={"lang": "fr", "msisdn": "20 10 09 30"})
            assert forged.status_code == 303 and "set-cookie" not in forged.headers
            start = http.get("/portal")
            junk = http.post(
                "/portal/language",
                data={"lang": "xx", "msisdn": "<script>", "csrf_token": token(start)},
            )
            assert "resim_typed_number" not in junk.headers.get("set-cookie", "")
            http.cookies.set("resim_typed_number", '"><script>alert(1)</script>', path="/portal")
            again = http.get("/portal")
        assert "<script>alert(1)" not in again.text and 'id="msisdn" name="msisdn" value=""' in (
            again.text
        )

    def test_a_made_up_brand_in_the_address_shows_the_neutral_page(
        self, system: System, base_url: str
    ) -> None:
        with browser(base_url) as http:
            sent = http.get("/portal/sent", params={"brand": '"><script>x</script>'})
            assert sent.status_code == 200 and "<script>x" not in sent.text
            assert "/portal/brand/" not in sent.text
            css = http.get("/portal/brand/..%2F..%2Fetc/style.css")
            assert css.status_code == 404
