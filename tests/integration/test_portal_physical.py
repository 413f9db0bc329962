"""Physical SIM replacements in the portal: store pickup and courier (issue 5), over real HTTP.

Real server on loopback, real database (SQLite and PostgreSQL), the built-in
core network; jobs (courier dispatch, cut-over) run in-test through the real
job runner. The courier is the in-package capture (no real carrier exists).
"""

from __future__ import annotations

import datetime as dt
import html
import re

import httpx
import pytest
from risk_support import origin_rules_off
from test_console_pages import server as server
from test_console_pages import signed_in
from test_portal_pages import browser, request_count, token, verify_via_form
from test_replacement_flow import System, add_line, iccid, imsi
from test_replacement_flow import system as system

from resim.domain.model import SimForm
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.services.delivery import delivery
from resim.services.onboarding import seed
from resim.services.replacement import cancel, queries, requests

pytestmark = pytest.mark.integration
ADDRESS = "Vestergade 12, 1050 København K"


def text_of(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def cards(system: System, n: int = 2) -> list[tuple[str, str]]:
    made = [(iccid(), imsi()) for _ in range(n)]
    seed.add_stock(
        system.ctx, brand_id="dk", profile_type="card", profiles=made, form=SimForm.PHYSICAL
    )
    return made


def brand_policy(system: System, **policy: object) -> None:
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone(), **policy),  # type: ignore[arg-type]
        ),
    )
    origin_rules_off(system)


@pytest.fixture(autouse=True)
def _origin_rules_off(system: System) -> None:
    origin_rules_off(system)  # these tests are about delivery; see risk_support


def choose(http: httpx.Client, msisdn: str) -> httpx.Response:
    start = http.get("/portal")
    return landed(
        http, http.post("/portal/start", data={"msisdn": msisdn, "csrf_token": token(start)})
    )


