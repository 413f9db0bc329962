"""Jinja2 for the web pages: one autoescaping environment per (gettext domain, locale).

The ``jinja2.ext.i18n`` extension is installed with the Babel translations of
the page's locale (:func:`resim.entrypoints.web.i18n.translations`), new-style
(``_("Hello %(name)s", name=...)`` escapes and substitutes). An environment is
built once per domain and locale and cached: installing translations on a
shared environment per request would race between threads, so each request
picks the environment of its locale instead; templates compile once each.

Filters, all in the environment's locale:

* ``when(value, zone)``: a timezone-aware datetime as a medium date and short
  time with the zone's name (``zone`` an IANA name; the page's ``zone`` if not
  given; UTC if missing or bad); in the console, in a span that never wraps;
* ``money(amount_minor, currency)``: minor units shown with Babel's currency
  format (``DKK 99,00`` / ``99,00 kr.``), the currency's own number of digits;
* ``number(value)``: a localised decimal number.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Mapping
from decimal import Decimal
from types import CodeType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale
from babel.dates import format_datetime, get_datetime_format
from babel.numbers import format_currency, format_decimal, get_currency_precision
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from resim.entrypoints.web.i18n import (
    LANG_COOKIE,
    LOCALES,
    NATIVE_NAMES,
    html_lang,
    translations,
)

# Pages never embed third-party content; inline SVG/PNG QR codes are data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_COMPILE_LOCK = threading.Lock()


class _SerialCompileEnvironment(Environment):
    """Compile one template at a time (CPython 3.11 can corrupt its AST recursion
    counter when threads compile at once; pages render on many threads)."""

    def _compile(self, source: str, filename: str) -> CodeType:
        with _COMPILE_LOCK:
            return super()._compile(source, filename)


def zone_of(name: object) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def format_when(value: dt.datetime | str | None, locale: str, zone: object = None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    tz = zone_of(zone)
    loc = Locale.parse(locale)
    pattern = (
        str(get_datetime_format("medium", locale=loc))
        .replace("{1}", loc.date_formats["medium"].pattern)
        .replace("{0}", loc.time_formats["short"].pattern + " z")
    )
    return format_datetime(value.astimezone(tz), pattern, tzinfo=tz, locale=loc)


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    digits = get_currency_precision(currency)
    amount = Decimal(amount_minor).scaleb(-digits)
    return format_currency(amount, currency, locale=Locale.parse(locale))


def format_number(value: int | float | Decimal, locale: str) -> str:
    return format_decimal(value, locale=Locale.parse(locale))


def _when_filter(locale: str, *, nowrap: bool) -> Any:
    """``when(value, zone)``; without ``zone`` the page's own ``zone`` (the console
    shows every time in the store's or brand's zone). ``nowrap``: a date and time
    never breaks across lines (a span of class ``when``)."""

    @pass_context
    def when(context: Context, value: Any, zone: object = None) -> str | Markup:
        text = format_when(value, locale, zone if zone is not None else context.get("zone"))
        if nowrap and text:
            return Markup('<span class="when">%s</span>') % text
        return text

    return when


@functools.lru_cache(maxsize=16)
def environment(domain: str, locale: str) -> Environment:
    """The cached environment of one gettext domain and locale."""
    if locale not in LOCALES:
        raise LookupError(f"unknown locale {locale!r}")
    env = _SerialCompileEnvironment(
        loader=PackageLoader("resim.entrypoints.web", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(domain, locale), newstyle=True
    )
    env.filters["when"] = _when_filter(locale, nowrap=domain == "console")
    env.filters["money"] = lambda amount, currency: format_money(int(amount), currency, locale)
    env.filters["number"] = lambda value: format_number(value, locale)
    env.globals.update(
        lang=locale,
        html_lang=html_lang(locale),
        locales=NATIVE_NAMES,
        html_lang_of=html_lang,
    )
    return env


def render(
    request: Request,
    *,
    domain: str,
    locale: str,
    template: str,
    context: Mapping[str, Any],
    status: int = 200,
    here: str | None = None,
) -> HTMLResponse:
    """Render a page; ``here`` is the GET address the language switcher returns to.

    When the visitor chose a language with ``?lang=`` the choice is kept in the
    ``lang`` cookie. Pages are ``no-store`` (some show secrets to one session).
    """
    values = {"here": here or request.url.path, **context}
    html = environment(domain, locale).get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Language"] = html_lang(locale)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.query_params.get("lang") == locale:
        remember_locale(request, response, locale)
    return response


def remember_locale(request: Request, response: Any, locale: str) -> None:
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
