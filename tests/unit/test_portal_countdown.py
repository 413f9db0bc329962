"""Issue 12, finding 8: the portal says how many attempts are left and counts down, in words.

No clock time ("10:34 +0100") for a wait: a countdown rounded up (never
earlier than the server allows), in the page's language with its plural forms.
"""

from __future__ import annotations

import datetime as dt

import pytest

from resim.entrypoints.web.portal_text import BY_CODE, error_for
from resim.entrypoints.web.templating import environment
from resim.errors import TooManyAttempts, VerificationFailed

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def never(_: dt.datetime) -> str:
    raise AssertionError("a clock time was asked for")


def countdown(lang: str, seconds: int) -> str:
    template = '{% from "_countdown.html.j2" import countdown %}{{ countdown(s) }}'
    html = environment("portal", lang).from_string(template).render(s=seconds)
    return html.rsplit(">", 2)[-2].removesuffix("</p").strip()


class TestErrors:
    def test_a_wrong_answer_carries_the_honest_count_and_the_wait(self) -> None:
        err = error_for(
            VerificationFailed("x", code="VERIFICATION_FAILED"),
            now=NOW,
            when=never,
            attempts_left=2,
            wait_seconds=30,
        )
        assert (err.msgid, err.left, err.wait_seconds) == ("That did not match.", 2, 30)

    def test_without_a_count_nothing_is_promised(self) -> None:
        err = error_for(VerificationFailed("x", code="VERIFICATION_FAILED"), now=NOW, when=never)
        assert err.left is None and err.wait_seconds is None

    def test_the_last_attempt_used_says_what_the_block_is(self) -> None:
        err = error_for(
            VerificationFailed("x", code="VERIFICATION_FAILED"),
            now=NOW,
            when=never,
            attempts_left=0,
        )
        assert err.msgid == BY_CODE["ACCOUNT_FROZEN"]

    def test_a_back_off_counts_down_rounded_up(self) -> None:
        err = error_for(
            TooManyAttempts("x", code="BACKING_OFF", retry_after=239.2), now=NOW, when=never
        )
        assert err.wait_seconds == 240 and "%(time)s" not in err.msgid


@pytest.mark.parametrize(
    ("lang", "seconds", "text"),
    [
        ("en", 240, "You can try again in 4 minutes."),
        ("en", 181, "You can try again in 4 minutes."),  # rounded up
        ("en", 60, "You can try again in 1 minute."),
        ("en", 1, "You can try again in 1 second."),
        ("it", 45, "Puoi riprovare tra 45 secondi."),
        ("fr", 60, "Vous pourrez réessayer dans 1 minute."),
        ("da", 120, "Du kan prøve igen om 2 minutter."),
        ("zh_Hans", 240, "您可以在 4 分钟后重试。"),
    ],
)
def test_the_countdown_reads_well_without_javascript(lang: str, seconds: int, text: str) -> None:
    assert countdown(lang, seconds) == text