def landed(http: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Every portal POST answers 303 (post/redirect/get): the page it leads to."""
    assert response.status_code == 303, response.text[:600]
    page = http.get(response.headers["location"])
    assert page.status_code == 200, page.text[:600]
    return page


def open_with(http: httpx.Client, msisdn: str, delivery_mode: str, reason: str) -> httpx.Response:
    page = choose(http, msisdn)
    return http.post(
        "/portal/requests",
        data={
            "msisdn": msisdn,
            "reason": reason,
            "delivery": delivery_mode,
            "csrf_token": token(page),
        },
    )


def opened_id(system: System, response: httpx.Response) -> str:
    """The request just opened: the portal says "check your e-mail" whatever the
    number (issue 13, finding 15); its id is in the code mail's link."""
    assert response.status_code == 303, response.text[:600]
    assert response.headers["location"].split("?")[0] == "/portal/sent"
    system.run_jobs()
    return system.request_id_from_mail()


def activate(http: httpx.Client, rid: str, number: str) -> httpx.Response:
    page = http.get("/portal")  # any page's token: the cookie session is what counts
    return http.post(
        f"/portal/requests/{rid}/activate", data={"iccid": number, "csrf_token": token(page)}
    )


def other_valid_iccid(system: System) -> str:
    return iccid()  # Luhn-valid, never dispatched


class TestStorePickup:
    def test_ready_to_collect_then_the_agents_hand_over_completes_it(
        self, system: System, server: str
    ) -> None:
        msisdn, email, _, old_imsi = add_line(system, 1200)
        (card, card_imsi), _ = cards(system)
        with browser(server) as http:
            choice = choose(http, msisdn)
            for mode in ("esim", "pickup", "courier"):
                assert f'id="delivery-{mode}"' in choice.text
            rid = opened_id(system, open_with(http, msisdn, "pickup", "damaged"))
            assert "collected in one of our stores" in text_of(
                http.get(f"/portal/requests/{rid}/verify")
            )
            system.run_jobs()
            assert verify_via_form(http, rid, system.code_for(email)).status_code == 303
            system.run_jobs()
            status = text_of(http.get(f"/portal/requests/{rid}"))
            assert "Ready to collect in a store: bring your ID." in status
            assert queries.get_request_view(system.ctx, rid)["delivery_mode"] == "pickup"

            agent = signed_in(system, server, "agent")
            line_page = f"/console/lines?msisdn={msisdn.replace('+', '%2B')}"
            checked = agent.post(
                f"/console/lines/{msisdn}/identity-check",
                line_page,
                document_type="passport",
                name="Kunde 1200",
                birth_date="1980-01-01",
                last_digits="2468",
            )
            assert checked.status_code == 303
            page = f"/console/requests/{rid}"
            handed = agent.post(f"{page}/handover", page, iccid=card)
            assert handed.status_code == 303
            moving = text_of(http.get(f"/portal/requests/{rid}"))
            assert "We are moving your number to the new SIM card." in moving
            system.run_jobs()
            done = text_of(http.get(f"/portal/requests/{rid}"))
            assert "Done: your new SIM card is active." in done
            assert "The old SIM no longer works." in done
        assert system.core.imsi_of(msisdn=msisdn) == card_imsi
        assert not system.core.is_enabled(imsi=old_imsi)


class TestCourier:
    def test_dispatch_on_its_way_wrong_iccids_refused_then_the_right_one_cuts_over(
        self, system: System, server: str
    ) -> None:
        brand_policy(system, courier_fee_minor=4900)
        msisdn, email, _, old_imsi = add_line(system, 1210, postal_address=ADDRESS)
        [(card, card_imsi)] = cards(system, 1)
        with browser(server) as http, browser(server) as stranger:
            choice = text_of(choose(http, msisdn))
            assert "Delivery by courier costs" in choice and "49" in choice
            rid = opened_id(system, open_with(http, msisdn, "courier", "lost"))
            confirm = text_of(http.get(f"/portal/requests/{rid}/verify"))
            assert "V********* 1*, 1*** K******** K" in confirm
            assert "Vestergade" not in confirm and "København" not in confirm
            assert "49.00" in confirm  # the courier surcharge, before confirming
            system.run_jobs()
            done = verify_via_form(http, rid, system.code_for(email), accept_fee="yes")
            assert done.status_code == 303
            system.run_jobs()  # suspends the old SIM, dispatches the card
            view = queries.get_request_view(system.ctx, rid)
            assert view["state"] == "ready" and view["shipment_ref"]
            shipments = system.ctx.courier.shipments()  # type: ignore[attr-defined]
            assert [(s["id"], s["iccid"], s["address"]) for s in shipments] == [
                (rid, card, ADDRESS)
            ]
            kinds = [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]
            assert "card_dispatched" in kinds
            status = http.get(f"/portal/requests/{rid}")
            assert "Your new SIM card is on its way." in text_of(status)
            assert 'name="iccid"' in status.text
            seen = stranger.get(f"/portal/requests/{rid}")
            assert "on its way" in text_of(seen) and 'name="iccid"' not in seen.text
            told = landed(stranger, activate(stranger, rid, card))  # no session: nothing
            assert "confirm who you are again. Nothing was changed." in text_of(told)
            assert queries.get_request_view(system.ctx, rid)["installed_at"] is None

            bad_luhn = card[:-1] + str((int(card[-1]) + 1) % 10)
            refused = landed(http, activate(http, rid, bad_luhn))
            assert "That is not a valid ICCID" in text_of(refused)
            wrong = landed(http, activate(http, rid, other_valid_iccid(system)))
            assert "not the number of the card we sent you" in text_of(wrong)
            assert queries.get_request_view(system.ctx, rid)["state"] == "ready"

            ok = activate(http, rid, " ".join([card[:4], card[4:]]))  # spaces as printed
            assert ok.status_code == 303
            system.run_jobs()
            final = text_of(http.get(f"/portal/requests/{rid}"))
            assert "Done: your new SIM card is active." in final
        assert system.core.imsi_of(msisdn=msisdn) == card_imsi
        assert not system.core.is_enabled(imsi=old_imsi)

    def test_wrong_iccids_back_off_like_other_secrets(self, system: System, server: str) -> None:
        msisdn, email, _, _ = add_line(system, 1211, postal_address=ADDRESS)
        [(card, _)] = cards(system, 1)
        with browser(server) as http:
            rid = opened_id(system, open_with(http, msisdn, "courier", "damaged"))
            system.run_jobs()
            verify_via_form(http, rid, system.code_for(email))
            system.run_jobs()
            for _ in range(3):
                assert "not the number" in text_of(
                    landed(http, activate(http, rid, other_valid_iccid(system)))
                )
            blocked = landed(http, activate(http, rid, card))  # even the right card waits now
            assert "You can try again in 30 seconds." in text_of(blocked), text_of(blocked)[:600]
            assert queries.get_request_view(system.ctx, rid)["state"] == "ready"
            system.clock.advance(dt.timedelta(minutes=5))
            moving = landed(http, activate(http, rid, card))
            assert "Activated. We are moving your number" in text_of(moving)

    def test_activation_is_refused_in_the_service_for_an_undispatched_request(
        self, system: System
    ) -> None:
        msisdn, _, _, _ = add_line(system, 1212, postal_address=ADDRESS)
        opened = requests.open_request(
            system.ctx, msisdn=msisdn, reason="damaged", delivery_mode="courier"
        )
        with pytest.raises(Exception) as caught:
            delivery.activate_delivered(system.ctx, request_id=opened.id, iccid=iccid())
        assert getattr(caught.value, "code", None) == "NOT_AWAITING_ACTIVATION"


class TestRefusals:
    def test_a_mode_the_brand_does_not_offer_is_neither_shown_nor_accepted(
        self, system: System, server: str
    ) -> None:
        brand_policy(system, delivery_modes=["esim", "pickup"])
        msisdn, _, _, _ = add_line(system, 1220, postal_address=ADDRESS)
        before = request_count(system)
        with browser(server) as http:
            page = choose(http, msisdn)
            assert 'id="delivery-pickup"' in page.text
            assert 'id="delivery-courier"' not in page.text
            refused = landed(http, open_with(http, msisdn, "courier", "damaged"))
            assert "not offered for your number" in text_of(refused)
        assert request_count(system) == before

    def test_courier_without_a_postal_address_opens_nothing_and_tells_no_more(
        self, system: System, server: str
    ) -> None:
        # Whether an address is on file is the subscriber's business: the visitor,
        # who has proved nothing yet, gets the answer every number gets (finding 15).
        msisdn, email, _, _ = add_line(system, 1221)
        before = request_count(system)
        with browser(server) as http:
            refused = open_with(http, msisdn, "courier", "lost")
            location = refused.headers["location"]
            assert (refused.status_code, location.split("?")[0]) == (303, "/portal/sent")
            assert "postal address" not in text_of(http.get("/portal/sent"))
        assert request_count(system) == before
        system.run_jobs()
        assert system.mail.to(email) == []

    def test_an_agent_cannot_hand_a_courier_card_over_the_counter(
        self, system: System, server: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 1222, postal_address=ADDRESS)
        (card, _), _ = cards(system)
        with browser(server) as http:
            rid = opened_id(system, open_with(http, msisdn, "courier", "damaged"))
            system.run_jobs()
            verify_via_form(http, rid, system.code_for(email))
        agent = signed_in(system, server, "agent")
        page = f"/console/requests/{rid}"
        shown = agent.http.get(page)
        assert "SIM card by courier" in text_of(shown) and 'name="iccid"' not in shown.text
        refused = agent.post(f"{page}/handover", page, iccid=card)
        assert refused.status_code == 409
        assert "by courier, not over the counter" in text_of(refused)
        assert queries.get_request_view(system.ctx, rid)["state"] in ("approved", "ready")


class TestDispatchWithoutStock:
    def test_no_card_in_stock_fails_the_request_visibly_and_books_nothing(
        self, system: System
    ) -> None:
        msisdn, email, _, _ = add_line(system, 1230, postal_address=ADDRESS)
        opened = requests.open_request(
            system.ctx, msisdn=msisdn, reason="device_change", delivery_mode="courier"
        )
        system.run_jobs()
        requests.submit_verification(system.ctx, opened.id, otp=system.code_for(email))
        system.run_jobs()
        view = queries.get_request_view(system.ctx, opened.id)
        assert view["state"] == "failed" and view["failure"]["code"] == "NO_CARD_IN_STOCK"
        assert system.ctx.courier.shipments() == []  # type: ignore[attr-defined]


class TestConfirmingAgainWhenTheCardArrives:
    def test_a_new_browser_confirms_again_then_activates_the_card(
        self, system: System, server: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 1240, postal_address=ADDRESS)
        [(card, card_imsi)] = cards(system, 1)
        with browser(server) as first:
            rid = opened_id(system, open_with(first, msisdn, "courier", "device_change"))
            system.run_jobs()
            verify_via_form(first, rid, system.code_for(email))
            system.run_jobs()
        # days later, in another browser: the first session is gone
        system.clock.advance(dt.timedelta(days=2))
        with browser(server) as later:
            status = later.get(f"/portal/requests/{rid}")
            assert "Has the card arrived?" in text_of(status) and 'name="iccid"' not in status.text
            form = landed(
                later,
                later.post(
                    f"/portal/requests/{rid}/reconfirm/code", data={"csrf_token": token(status)}
                ),
            )
            assert f"/portal/requests/{rid}/reconfirm" in form.text
            assert "I accept the fee" not in form.text
            system.run_jobs()
            code = system.code_for(email)
            wrong = later.post(
                f"/portal/requests/{rid}/reconfirm",
                data={"combo": "0", "email_otp": "000000", "csrf_token": token(form)},
            )
            wrong = landed(later, wrong)
            assert "That did not match" in text_of(wrong)
            ok = later.post(
                f"/portal/requests/{rid}/reconfirm",
                data={"combo": "0", "email_otp": code, "csrf_token": token(wrong)},
            )
            assert ok.status_code == 303 and "resim_session=" in ok.headers["set-cookie"]
            assert 'name="iccid"' in later.get(f"/portal/requests/{rid}").text
            assert activate(later, rid, card).status_code == 303
            system.run_jobs()
            assert "Done: your new SIM card is active." in text_of(
                later.get(f"/portal/requests/{rid}")
            )
        assert system.core.imsi_of(msisdn=msisdn) == card_imsi

    def test_confirming_again_is_refused_once_the_request_is_closed(
        self, system: System, server: str
    ) -> None:
        msisdn, email, _, _ = add_line(system, 1241)
        with browser(server) as http:
            rid = opened_id(system, open_with(http, msisdn, "pickup", "damaged"))
            system.run_jobs()
            verify_via_form(http, rid, system.code_for(email))
        cancel.cancel(system.ctx, rid, actor="customer", note=None)
        kinds = [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]
        with browser(server) as other:
            page = other.get(f"/portal/requests/{rid}")
            assert "Confirm it is you" not in text_of(page)
            refused = other.post(
                f"/portal/requests/{rid}/reconfirm/code",
                data={"csrf_token": token(other.get("/portal"))},
            )
            assert "There is nothing to confirm on this request now" in text_of(
                landed(other, refused)
            )
            assert page.status_code == 200
        system.run_jobs()
        after = [m.headers["X-Resim-Kind"] for m in system.mail.to(email)]
        assert after.count("one_time_code") == kinds.count("one_time_code")
