"""The bytes an SMTP mailer sends for an :class:`OutgoingMail`, built once per mail.

:func:`wire_message` is what both mailers (``SmtpMailer``, ``AsyncSmtpMailer``)
send: the envelope (sender address, the one recipient) and the message as
CRLF bytes, handed to the SMTP client's ``sendmail`` so nothing parses the
headers back out of a message object.

ASCII addresses (every mail resim sends today) take a lean builder that
writes the bytes the standard library's ``email.mime`` classes under the
``compat32`` policy would write, byte for byte except the random boundary
(``tests/unit/test_mail_wire_equivalence.py`` holds the old builder as the
reference and compares): a UTF-8 text part, optionally a
``multipart/alternative`` with an HTML part after it, both base64 (RFC 2045),
non-ASCII header text as RFC 2047 encoded words. Building those objects and
running the generator was a fifth of the worker's CPU, mostly for work that
never changes: the generator compiles a regular expression per message to
check its fresh boundary against the body (a cache miss every time, since
the boundary is random), and the sender was parsed again for each mail. Here
only headers that need folding or encoding (long, non-ASCII, control
characters) go through :mod:`email.header`; the From line is built once per
(sender, brand name). Internationalised addresses (a non-ASCII recipient or
sender, RFC 6531/6532) take the ``EmailMessage`` path with raw UTF-8 headers
and ask the server for ``SMTPUTF8``, as before.

Checks (the same for both paths): exactly one recipient; a Message-ID without
whitespace, wrapped in angle brackets when it has none; no CR or LF in any
header value (header injection); ``mail.headers`` may add headers but not
replace the ones built here.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.utils
import functools
import random
import re
import sys
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage, Message

from resim.errors import InvalidInput
from resim.services.ports import OutgoingMail

RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "content-language",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "sender",
        "reply-to",
    }
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without ':' (RFC 5322 2.2)
_WIRE = email.policy.compat32.clone(linesep="\r\n")
_WIRE_UTF8 = email.policy.SMTPUTF8
# A header line the compat32 generator writes unchanged: printable ASCII, no
# trailing space (its folder drops one), within 78 characters with "Name: ".
_PLAIN_VALUE = re.compile(r"[ -~]*(?<! )")
_MAX_LINE = 78
_BASE64 = b"Content-Transfer-Encoding: base64\r\n"
_TEXT_PART = b'Content-Type: text/plain; charset="utf-8"\r\n' + _BASE64 + b"\r\n"
_HTML_PART = b'Content-Type: text/html; charset="utf-8"\r\n' + _BASE64 + b"\r\n"
_SINGLE_HEAD = b'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n' + _BASE64


@dataclass(frozen=True)
class WireMessage:
    """What goes over SMTP: ``MAIL FROM:<envelope_from>``, ``RCPT TO:<to>``, ``data``."""

    envelope_from: str
    to: str
    data: bytes
    smtputf8: bool = False  # the addresses need the server's SMTPUTF8 extension

    @property
    def mail_options(self) -> list[str]:
        return ["SMTPUTF8", "BODY=8BITMIME"] if self.smtputf8 else []


def wire_message(mail: OutgoingMail, *, sender: str, now: dt.datetime | None = None) -> WireMessage:
    """The envelope and bytes of ``mail`` from ``sender`` (see the module docstring)."""
    if mail.to.isascii() and sender.isascii():
        envelope_from, from_line = _sender(sender, _display_name(mail.sender_name))
        return WireMessage(envelope_from, mail.to, _lean_bytes(mail, from_line, now))
    envelope_from = email.utils.parseaddr(sender)[1] or sender
    data = build_message(mail, sender=sender, now=now).as_bytes(policy=_WIRE_UTF8)
    return WireMessage(envelope_from, mail.to, data, smtputf8=True)


def _lean_bytes(mail: OutgoingMail, from_line: str, now: dt.datetime | None) -> bytes:
    """What ``email.mime`` + ``compat32`` writes for ``mail`` (module docstring).

    The boundary has the generator's shape (15 ``=``, 19 digits, ``==``) and
    cannot occur in a base64 body, so no check against the body is needed.
    """
    message_id = _checked(mail)
    lines = [
        from_line,
        _header("To", mail.to),
        _header("Subject", mail.subject),
        _header("Date", _date(now)),
        _header("Message-ID", message_id),
        _header("Content-Language", mail.language.replace("_", "-")),
    ]
    if not any(name.lower() == "auto-submitted" for name in mail.headers):
        lines.append("Auto-Submitted: auto-generated\r\n")  # RFC 3834
    lines.extend(_header(name, value) for name, value in mail.headers.items())
    head = "".join(lines).encode("ascii")
    text = base64.encodebytes(mail.text.encode("utf-8")).replace(b"\n", b"\r\n")
    if mail.html is None:
        return b"".join((_SINGLE_HEAD, head, b"\r\n", text))
    html = base64.encodebytes(mail.html.encode("utf-8")).replace(b"\n", b"\r\n")
    boundary = b"===============%019d==" % random.randrange(sys.maxsize)
    return b"".join(
        (
            b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n' % boundary,
            b"MIME-Version: 1.0\r\n",
            head,
            b"\r\n--%s\r\n" % boundary,
            _TEXT_PART,
            text,
            b"\r\n--%s\r\n" % boundary,
            _HTML_PART,
            html,
            b"\r\n--%s--\r\n" % boundary,
        )
    )


def _header(name: str, value: str) -> str:
    """One header line as ``compat32`` folds it; only the rare cases pay for
    :mod:`email.header` (folding, RFC 2047 encoded words for non-ASCII text)."""
    if len(name) + 2 + len(value) <= _MAX_LINE and _PLAIN_VALUE.fullmatch(value):
        return f"{name}: {value}\r\n"
    if value.isascii():
        return _WIRE.fold(name, value)
    return _WIRE.fold(name, Header(value, "utf-8", header_name=name))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _sender(sender: str, name: str | None) -> tuple[str, str]:
    """The envelope address and the From line for ``sender`` with the brand's
    display ``name``: parsed and folded once per pair, not once per mail."""
    address = email.utils.parseaddr(sender)[1]
    named = name and address
    value = email.utils.formataddr((name, address), charset="utf-8") if named else sender
    return address or sender, _header("From", value)


def build_message(
    mail: OutgoingMail, *, sender: str, now: dt.datetime | None = None
) -> EmailMessage:
    """The message as an ``EmailMessage`` (the internationalised-address path).

    Same headers, checks and parts as the ``compat32`` path; ``as_bytes`` with
    the ``SMTPUTF8`` policy writes its headers as raw UTF-8.
    """
    message_id = _checked(mail)
    msg = EmailMessage()
    # Content first: set_content() drops every Content-* header already set.
    msg.set_content(mail.text, charset="utf-8")
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html", charset="utf-8")
    name = _display_name(mail.sender_name)
    address = email.utils.parseaddr(sender)[1]
    msg["From"] = email.utils.formataddr((name, address)) if name and address else sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = _date(now)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = mail.language.replace("_", "-")
    _extra_headers(msg, mail)
    return msg


def _checked(mail: OutgoingMail) -> str:
    """Refuse what would break the message; return the Message-ID in brackets."""
    if "@" not in mail.to or "," in mail.to:
        raise InvalidInput("a mail needs exactly one recipient address")
    message_id = mail.message_id.strip()
    if not message_id or any(c.isspace() for c in message_id):
        raise InvalidInput("message id must be non-empty and contain no whitespace")
    if not (message_id.startswith("<") and message_id.endswith(">")):
        if "<" in message_id or ">" in message_id:
            raise InvalidInput("message id must not contain angle brackets inside")
        message_id = f"<{message_id}>"
    values = (mail.to, mail.subject, mail.language, *mail.headers.values())
    if any("\r" in v or "\n" in v for v in values):
        raise InvalidInput("a mail header value contains a line break")
    for name in mail.headers:
        if name.lower() in RESERVED_HEADERS or not _HEADER_NAME.fullmatch(name):
            raise InvalidInput(f"header {name!r} cannot be set through OutgoingMail.headers")
    return message_id


def _display_name(name: str | None) -> str | None:
    """The brand's name for From, or None when it could break the header."""
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return None
    return name


def _date(now: dt.datetime | None) -> str:
    return email.utils.format_datetime((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))


def _extra_headers(msg: Message, mail: OutgoingMail) -> None:
    """``Auto-Submitted: auto-generated`` (RFC 3834) unless the mail says otherwise,
    then the mail's own headers (the same order as :func:`_lean_bytes`)."""
    if not any(name.lower() == "auto-submitted" for name in mail.headers):
        msg["Auto-Submitted"] = "auto-generated"
    for name, value in mail.headers.items():
        msg[name] = value
