"""Customer mail and SMS, rendered from Jinja2 templates in the customer's language.

SMS texts are ``sms_<kind>.txt.j2`` in the same directory (:func:`render_sms`,
:data:`SMS_KINDS`); staff mail is ``staff_<kind>.*.j2``, English only.

Templates live in ``templates/`` next to this module: ``<kind>.txt.j2`` (plain
text body, plus a ``subject`` block) and ``<kind>.html.j2`` (HTML body,
autoescaped), both extending ``layout.*.j2`` for greeting and footer. Text is
marked with ``_()`` / ``ngettext()`` (the ``jinja2.ext.i18n`` extension,
new-style gettext) and translated through the catalogs in :mod:`resim.locale`.

Security rules enforced here, not left to template authors (SEC-04, SEC-10):

* Each kind declares the context keys it may see (:data:`MAIL_KINDS`). Other
  keys are dropped before rendering, so a caller passing an activation code or
  a one-time code to the wrong kind cannot make it appear. Only
  ``one_time_code`` and ``loss_code`` receive ``code``.
* URLs must be ``https://`` (or ``http://`` for local development).
* No template ever receives an activation code; ``esim_ready`` links to the
  request's continue page instead, where the customer confirms who they are
  (again) with a fresh code before the page shows the QR code.

Values the customer reads in their language are passed as codes and
translated in the template layer: ``reason`` is a replacement reason code
(``device_change``), labelled by ``templates/reasons.j2``.

Robustness over strictness where a notice must still go out: an unknown
language renders in English, an unknown ``timezone`` in UTC. Missing or
mistyped keys raise :class:`InvalidInput` naming the keys, never their values.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, get_datetime_format
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from resim.adapters.mail.i18n import SharedCode, install_direct_gettext
from resim.errors import InvalidInput
from resim.locale import LANGUAGES, normalize_language, translations


class _Url(str):
    """Marker type for context keys that hold a link."""


class _OptionalUrl(_Url):
    """A link the mail shows when the context has one (absent or None: left out)."""


class _OptionalText(str):
    """Text the message shows when the context has it (absent or None: "")."""


# The brand's customer service (policy ``identity``), named wherever a message
# says "contact us"; a brand without contact points leaves them out.
_CONTACT: dict[str, type] = {"brand_phone": _OptionalText, "brand_web": _OptionalUrl}


_PEOPLE: dict[str, type] = {
    "customer_name": str,
    "brand_name": str,
    "msisdn_masked": str,
    **_CONTACT,
}
_REQUEST: dict[str, type] = {**_PEOPLE, "request_ref": str}

# Every notice about a request carries the "this was not me" link (SEC-04) and the
# signed "continue your request" link (services.continue_link: a fresh verification).
_NOTICE: dict[str, type] = {**_REQUEST, "not_me_url": _Url, "continue_url": _Url}

MAIL_KINDS: Mapping[str, Mapping[str, type]] = {
    "replacement_requested": {**_NOTICE, "reason": str},
    "one_time_code": {
        "customer_name": str,
        "brand_name": str,
        **_CONTACT,
        "code": str,
        "ttl_minutes": int,
        "request_ref": str,
        # The signed link to the request, where the code is entered: a caller who
        # opened the request anonymously is told nothing else (issue 13, finding
        # 15). None for a line's unlock code.
        "continue_url": _OptionalUrl,
    },
    "esim_ready": {**_NOTICE, "expires_at": dt.datetime},
    # The way back to an open request, asked for on the portal's start page
    # (services.resume): the signed link only, never a code.
    "continue_request": _NOTICE,
    "card_dispatched": _NOTICE,
    "replacement_completed": {
        **_PEOPLE,
        "completed_at": dt.datetime,
        "not_me_url": _Url,
        "continue_url": _Url,
    },
    "replacement_approved": _NOTICE,
    # "yes" while a loss report keeps the old SIM blocked after the request ended.
    "replacement_cancelled": {**_NOTICE, "sim_blocked": _OptionalText},
    "replacement_expired": {**_NOTICE, "sim_blocked": _OptionalText},
    "replacement_rejected": {**_NOTICE, "sim_blocked": _OptionalText},
    "replacement_failed": {**_NOTICE, "sim_blocked": _OptionalText},
    "held_for_review": _NOTICE,
    "request_taken_over": _NOTICE,
    # SIM-change lock of a line (SEC-05): about the line, not a request.
    "lock_on": _PEOPLE,
    "unlock_requested": {**_PEOPLE, "effective_at": dt.datetime},
    "unlock_effective": _PEOPLE,
    # Loss reports (resim.domain.loss): about the line. Only loss_code (and
    # one_time_code) receives ``code``; ``purpose`` is "report" or "lift".
    "loss_code": {
        **_PEOPLE,
        "code": str,
        "ttl_minutes": int,
        "purpose": str,
        "page_url": _Url,
    },
    "loss_reported": _PEOPLE,
    "loss_lifted": _PEOPLE,
    # Issue 12: a reviewer lifted the freeze on the account (told on the line).
    "account_unfrozen": _PEOPLE,
}
"""Every kind of customer mail and the context keys (with types) its templates receive."""

STAFF_MAIL_KINDS: Mapping[str, Mapping[str, type]] = {
    "reviewer_alert": {
        "staff_name": str,
        "alert_kind": str,
        "alert_summary": str,
        "subject_type": str,
        "subject_id": str,
        "raised_at": dt.datetime,
        "console_url": _Url,
    },
}
"""Mail to staff: English only (``staff_*`` templates, no layout for customers)."""

SMS_KINDS: Mapping[str, Mapping[str, type]] = {
    **{
        kind: {
            "brand_name": str,
            "brand_phone": _OptionalText,
            "msisdn_masked": str,
            "request_ref": str,
            "not_me_url": _Url,
            "continue_url": _Url,
        }
        for kind in (
            "replacement_requested",
            "held_for_review",
            "replacement_approved",
            "replacement_rejected",
            "replacement_cancelled",
            "replacement_expired",
            "esim_ready",
            "card_dispatched",
            "replacement_completed",
            "replacement_failed",
            "request_taken_over",
        )
    },
    "account_unfrozen": {"brand_name": str, "brand_phone": _OptionalText, "msisdn_masked": str},
    "lock_on": {"brand_name": str, "brand_phone": _OptionalText, "msisdn_masked": str},
    "unlock_requested": {
        "brand_name": str,
        "brand_phone": _OptionalText,
        "msisdn_masked": str,
        "effective_at": dt.datetime,
    },
    "unlock_effective": {"brand_name": str, "brand_phone": _OptionalText, "msisdn_masked": str},
    "loss_reported": {"brand_name": str, "brand_phone": _OptionalText, "msisdn_masked": str},
    "loss_lifted": {"brand_name": str, "brand_phone": _OptionalText, "msisdn_masked": str},
}
"""Every kind of customer SMS (``sms_<kind>.txt.j2``) and its context keys. No kind
receives a one-time code or an activation code: a text may be read by whoever
holds the phone."""

OPTIONAL_KEYS = ("timezone",)  # IANA zone name for dates; default UTC
_NULLABLE = {"customer_name"}  # a customer without a name on file gets "Hello,"
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    language: str  # the catalog actually used (after fallback); use for Content-Language


def render_mail(kind: str, *, language: str, context: Mapping[str, object]) -> RenderedMail:
    """Render one mail of ``kind`` in ``language`` (falls back to English).

    ``context`` must hold the keys :data:`MAIL_KINDS` lists for the kind, may
    hold ``timezone``, and may hold other keys, which are ignored. Datetimes
    must be timezone-aware; they are shown in the mail's language and zone.
    Staff kinds (:data:`STAFF_MAIL_KINDS`) render in English whatever is asked.
    """
    schema = MAIL_KINDS.get(kind)
    template = kind
    if schema is None and kind in STAFF_MAIL_KINDS:
        schema, template, language = STAFF_MAIL_KINDS[kind], f"staff_{kind}", "en"
    if schema is None:
        raise InvalidInput(f"unknown mail kind {kind!r}")
    context = _upgrade_legacy_keys(context)
    lang = normalize_language(language)
    zone = _zone(context.get("timezone"))
    values = _checked_values(kind, schema, context, lang, zone)
    values["html_lang"] = lang.replace("_", "-")
    env = _environment(lang)
    text_template = env.get_template(f"{template}.txt.j2")
    subject_block = text_template.blocks["subject"](text_template.new_context(values))
    values["subject"] = " ".join("".join(subject_block).split())
    return RenderedMail(
        subject=values["subject"],
        text=_tidy_text(text_template.render(values)),
        html=env.get_template(f"{template}.html.j2").render(values),
        language=lang,
    )


@dataclass(frozen=True)
class RenderedSms:
    text: str
    language: str


def render_sms(kind: str, *, language: str, context: Mapping[str, object]) -> RenderedSms:
    """Render the text message of ``kind`` (:data:`SMS_KINDS`) in ``language``.

    Same rules as :func:`render_mail`: undeclared context keys are dropped,
    unknown languages and zones fall back. The result is one line of text.
    """
    schema = SMS_KINDS.get(kind)
    if schema is None:
        raise InvalidInput(f"unknown SMS kind {kind!r}")
    lang = normalize_language(language)
    context = _upgrade_legacy_keys(context)
    values = _checked_values(kind, schema, context, lang, _zone(context.get("timezone")))
    text = _environment(lang).get_template(f"sms_{kind}.txt.j2").render(values)
    # One line; only ASCII whitespace folds (French keeps its no-break spaces).
    return RenderedSms(text=re.sub(r"[ \t\r\n]+", " ", text).strip(), language=lang)


def _checked_values(
    kind: str, schema: Mapping[str, type], context: Mapping[str, object], lang: str, zone: ZoneInfo
) -> dict[str, Any]:
    missing = sorted(
        k
        for k, t in schema.items()
        if k not in context and t is not _OptionalUrl and t is not _OptionalText
    )
    if missing:
        raise InvalidInput(f"mail {kind!r} needs context keys: {', '.join(missing)}")
    values: dict[str, Any] = {}
    for key, kind_type in schema.items():
        value = context.get(key)
        if value is None and (
            key in _NULLABLE or kind_type is _OptionalUrl or kind_type is _OptionalText
        ):
            values[key] = ""
        elif isinstance(kind_type, type) and issubclass(kind_type, _Url):
            if not isinstance(value, str) or not _URL.fullmatch(value):
                raise InvalidInput(f"mail {kind!r}: {key} must be an http(s) URL")
            values[key] = value
        elif kind_type is dt.datetime:
            if not isinstance(value, dt.datetime) or value.tzinfo is None:
                raise InvalidInput(f"mail {kind!r}: {key} must be a timezone-aware datetime")
            values[key] = _format_when(value, lang, zone)
        elif kind_type is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"mail {kind!r}: {key} must be a positive integer")
            values[key] = value
        else:
            if not isinstance(value, str):
                raise InvalidInput(f"mail {kind!r}: {key} must be text")
            values[key] = value
    return values


def _upgrade_legacy_keys(context: Mapping[str, object]) -> Mapping[str, object]:
    """Read contexts written by older releases, so jobs queued before an upgrade
    still render: ``reason_label`` ("device change", the English enum value)
    became the code ``reason`` ("device_change"); a request's message without
    the signed ``continue_url`` links to its status page (``status_url``) instead."""
    label = context.get("reason_label")
    if "reason" not in context and isinstance(label, str):
        context = {**context, "reason": label.strip().replace(" ", "_")}
    if "continue_url" not in context and isinstance(context.get("status_url"), str):
        context = {**context, "continue_url": context["status_url"]}
    return context


def _zone(name: object) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a bad zone on file must not stop a security notice
    return ZoneInfo("UTC")


def _format_when(value: dt.datetime, lang: str, zone: ZoneInfo) -> str:
    """Long date, short time and zone, in the locale's own order and punctuation."""
    locale = Locale.parse(lang)
    pattern = (
        str(get_datetime_format("long", locale=locale))
        .replace("{1}", locale.date_formats["long"].pattern)
        .replace("{0}", locale.time_formats["short"].pattern + " z")
    )
    return format_datetime(value.astimezone(zone), pattern, tzinfo=zone, locale=locale)


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline.

    The signature separator keeps its trailing space ("-- ", RFC 3676 4.3) so
    mail clients can fold the footer away.
    """
    lines = [line.rstrip() for line in text.strip().splitlines()]
    lines = ["-- " if line == "--" else line for line in lines]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


_COMPILE_LOCK = threading.Lock()
_SHARED_CODE = SharedCode()  # every _environment() below is built alike


class _SerialCompileEnvironment(Environment):
    """Compiles template code one thread at a time.

    CPython 3.11 (seen on 3.11.7) can corrupt its AST recursion counter when
    several threads call ``compile()`` at once ("SystemError: AST constructor
    recursion depth mismatch"); mail jobs render on many worker threads.
    """

    def _compile(self, source: str, filename: str) -> CodeType:
        with _COMPILE_LOCK:
            return super()._compile(source, filename)


def preload_templates() -> None:
    """Compile every template in every language now (call before threads start)."""
    for lang in LANGUAGES:
        env = _environment(lang)
        for name in env.list_templates(extensions=["j2"]):
            env.get_template(name)


@functools.lru_cache(maxsize=8)
def _environment(lang: str) -> Environment:
    """One Jinja environment per language (templates compile once per process)."""
    env = _SerialCompileEnvironment(
        loader=PackageLoader("resim.adapters.mail", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Package data that never changes while the process runs: no stat() of
        # the template file on every get_template (one per mail and part).
        auto_reload=False,
        bytecode_cache=_SHARED_CODE,
    )
    catalog = translations(lang)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    install_direct_gettext(env, catalog.gettext, catalog.ngettext)
    return env
