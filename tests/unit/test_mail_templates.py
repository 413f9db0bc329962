"""render_mail: every kind in every language, and what may never be in a mail."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from markupsafe import escape

from resim.adapters.mail.templates import MAIL_KINDS, render_mail
from resim.domain.activation import ActivationCode
from resim.domain.model import Reason
from resim.errors import InvalidInput
from resim.locale import LANGUAGES, translations

OTP = "482913"
MATCHING_ID = "K2D7Q-8WZ3M-P4HXA-N6TRB"
ACTIVATION = ActivationCode("smdp.example.com", MATCHING_ID, confirmation_code_required=True)
WHEN = dt.datetime(2025, 3, 12, 14, 5, tzinfo=dt.UTC)
# "1$host$..." with or without "LPA:", also URL-encoded as in the iOS link.
ACTIVATION_LIKE = re.compile(r"(?i)(LPA:|LPA%3A)?1(\$|%24)[A-Za-z0-9.-]+(\$|%24)")

EVERYTHING: dict[str, Any] = {
    "customer_name": "Kari Nordmann",
    "brand_name": "Nordlys Mobil",
    "brand_phone": "+45 70 10 20 30",  # its customer service (issue 12)
    "brand_web": "https://nordlys.example/kundeservice",
    "msisdn_masked": "+47 *** ** 123",
    "reason": "lost",
    "request_ref": "AB12CD34",
    "not_me_url": "https://resim.test/not-me/tok3n",
    "code": OTP,
    "ttl_minutes": 10,
    "status_url": "https://resim.test/status/req-1",
    "continue_url": "https://resim.test/continue/req-1.t.mac",
    "expires_at": WHEN,
    "completed_at": WHEN,
    "effective_at": WHEN,
    "purpose": "lift",
    "sim_blocked": "yes",
    "page_url": "https://resim.test/portal/lost/line-1",
    "timezone": "UTC",
    # Things a careless caller might pass; no template may show them.
    "activation_code": ACTIVATION.text,
    "qr_payload": ACTIVATION.qr_payload,
    "ios_install_url": ACTIVATION.ios_install_url,
    "matching_id": MATCHING_ID,
}


def context_for(kind: str, **overrides: Any) -> dict[str, Any]:
    values = {key: EVERYTHING[key] for key in MAIL_KINDS[kind]}
    values.update(overrides)
    return values


def whole(kind: str, language: str = "en", **overrides: Any) -> str:
    r = render_mail(kind, language=language, context=context_for(kind, **overrides))
    return "\n".join([r.subject, r.text, r.html])


ALL = [(kind, lang) for kind in MAIL_KINDS for lang in LANGUAGES]


class TestEveryKindInEveryLanguage:
    @pytest.mark.parametrize(("kind", "language"), ALL)
    def test_renders_subject_text_and_html_with_a_footer_naming_the_brand(
        self, kind: str, language: str
    ) -> None:
        r = render_mail(kind, language=language, context=context_for(kind))
        assert r.language == language
        assert r.subject and "\n" not in r.subject and len(r.subject) < 120
        assert r.text.endswith("\n") and "\n\n\n" not in r.text
        footer = r.text.split("\n-- \n")[-1]
        assert "Nordlys Mobil" in footer
        assert r.html.startswith("<!DOCTYPE html>")
        assert f'<html lang="{language.replace("_", "-")}">' in r.html
        assert "Nordlys Mobil" in r.html.split("<hr")[-1]
        assert "Kari Nordmann" in r.text and "Kari Nordmann" in r.html

    @pytest.mark.parametrize(("kind", "language"), [(k, x) for k, x in ALL if x != "en"])
    def test_is_actually_translated(self, kind: str, language: str) -> None:
        english = render_mail(kind, language="en", context=context_for(kind))
        other = render_mail(kind, language=language, context=context_for(kind))
        assert other.subject != english.subject
        assert other.text.splitlines()[0] != english.text.splitlines()[0]

    @pytest.mark.parametrize(("kind", "language"), ALL)
    def test_all_context_values_the_kind_declares_appear(self, kind: str, language: str) -> None:
        out = whole(kind, language)
        for key in ("msisdn_masked", "request_ref", "not_me_url", "continue_url", "code"):
            if key in MAIL_KINDS[kind]:
                assert EVERYTHING[key] in out, key


class TestWhatMailsMayNotContain:
    @pytest.mark.parametrize(("kind", "language"), ALL)
    def test_only_one_time_code_carries_the_code(self, kind: str, language: str) -> None:
        r = render_mail(kind, language=language, context=EVERYTHING)  # every key offered
        rendered = r.text + r.html
        if kind in ("one_time_code", "loss_code"):
            assert OTP in r.text and OTP in r.html
        else:
            assert OTP not in rendered
        assert OTP not in r.subject, "lock screens show subjects"

    @pytest.mark.parametrize(("kind", "language"), ALL)
    def test_no_kind_contains_an_activation_code(self, kind: str, language: str) -> None:
        r = render_mail(kind, language=language, context=EVERYTHING)
        for part in (r.subject, r.text, r.html):
            assert not ACTIVATION_LIKE.search(part)
            assert MATCHING_ID not in part
            assert "esimsetup.apple.com" not in part

    def test_the_activation_pattern_would_catch_a_leak(self) -> None:
        for leak in (ACTIVATION.text, ACTIVATION.qr_payload, ACTIVATION.ios_install_url):
            assert ACTIVATION_LIKE.search(f"text {leak} text")


class TestValues:
    def test_html_escapes_context_but_text_keeps_it(self) -> None:
        r = render_mail(
            "held_for_review",
            language="en",
            context=context_for("held_for_review", customer_name="<b>Eve</b> & co"),
        )
        assert "<b>Eve</b>" not in r.html and "&lt;b&gt;Eve&lt;/b&gt; &amp; co" in r.html
        assert "Hello <b>Eve</b> & co," in r.text

    def test_urls_are_escaped_in_attributes(self) -> None:
        url = "https://resim.test/not-me/x?a=1&b=2"
        html = render_mail(
            "replacement_requested",
            language="en",
            context=context_for("replacement_requested", not_me_url=url),
        ).html
        assert 'href="https://resim.test/not-me/x?a=1&amp;b=2"' in html
        assert "a=1&b" not in html

    def test_a_customer_without_a_name_gets_a_plain_greeting(self) -> None:
        r = render_mail(
            "replacement_expired",
            language="fr",
            context=context_for("replacement_expired", customer_name=None),
        )
        assert r.text.startswith("Bonjour,\n")

    @pytest.mark.parametrize(
        ("language", "minutes", "expected"),
        [
            ("en", 1, "expires in 1 minute "),
            ("en", 10, "expires in 10 minutes "),
            ("da", 1, "om 1 minut "),
            ("da", 5, "om 5 minutter "),
            ("fr", 1, "dans 1 minute "),
            ("fr", 15, "dans 15 minutes "),
            ("zh_Hans", 5, "5 分钟后失效"),
        ],
    )
    def test_minutes_use_the_plural_rules_of_the_language(
        self, language: str, minutes: int, expected: str
    ) -> None:
        assert expected in whole("one_time_code", language, ttl_minutes=minutes)

    @pytest.mark.parametrize(
        ("language", "expected"),
        [
            ("en", "March 12, 2025"),
            ("da", "12. marts 2025"),
            ("nb", "12. mars 2025"),
            ("it", "12 marzo 2025"),
            ("fr", "12 mars 2025"),
            ("zh_Hans", "2025年3月12日"),
        ],
    )
    def test_dates_are_written_in_the_mail_language(self, language: str, expected: str) -> None:
        assert expected in whole("esim_ready", language)

    def test_dates_are_shown_in_the_given_timezone(self) -> None:
        out = whole("replacement_completed", "da", timezone="Europe/Copenhagen")
        assert "15.05" in out and "14.05" not in out
        late = dt.datetime(2025, 3, 12, 23, 30, tzinfo=dt.UTC)
        assert "13. marts 2025" in whole(
            "replacement_completed", "da", completed_at=late, timezone="Europe/Copenhagen"
        )

    def test_an_unknown_timezone_falls_back_to_utc(self) -> None:
        # CLDR puts a narrow no-break space before "PM".
        assert re.search(r"2:05\sPM UTC", whole("esim_ready", "en", timezone="Mars/Olympus_Mons"))

    def test_an_unknown_language_falls_back_to_english(self) -> None:
        r = render_mail(
            "replacement_cancelled", language="tlh", context=context_for("replacement_cancelled")
        )
        assert r.language == "en"
        assert r.subject == "Your SIM replacement request was cancelled"

    def test_regional_tags_use_the_base_catalog(self) -> None:
        r = render_mail(
            "replacement_cancelled", language="nb-NO", context=context_for("replacement_cancelled")
        )
        assert r.language == "nb"
        assert r.text.startswith("Hei Kari Nordmann,")

    def test_french_puts_a_no_break_space_before_colons(self) -> None:
        assert "Référence\u00a0: AB12CD34" in whole("held_for_review", "fr")


ENGLISH_REASONS = {
    Reason.LOST: "lost phone or SIM",
    Reason.STOLEN: "stolen phone or SIM",
    Reason.DAMAGED: "damaged phone or SIM",
    Reason.DEVICE_CHANGE: "moving to a new device",
    Reason.PROFILE_DELETED: "eSIM deleted from the device",
}


def requested_for(language: str, reason: str) -> tuple[str, str]:
    """Text and HTML of a replacement_requested mail giving ``reason``."""
    r = render_mail(
        "replacement_requested",
        language=language,
        context=context_for("replacement_requested", reason=reason),
    )
    return r.text, r.html


class TestReasons:
    def test_every_reason_of_the_domain_has_an_english_label(self) -> None:
        assert set(ENGLISH_REASONS) == set(Reason)
        for reason, label in ENGLISH_REASONS.items():
            assert f"\nReason given: {label}\n" in requested_for("en", reason.value)[0]

    @pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "en"])
    @pytest.mark.parametrize("reason", list(Reason))
    def test_the_reason_is_translated_and_the_code_never_shows(
        self, language: str, reason: Reason
    ) -> None:
        text, html = requested_for(language, reason.value)
        label = ENGLISH_REASONS[reason]
        translated = translations(language).gettext(label)
        assert translated != label
        given = translations(language).gettext("Reason given: %(reason)s")
        assert given % {"reason": translated} in text
        assert given % {"reason": escape(translated)} in html
        for part in (text, html):
            assert label not in part
            assert reason.value not in part and reason.value.replace("_", " ") not in part

    def test_danish_device_change(self) -> None:
        r = render_mail(
            "replacement_requested",
            language="da",
            context=context_for("replacement_requested", reason="device_change"),
        )
        for part in (r.text, r.html):
            assert "Oplyst årsag: skift til en ny enhed" in part
            assert "device_change" not in part and "device change" not in part

    def test_an_unknown_code_is_shown_readably_rather_than_stopping_the_notice(self) -> None:
        assert "\nOplyst årsag: sim swap fraud\n" in requested_for("da", "sim_swap_fraud")[0]

    def test_the_code_is_escaped_in_html(self) -> None:
        html = requested_for("en", "<b>x</b>")[1]
        assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html

    def test_jobs_queued_with_the_old_english_label_render_translated(self) -> None:
        context = context_for("replacement_requested")
        del context["reason"]
        context["reason_label"] = "device change"  # what releases before reason codes sent
        r = render_mail("replacement_requested", language="da", context=context)
        assert "Oplyst årsag: skift til en ny enhed" in r.text


class TestRefusals:
    def test_unknown_kind(self) -> None:
        with pytest.raises(InvalidInput, match="unknown mail kind"):
            render_mail("password_reset", language="en", context=EVERYTHING)

    def test_missing_keys_are_named(self) -> None:
        context = context_for("esim_ready")
        del context["continue_url"], context["expires_at"]
        with pytest.raises(InvalidInput, match="continue_url, expires_at"):
            render_mail("esim_ready", language="en", context=context)

    @pytest.mark.parametrize(
        ("kind", "key", "value"),
        [
            ("esim_ready", "expires_at", dt.datetime(2025, 3, 12, 14, 5)),  # naive
            ("esim_ready", "expires_at", "2025-03-12"),
            ("esim_ready", "continue_url", "javascript:alert(1)"),
            ("replacement_requested", "not_me_url", "https://x.test/a b"),
            ("one_time_code", "ttl_minutes", 0),
            ("one_time_code", "ttl_minutes", True),
            ("one_time_code", "ttl_minutes", "10"),
            ("one_time_code", "code", 482913),
            ("held_for_review", "msisdn_masked", None),
        ],
    )
    def test_mistyped_values_are_refused(self, kind: str, key: str, value: object) -> None:
        with pytest.raises(InvalidInput, match=key):
            render_mail(kind, language="en", context=context_for(kind, **{key: value}))

    def test_error_messages_do_not_echo_values(self) -> None:
        with pytest.raises(InvalidInput) as info:
            render_mail(
                "one_time_code", language="en", context=context_for("one_time_code", code=482913)
            )
        assert "482913" not in str(info.value)
