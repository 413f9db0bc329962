"""The portal's loss pages over HTTP, without JavaScript (issue 12, finding 6)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from loss_support import PIN, add_customer, loss_code
from test_portal_pages import base_url as base_url
from test_portal_pages import browser, open_via_forms, token, verify_via_form
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.services.locks import loss

pytestmark = pytest.mark.integration
LINE_LINK = re.compile(r"https?://[^\s\"]+/portal/lost/([0-9a-f]+)")


def block_via_mail(system: System, http: httpx.Client, msisdn: str, email: str) -> str:
    start = http.get("/portal/lost")
    assert start.status_code == 200
    sent = http.post("/portal/lost/code", data={"msisdn": msisdn, "csrf_token": token(start)})
    assert sent.status_code == 303 and sent.headers["location"] == "/portal/lost/sent"
    system.run_jobs()
    mail = [m for m in system.mail.to(email) if m.headers["X-Resim-Kind"] == "loss_code"][-1]
    link = LINE_LINK.search(mail.text)
    assert link, mail.text
    line_id = link.group(1)
    page = http.get(f"/portal/lost/{line_id}")
    assert page.status_code == 200 and "Block my SIM now" in page.text
    done = http.post(
        f"/portal/lost/{line_id}",
        data={"reason": "stolen", "otp": loss_code(system, email), "csrf_token": token(page)},
    )
    assert done.status_code == 303, done.text[:400]
    return line_id


class TestBlockMySimNowInThePortal:
    def test_the_code_mail_leads_to_a_page_that_blocks_the_sim(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, imsi = add_customer(system, 501)
        with browser(base_url) as http:
            line_id = block_via_mail(system, http, msisdn, email)
            system.run_jobs()
            page = http.get(f"/portal/lost/{line_id}")
            assert "Your SIM is blocked" in page.text and "I found my phone" in page.text
            assert msisdn not in page.text  # masked
        assert system.core.is_enabled(imsi=imsi) is False

    def test_every_number_gets_the_same_answer(self, system: System, base_url: str) -> None:
        msisdn, _, _, _ = add_customer(system, 502)
        with browser(base_url) as http:
            answers = []
            for number in (msisdn, "+4520199998"):
                start = http.get("/portal/lost")
                sent = http.post(
                    "/portal/lost/code", data={"msisdn": number, "csrf_token": token(start)}
                )
                answers.append((sent.status_code, sent.headers.get("location")))
                start = http.get("/portal/lost")
                wrong = http.post(
                    "/portal/lost",
                    data={"msisdn": number, "secret": "0000", "csrf_token": token(start)},
                )
                answers.append((wrong.status_code, "could not confirm" in wrong.text))
            assert answers[:2] == answers[2:]

    def test_the_pin_blocks_at_once_and_a_bad_form_changes_nothing(
        self, system: System, base_url: str
    ) -> None:
        msisdn, _, _, imsi = add_customer(system, 503)
        with browser(base_url) as http:
            start = http.get("/portal/lost")
            forged = http.post("/portal/lost", data={"msisdn": msisdn, "secret": PIN})
            assert forged.status_code == 400  # no CSRF token
            bad = http.post(
                "/portal/lost", data={"msisdn": "hello", "secret": PIN, "csrf_token": token(start)}
            )
            assert bad.status_code == 422
            system.run_jobs()
            assert system.core.is_enabled(imsi=imsi) is True
            start = http.get("/portal/lost")
            done = http.post(
                "/portal/lost",
                data={
                    "msisdn": msisdn,
                    "secret": PIN,
                    "reason": "lost",
                    "csrf_token": token(start),
                },
            )
            assert done.status_code == 303
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is False


class TestCancellingAStolenRequestInThePortal:
    def test_the_sim_stays_barred_and_the_page_says_so(self, system: System, base_url: str) -> None:
        msisdn, email, _, imsi = add_customer(system, 510)
        with browser(base_url) as http:
            rid = open_via_forms(system, http, msisdn, reason="stolen")
            verified = verify_via_form(http, rid, system.code_for(email))
            assert verified.status_code == 303
            # cancelled before the worker barred the SIM: the loss report still bars it
            status = http.get(f"/portal/requests/{rid}")
            assert "Cancelling does not unblock your old SIM" in status.text
            cancelled = http.post(
                f"/portal/requests/{rid}/cancel", data={"csrf_token": token(status)}
            )
            assert cancelled.status_code == 303
            system.run_jobs()
            page = http.get(f"/portal/requests/{rid}")
            assert "The request was cancelled." in page.text
            assert "Nothing changed on your line" not in page.text
            assert "Your SIM stays blocked" in page.text and "To unblock it" in page.text
            blocked = [
                m
                for m in system.mail.to(email)
                if m.headers["X-Resim-Kind"] == "replacement_cancelled"
            ]
            # in the portal's language (issue 12): "stays blocked", not "keeps working"
            assert "Your old SIM stays blocked" in blocked[-1].text
        assert system.core.is_enabled(imsi=imsi) is False


class TestIFoundMyPhoneInThePortal:
    def test_code_and_pin_unblock_it_one_factor_does_not(
        self, system: System, base_url: str
    ) -> None:
        msisdn, email, _, imsi = add_customer(system, 520)
        with browser(base_url) as http:
            line_id = block_via_mail(system, http, msisdn, email)
            system.run_jobs()
            system.clock.advance(dt.timedelta(minutes=1))
            page = http.get(f"/portal/lost/{line_id}")
            sent = http.post(f"/portal/lost/{line_id}/code", data={"csrf_token": token(page)})
            assert sent.status_code == 303 and sent.headers["location"].endswith("?sent=1")
            system.run_jobs()
            code = loss_code(system, email)
            page = http.get(f"/portal/lost/{line_id}?sent=1")
            weak = http.post(
                f"/portal/lost/{line_id}/found", data={"otp": code, "csrf_token": token(page)}
            )
            assert weak.status_code == 422 and "Your SIM is blocked" in weak.text
            found = http.post(
                f"/portal/lost/{line_id}/found",
                data={"otp": code, "pin": PIN, "csrf_token": token(weak)},
            )
            assert found.status_code == 303
            system.run_jobs()
            after = http.get(f"/portal/lost/{line_id}")
            assert "works again" in after.text
        assert system.core.is_enabled(imsi=imsi) is True
        assert loss.status(system.ctx, msisdn=msisdn).last_state == "lifted"


class TestAttackingTheLossPages:
    def test_a_made_up_reason_or_line_changes_nothing(self, system: System, base_url: str) -> None:
        msisdn, _, _, imsi = add_customer(system, 530)
        line_id = loss.status(system.ctx, msisdn=msisdn).line_id
        with browser(base_url) as http:
            page = http.get(f"/portal/lost/{line_id}")
            odd = http.post(
                f"/portal/lost/{line_id}",
                data={"reason": "bored", "pin": PIN, "csrf_token": token(page)},
            )
            assert odd.status_code == 422 and "lost or stolen" in odd.text
            assert http.get("/portal/lost/0123456789abcdef").status_code == 404
            page = http.get(f"/portal/lost/{line_id}")
            nothing = http.post(
                f"/portal/lost/{line_id}/found", data={"pin": PIN, "csrf_token": token(page)}
            )
            assert nothing.status_code == 409 and "not blocked" in nothing.text
        system.run_jobs()
        assert loss.status(system.ctx, msisdn=msisdn).report_id is None
        assert system.core.is_enabled(imsi=imsi) is True
