"""The web pages' shared parts: language choice, localised formats, CSRF tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.requests import Request

from resim.entrypoints.web.csrf import CSRF_COOKIE, CsrfError, check_csrf, csrf_token
from resim.entrypoints.web.i18n import LOCALES, choose_locale, parse_accept_language
from resim.entrypoints.web.templating import environment, format_money, format_when

PEPPER = b"p" * 32


def request_with(cookies: dict[str, str] | None = None) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
    headers = [(b"cookie", header.encode())] if header else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


class TestTheLanguageIsChosen:
    def test_from_the_query_then_the_cookie_then_the_browser(self) -> None:
        assert choose_locale(query="fr", cookie="da", accept_language="it") == "fr"
        assert choose_locale(query=None, cookie="da", accept_language="it") == "da"
        assert choose_locale(accept_language="it-IT,it;q=0.9") == "it"
        assert choose_locale() == "en"

    def test_browser_preferences_follow_quality_and_skip_unknown_languages(self) -> None:
        assert parse_accept_language("de;q=0.9, nb;q=0.8, en;q=0.1") == ["de", "nb", "en"]
        assert choose_locale(accept_language="de-DE, nb;q=0.8, en;q=0.1") == "nb"
        assert choose_locale(accept_language="zh-CN,zh;q=0.9") == "zh_Hans"
        assert choose_locale(accept_language="no") == "nb"
        assert choose_locale(accept_language="sv, de") == "en"

    def test_an_unknown_query_or_cookie_is_ignored(self) -> None:
        assert choose_locale(query="klingon", cookie="xx", accept_language="da") == "da"


class TestLocalisedFormats:
    def test_money_uses_the_currency_and_locale(self) -> None:
        assert format_money(9900, "DKK", "da") == "99,00\xa0kr."
        assert format_money(1000, "EUR", "fr") == "10,00\xa0€"
        assert format_money(1000, "EUR", "en") == "€10.00"

    def test_times_are_shown_in_the_zone_given(self) -> None:
        at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
        assert "10.00" in format_when(at, "da", "Europe/Copenhagen")
        assert "2026年3月1日" in format_when(at, "zh_Hans", "Europe/Copenhagen")
        assert "09:00" in format_when(at, "fr", "no/such zone")

    def test_every_locale_has_an_environment_with_autoescape(self) -> None:
        for locale in LOCALES:
            env = environment("portal", locale)
            assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


class TestCsrf:
    def test_a_token_matches_only_the_cookie_it_was_made_for(self) -> None:
        token, nonce = csrf_token(request_with(), PEPPER)
        assert nonce is not None
        check_csrf(request_with({CSRF_COOKIE: nonce}), PEPPER, token)
        with pytest.raises(CsrfError):
            check_csrf(request_with({CSRF_COOKIE: nonce + "x"}), PEPPER, token)
        with pytest.raises(CsrfError):
            check_csrf(request_with({CSRF_COOKIE: nonce}), PEPPER, None)
        with pytest.raises(CsrfError):
            check_csrf(request_with({CSRF_COOKIE: nonce}), b"q" * 32, token)

    def test_an_existing_cookie_is_reused(self) -> None:
        token, nonce = csrf_token(request_with({CSRF_COOKIE: "a" * 32}), PEPPER)
        assert nonce is None
        check_csrf(request_with({CSRF_COOKIE: "a" * 32}), PEPPER, token)
