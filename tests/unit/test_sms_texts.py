"""render_sms: every SMS kind in every language, and what may never be in a text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from resim.adapters.mail.templates import SMS_KINDS, render_sms
from resim.domain.activation import ActivationCode
from resim.errors import InvalidInput
from resim.locale import LANGUAGES
from resim.services.notifications.notify import LINE_NOTICES, REQUEST_NOTICES

OTP = "482913"
ACTIVATION = ActivationCode("smdp.example.com", "K2D7Q-8WZ3M-P4HXA-N6TRB")
EVERYTHING: dict[str, Any] = {
    "brand_name": "Nordlys Mobil",
    "brand_phone": "+45 70 10 20 30",  # its customer service, named where a text says to call
    "msisdn_masked": "+45******23",
    "request_ref": "AB12CD34",
    "not_me_url": "https://resim.test/not-me/tok3n",
    "effective_at": dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
    "timezone": "Europe/Copenhagen",
    # What a careless caller might pass; no text may show it.
    "code": OTP,
    "activation_code": ACTIVATION.text,
    "matching_id": ACTIVATION.matching_id,
    "status_url": "https://resim.test/status/req-1",
    "continue_url": "https://resim.test/c/0123456789abcdef0123456789abcdef.tfoo4k.0123456789abcdef",
}
ALL = [(kind, lang) for kind in SMS_KINDS for lang in LANGUAGES]


def test_every_notice_kind_has_a_text() -> None:
    assert set(SMS_KINDS) == REQUEST_NOTICES | LINE_NOTICES


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_one_line_naming_the_brand_and_the_masked_number_never_a_code(
    kind: str, language: str
) -> None:
    text = render_sms(kind, language=language, context=EVERYTHING).text
    assert "\n" not in text and text.startswith("Nordlys Mobil: ")
    assert "+45******23" in text
    assert OTP not in text and ACTIVATION.matching_id not in text and "LPA:" not in text
    assert len(text) <= 320  # two SMS parts at most (GSM-7); fine for UCS-2 scripts too
    if kind in REQUEST_NOTICES:
        assert "https://resim.test/not-me/tok3n" in text and "AB12CD34" in text
        assert EVERYTHING["continue_url"] in text  # the way back to the request (issue 12)
    else:
        assert "not-me" not in text


@pytest.mark.parametrize(("kind", "language"), [(k, x) for k, x in ALL if x != "en"])
def test_is_translated(kind: str, language: str) -> None:
    english = render_sms(kind, language="en", context=EVERYTHING).text
    assert render_sms(kind, language=language, context=EVERYTHING).text != english


def test_dates_are_in_the_brand_zone_and_language() -> None:
    text = render_sms("unlock_requested", language="da", context=EVERYTHING).text
    assert "2. marts 2026" in text and "10.00" in text


def test_french_keeps_its_no_break_spaces() -> None:
    text = render_sms("replacement_requested", language="fr", context=EVERYTHING).text
    assert "vous\u00a0?" in text


def test_unknown_kind_and_missing_keys_are_refused_without_values() -> None:
    with pytest.raises(InvalidInput):
        render_sms("one_time_code", language="en", context=EVERYTHING)
    with pytest.raises(InvalidInput, match="not_me_url") as caught:
        render_sms("replacement_requested", language="en", context={"brand_name": "B"})
    assert "Nordlys" not in str(caught.value)
