"""Reviewing at speed in the console (issue 14.1 and 14.3), over real HTTP with
browser-like cookie jars, on SQLite and PostgreSQL: the sign-in that brings a
signed-out person back, the header, the queue's columns and filters, "approve
and next", and a rejection that needs a reason and a confirmation."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from console_support import Person, held_request, text_nodes, text_of, token_of
from identity_support import PASSWORD
from tenancy_support import OTHER, OWN, add_other_brand
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.entrypoints.web.templating import format_when
from resim.services.replacement import queries

pytestmark = pytest.mark.integration
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def server(system: System) -> Iterator[str]:
    add_other_brand(system)
    running = ServerThread(build_app(system.ctx, ApiConfig())).start()
    yield running.url
    running.stop()


def state_of(system: System, rid: str) -> str:
    return str(queries.get_request_view(system.ctx, rid)["state"])


class TestSignedOut:
    def test_a_browser_goes_to_the_sign_in_and_back_to_the_page_it_asked_for(
        self, system: System, server: str
    ) -> None:
        browser = httpx.Client(base_url=server, timeout=20, headers=HTML)
        asked = browser.get("/console/queue?channel=portal")
        assert asked.status_code == 303
        login_url = asked.headers["location"]
        assert login_url.startswith("/console/login?")
        assert parse_qs(urlsplit(login_url).query)["next"] == ["/console/queue?channel=portal"]
        form = browser.get(login_url)
        assert form.status_code == 200
        assert 'name="next" value="/console/queue?channel=portal"' in form.text
        rita = Person(system, server, "reviewer", "Rita Jensen")  # an account to sign in with
        signed = browser.post(
            "/console/login",
            data={
                "csrf_token": token_of(form),
                "next": "/console/queue?channel=portal",
                "username": rita.username,
                "password": PASSWORD,
                "totp": pyotp.TOTP(rita.seed).at(system.clock.now() + dt.timedelta(seconds=30)),
            },
        )
        assert signed.status_code == 303, text_of(signed)
        assert signed.headers["location"] == "/console/queue?channel=portal"
        assert browser.get(signed.headers["location"]).status_code == 200

    def test_the_page_to_come_back_to_is_always_a_console_page(
        self, system: System, server: str
    ) -> None:
        browser = httpx.Client(base_url=server, timeout=20, headers=HTML)
        for bad in ("https://evil.example/", "//evil.example/x", "/portal", "/console/login"):
            form = browser.get("/console/login", params={"next": bad})
            assert form.status_code == 200
            assert 'name="next"' not in form.text, bad  # back to /console only

    def test_a_script_without_html_still_gets_401(self, system: System, server: str) -> None:
        script = httpx.Client(base_url=server, timeout=20)
        refused = script.get("/console/queue")
        assert refused.status_code == 401
        assert "/console/login?next=%2Fconsole%2Fqueue" in refused.text


class TestHeader:
    def test_brand_person_and_role_are_shown(self, system: System, server: str) -> None:
        agent = Person(system, server, "agent", "Anna Holm", brand_id=OWN)
        page = agent.get("/console")
        nodes = text_nodes(page.text)
        assert "Nordlys Mobil" in nodes and "Anna Holm" in nodes and "Agent" in nodes
        assert 'id="sign-out"' in page.text
        boss = Person(system, server, "admin", "Mette Berg")
        shown = text_nodes(boss.get("/console?lang=da").text)
        assert "operatør" in shown and "Mette Berg" in shown and "Administrator" in shown


class TestLocalTime:
    def test_times_are_in_the_brand_zone_and_the_zone_is_named(
        self, system: System, server: str
    ) -> None:
        dk = held_request(system, OWN)
        no = held_request(system, OTHER)
        omar = Person(system, server, "reviewer", "Omar Lund")  # operator-wide
        for rid, zone in ((dk, "Europe/Copenhagen"), (no, "Europe/Oslo")):
            view = queries.get_request_view(system.ctx, rid)
            page = omar.get(f"/console/requests/{rid}")
            text = text_of(page)
            assert f"Times are shown in {zone} time." in text
            local, utc = (
                " ".join(format_when(view["created_at"], "en", z).split()) for z in (zone, "UTC")
            )
            assert local in text and utc not in text
            audit = text_of(omar.get(f"/console/requests/{rid}/audit"))
            assert f"Times are shown in {zone} time." in audit
        local = Person(system, server, "agent", "Anna Holm", brand_id=OWN)
        assert "Times are shown in Europe/Copenhagen time." in text_of(local.get("/console"))
        assert '<span class="when">' in omar.get(f"/console/requests/{dk}").text  # no wrap


class TestQueue:
    def test_brand_number_channel_age_reasons_and_approvals(
        self, system: System, server: str
    ) -> None:
        portal = held_request(system, OWN, reason="lost", channel="portal")
        api = held_request(system, OTHER, reason="damaged", channel="api", four_eyes=True)
        rita = Person(system, server, "reviewer", "Rita Jensen")
        first = rita.post(
            f"/console/requests/{api}/review", f"/console/requests/{api}", decision="approve"
        )
        assert first.status_code == 303
        system.clock.advance(dt.timedelta(hours=3))
        omar = Person(system, server, "reviewer", "Omar Lund")
        queue = omar.get("/console/queue")
        assert queue.status_code == 200
        text = text_of(queue)
        full = queries.get_request_view(system.ctx, portal)["msisdn"]
        assert full not in text and full[:3] + "*" in text  # masked
        for shown in (
            "Nordlys Mobil",
            "Fjordlinje",
            "Portal",
            "Operator's app (API)",
            "Lost",
            "Broken",
            "waiting 3 h",
            "The e-mail address on the account changed recently.",
            "The account was flagged for fraud before.",
            "1 of 2: Rita Jensen",
            "0 of 1",
        ):
            assert shown in text, shown
        danish = text_of(omar.get("/console/queue?lang=da"))
        assert "E-mailadressen på kontoen blev ændret for nylig." in danish
        assert "venter 3 t" in danish

    def test_filters_by_brand_channel_and_reason(self, system: System, server: str) -> None:
        dk_lost = held_request(system, OWN, reason="lost", channel="portal")
        dk_damaged = held_request(system, OWN, reason="damaged", channel="api")
        no_lost = held_request(system, OTHER, reason="lost", channel="portal")
        omar = Person(system, server, "reviewer", "Omar Lund")

        def listed(query: str) -> set[str]:
            page = omar.get(f"/console/queue{query}")
            assert page.status_code == 200, text_of(page)
            return set(re.findall(r'data-request="([^"]+)"', page.text))

        assert listed("") == {dk_lost, dk_damaged, no_lost}
        assert listed(f"?brand={OTHER}") == {no_lost}
        assert listed("?channel=api") == {dk_damaged}
        assert listed("?reason=lost") == {dk_lost, no_lost}
        assert listed(f"?brand={OWN}&reason=lost") == {dk_lost}
        for bad in ("?channel=fax", "?reason=<b>", "?brand=nowhere"):
            refused = omar.get(f"/console/queue{bad}")
            assert refused.status_code == 400, bad
            assert "The review queue cannot show this" in text_of(refused)
        # A brand's reviewer has no brand filter and sees only their brand.
        local = Person(system, server, "reviewer", "Lars Dahl", brand_id=OWN)
        page = local.get("/console/queue")
        assert 'id="f-brand"' not in page.text
        assert set(re.findall(r'data-request="([^"]+)"', page.text)) == {dk_lost, dk_damaged}
        assert local.get(f"/console/queue?brand={OTHER}").status_code == 400


class TestDecisions:
    def test_approve_and_next_goes_on_in_the_same_filtered_queue(
        self, system: System, server: str
    ) -> None:
        first = held_request(system, OWN, channel="portal")
        system.clock.advance(dt.timedelta(minutes=1))
        held_request(system, OWN, channel="api")  # filtered out
        system.clock.advance(dt.timedelta(minutes=1))
        third = held_request(system, OWN, channel="portal")
        rita = Person(system, server, "reviewer", "Rita Jensen")
        page = f"/console/requests/{first}?channel=portal"
        shown = rita.get(page)
        assert 'name="channel" value="portal"' in shown.text
        went = rita.post(
            f"/console/requests/{first}/review", page, decision="approve_next", channel="portal"
        )
        assert went.status_code == 303
        assert state_of(system, first) == "approved"
        assert went.headers["location"] == f"/console/requests/{third}?channel=portal&done=approved"
        following = rita.get(went.headers["location"])
        assert "This is the next request in the queue." in text_of(following)
        last = rita.post(
            f"/console/requests/{third}/review",
            went.headers["location"],
            decision="approve_next",
            channel="portal",
        )
        assert last.headers["location"] == "/console/queue?channel=portal&done=empty"
        assert "Nothing else in this queue waits for you." in text_of(
            rita.get(last.headers["location"])
        )

    def test_approve_and_next_never_leads_to_another_brand(
        self, system: System, server: str
    ) -> None:
        mine = held_request(system, OWN)
        theirs = held_request(system, OTHER)
        system.clock.advance(dt.timedelta(minutes=1))
        later = held_request(system, OWN)
        local = Person(system, server, "reviewer", "Lars Dahl", brand_id=OWN)
        assert local.get(f"/console/requests/{theirs}").status_code == 404
        page = f"/console/requests/{mine}"
        went = local.post(f"{page}/review", page, decision="approve_next", brand=OTHER)
        assert went.status_code == 303
        assert went.headers["location"] == f"/console/requests/{later}?done=approved"
        assert state_of(system, theirs) == "in_review"

    def test_reject_needs_a_reason_and_a_confirmation(self, system: System, server: str) -> None:
        rid = held_request(system, OWN, reason="damaged")
        rita = Person(system, server, "reviewer", "Rita Jensen")
        page = f"/console/requests/{rid}"
        bare = rita.post(f"{page}/review", page, decision="reject", confirm="yes")
        assert bare.status_code == 400
        assert "Give the reason for rejecting" in text_of(bare)
        assert state_of(system, rid) == "in_review"
        unsure = rita.post(f"{page}/review", page, decision="reject", note="ID did not match")
        assert unsure.status_code == 400
        assert "Tick the box to confirm" in text_of(unsure)
        assert ">ID did not match</textarea>" in unsure.text  # the form kept what was typed
        assert state_of(system, rid) == "in_review"
        done = rita.post(
            f"{page}/review", page, decision="reject", note="ID did not match", confirm="yes"
        )
        assert done.status_code == 303
        assert state_of(system, rid) == "rejected"
        shown = rita.get(page)
        text = text_of(shown)
        assert "Review note" in text and "ID did not match" in text and "Rita Jensen" in text
        assert "Rejected by a reviewer" in text and "Broken" in text
        assert "staff:" not in text and "damaged" not in text_nodes(shown.text)

    def test_approvals_are_named(self, system: System, server: str) -> None:
        rid = held_request(system, OWN, four_eyes=True)
        rita = Person(system, server, "reviewer", "Rita Jensen")
        page = f"/console/requests/{rid}"
        assert (
            rita.post(f"{page}/review", page, decision="approve", note="looks fine").status_code
            == 303
        )
        omar = Person(system, server, "reviewer", "Omar Lund")
        text = text_of(omar.get(page))
        assert "1 of 2: Rita Jensen" in text and "looks fine" in text
        assert "staff:" not in text
