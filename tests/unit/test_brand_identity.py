"""A brand's identity in its policy, the numbers people type, and contact points in
messages (issue 12, "what to build" 6). No I/O."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resim.adapters.mail.message import WireMessage, wire_message
from resim.adapters.mail.templates import render_mail, render_sms
from resim.demo.demo_data import DEMO_BRANDS
from resim.demo.demo_identity import FJORDNETT
from resim.domain.brand_identity import BrandIdentity, contrast
from resim.domain.policy import BrandPolicy
from resim.entrypoints.web.device import device_kind
from resim.errors import InvalidInput
from resim.services.notifications.brand_look import candidates
from resim.services.ports import OutgoingMail

CONTACT = {"brand_name": "Fjordnett", "brand_phone": "+47 800 12 345"}


def parsed(wire: WireMessage) -> EmailMessage:
    """The message as a receiver reads it (headers decoded)."""
    msg = email.message_from_bytes(wire.data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


class TestTheIdentityIsChecked:
    def test_every_demo_brand_has_a_logo_colours_contacts_and_survives_a_round_trip(
        self,
    ) -> None:
        for brand in DEMO_BRANDS:
            ident = brand.spec.policy.identity
            assert ident.display_name and ident.logo_svg and ident.phone and ident.web_url
            again = BrandPolicy.from_dict(brand.spec.policy.to_dict())
            assert again.identity == ident

    def test_an_empty_policy_has_a_neutral_identity(self) -> None:
        assert BrandPolicy.from_dict({}).identity == BrandIdentity()

    @pytest.mark.parametrize(
        "fields",
        [
            {"colour": "#ffee00"},  # too light for links on white
            {"colour": "#0b5cad", "text_colour": "#1040a0"},  # button text unreadable
            {"colour": "blue"},
            {"web_url": "http://nordlys.example/"},
            {"web_url": "javascript:alert(1)"},
            {"stores_url": 'https://x.example/"><script>'},
            {"phone": "call us"},
            {"display_name": "Nordlys\r\nBcc: x@example"},
            {"logo_svg": "<svg><script>alert(1)</script></svg>"},
            {"logo_svg": '<svg onload="alert(1)"></svg>'},
            {"logo_svg": '<svg><image href="https://evil.example/x.png"/></svg>'},
            {"logo_svg": "<svg><style>@import url(//evil.example)</style></svg>"},
            {"logo_svg": "<p>not an svg</p>"},
            {"logo_svg": "<svg>" + "<g/>" * 3000 + "</svg>"},
            {"after_swap_note": {"english": "x"}},
            {"after_swap_note": {"en": ""}},
        ],
    )
    def test_bad_values_are_refused(self, fields: dict[str, object]) -> None:
        with pytest.raises(InvalidInput):
            BrandPolicy.from_dict({"identity": fields})

    def test_an_unknown_identity_field_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match=r"identity\.slogan"):
            BrandPolicy.from_dict({"identity": {"slogan": "Fast"}})

    def test_contrast_is_the_wcag_ratio(self) -> None:
        assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
        assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)

    def test_the_note_falls_back_to_the_brands_language_then_english(self) -> None:
        assert "BankID" in FJORDNETT.note_in("fr", "nb") and "aktiveres" in FJORDNETT.note_in(
            "fr", "nb"
        )
        assert FJORDNETT.note_in("zh_Hans", "da").startswith("SIM-based BankID")
        assert FJORDNETT.phone_uri == "tel:+4780012345"


class TestTypedNumbers:
    @pytest.mark.parametrize(
        ("typed", "regions", "expected"),
        [
            ("20 12 34 56", ["DK"], "+4520123456"),
            ("0045 20123456", ["IT"], "+4520123456"),
            ("+45 20 12 34 56", [], "+4520123456"),
            ("333 123 4567", ["DK", "IT"], "+393331234567"),
            ("06 12 34 56 78", ["FR"], "+33612345678"),
            ("412 34 567", ["NO"], "+4741234567"),
        ],
    )
    def test_national_and_international_readings(
        self, typed: str, regions: list[str], expected: str
    ) -> None:
        assert expected in candidates(typed, regions)

    def test_one_national_number_can_mean_two_countries(self) -> None:
        assert set(candidates("41 23 45 67", ["DK", "NO"])) == {"+4541234567", "+4741234567"}

    @given(st.text(max_size=40))
    def test_anything_typed_gives_only_valid_e164_or_nothing(self, typed: str) -> None:
        for number in candidates(typed, ["DK", "NO", "IT", "FR"]):
            assert number.startswith("+") and number[1:].isdigit()

    @given(
        st.sampled_from(["+45", "0045", ""]),
        st.lists(st.sampled_from([" ", "-", ".", ""]), min_size=7, max_size=7),
    )
    def test_separators_do_not_matter(self, prefix: str, seps: list[str]) -> None:
        digits = "20123456"
        typed = prefix + digits[0] + "".join(s + d for s, d in zip(seps, digits[1:], strict=True))
        assert candidates(typed, ["DK"]) == {"+4520123456": {"" if prefix else "DK"}}


class TestMessagesNameTheContact:
    def test_mail_footer_names_phone_and_web(self) -> None:
        mail = render_mail(
            "lock_on",
            language="nb",
            context={
                **CONTACT,
                "brand_web": "https://fjordnett.example/kundeservice",
                "customer_name": "Ola",
                "msisdn_masked": "+47******67",
            },
        )
        assert "Kundeservice hos Fjordnett: +47 800 12 345" in mail.text
        assert 'href="tel:+4780012345"' in mail.html
        assert "https://fjordnett.example/kundeservice" in mail.html

    def test_a_brand_without_contact_points_sends_what_it_did(self) -> None:
        mail = render_mail(
            "lock_on",
            language="en",
            context={"brand_name": "X", "customer_name": "A", "msisdn_masked": "+47***"},
        )
        assert "Customer service of" not in mail.text

    def test_sms_saying_contact_gives_the_number(self) -> None:
        sms = render_sms("lock_on", language="da", context={**CONTACT, "msisdn_masked": "+47**"})
        assert "Ring straks til Fjordnett på +47 800 12 345." in sms.text
        failed = render_sms(
            "replacement_failed",
            language="en",
            context={
                **CONTACT,
                "msisdn_masked": "+47**",
                "request_ref": "AB12CD34",
                "not_me_url": "https://x.example/not-me/t",
                "continue_url": "https://x.example/c/t",
            },
        )
        assert "Questions? Call Fjordnett on +47 800 12 345." in failed.text

    def test_the_dates_still_render(self) -> None:
        when = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
        sms = render_sms(
            "unlock_requested",
            language="en",
            context={**CONTACT, "msisdn_masked": "+47**", "effective_at": when},
        )
        assert "+47 800 12 345" in sms.text


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)", "ios"),
        ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X)", "ios"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile", "android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0", "desktop"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15", "desktop"),
        (None, "desktop"),
    ],
)
def test_the_device_is_told_from_the_user_agent(agent: str | None, kind: str) -> None:
    assert device_kind(agent) == kind


class TestMailComesFromTheBrand:
    def mail(self, name: str | None) -> OutgoingMail:
        return OutgoingMail(
            to="kari@example.no", subject="S", text="T", message_id="m1", sender_name=name
        )

    def test_the_from_address_carries_the_brands_name(self) -> None:
        msg = parsed(wire_message(self.mail("Fjordnett Ø"), sender="resim <no-reply@resim.test>"))
        name, address = email.utils.parseaddr(str(msg["From"]))
        assert (name, address) == ("Fjordnett Ø", "no-reply@resim.test")

    def test_without_a_brand_the_sender_stays(self) -> None:
        msg = parsed(wire_message(self.mail(None), sender="resim <no-reply@resim.test>"))
        assert str(msg["From"]) == "resim <no-reply@resim.test>"

    def test_a_name_cannot_add_a_header(self) -> None:
        msg = parsed(
            wire_message(self.mail('Evil" <x@y>\r\nBcc: a@b'), sender="no-reply@resim.test")
        )
        assert "Bcc" not in msg and email.utils.parseaddr(str(msg["From"]))[1] == (
            "no-reply@resim.test"
        )
