"""What the bench's mail sink tells the driver about a stored message.

:func:`read_delivery` reads a raw message's request, kind and, for a one-time
code mail, the code, without the e-mail parser for the messages resim writes
(``adapters/mail/message.py``: a base64 UTF-8 ``text/plain`` part, alone or
first in a ``multipart/alternative``). Parsing every message fully
(``email.parser`` with the default policy) cost this process about 10 ms of
CPU per code mail under cProfile, a third of the bench's own CPU, because
every resim mail is base64 and the older raw-byte reading could only see into
7bit, 8bit and quoted-printable bodies.

The quick reading finds the text the parser's ``get_body(("plain",))`` would
return and decodes it as ``get_content()`` does (transfer encoding, then the
charset with ``errors="replace"``); whenever a message is laid out otherwise
(another charset, a first part that is not ``text/plain``, nested multiparts,
an attachment, a missing boundary) it answers "not sure" and the full parser
decides, so what the driver sees does not depend on which path ran
(``tests/unit/test_bench_delivery.py`` compares them).
"""

from __future__ import annotations

import binascii
import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage

from resim.adapters.mail.capture import header_value

# The code stands alone on its line (one_time_code.txt.j2); the status URL in the
# same mail may hold six digits in a row too.
_CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)
_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_CHARSET = re.compile(r';\s*charset\s*=\s*"?([A-Za-z0-9_.:-]+)"?', re.IGNORECASE)
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii"}


@dataclass(frozen=True)
class Delivered:
    """One message the sink stored: which request and kind, when (monotonic)."""

    request_id: str
    kind: str
    at: float
    code: str | None = None  # the one-time code, for kind one_time_code


def read_delivery(content: bytes, at: float) -> Delivered:
    """Which request and kind a raw message is, and its one-time code (module doc)."""
    kind = header_value(content, "X-Resim-Kind") or ""
    code = None
    if kind == "one_time_code":
        text = plain_text(content)
        code = _code_in(text) if text is not None else _parsed_code(content)
    return Delivered(header_value(content, "X-Resim-Request") or "", kind, at, code)


def _code_in(text: str) -> str | None:
    found = _CODE.search(text)
    return found.group(1) if found else None


def plain_text(content: bytes) -> str | None:
    """The decoded text/plain body of a single-part message or of the first part of
    a ``multipart/alternative``; None when the layout is any other (ask the parser)."""
    head_end = content.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    ctype = header_value(content, "Content-Type") or "text/plain"
    if _is_attachment(content):
        return None
    if _mime_type(ctype) == "text/plain":
        cte = header_value(content, "Content-Transfer-Encoding")
        return _decode(content[head_end + 4 :], cte, ctype)
    if _mime_type(ctype) != "multipart/alternative":
        return None
    found = _BOUNDARY.search(ctype)
    if found is None:
        return None
    delimiter = b"\r\n--" + (found.group(1) or found.group(2)).encode("ascii", "replace")
    # The header block's last CRLF starts the first delimiter when there is no preamble.
    start = content.find(delimiter, head_end)
    if start < 0 or content[start + len(delimiter) : start + len(delimiter) + 2] != b"\r\n":
        return None
    part_start = start + len(delimiter) + 2
    end = content.find(delimiter, part_start)
    # The parser ends a part at a delimiter line only: "--b" then CRLF or "--".
    after = content[end + len(delimiter) : end + len(delimiter) + 2]
    if end < 0 or after not in (b"\r\n", b"--"):
        return None
    return _part_text(content[part_start:end])


def _part_text(part: bytes) -> str | None:
    head_end = part.find(b"\r\n\r\n")
    if head_end < 0 or part.startswith(b"\r\n"):
        return None  # a part without headers: rare enough to leave to the parser
    ctype = header_value(part, "Content-Type") or "text/plain"
    if _mime_type(ctype) != "text/plain" or _is_attachment(part):
        return None
    return _decode(part[head_end + 4 :], header_value(part, "Content-Transfer-Encoding"), ctype)


def _mime_type(ctype: str) -> str:
    return ctype.split(";", 1)[0].strip().lower()


def _is_attachment(head: bytes) -> bool:
    disposition = header_value(head, "Content-Disposition")
    return disposition is not None and disposition.lower().startswith("attachment")


def _decode(body: bytes, cte: str | None, ctype: str) -> str | None:
    found = _CHARSET.search(ctype)
    charset = _CHARSETS.get(found.group(1).lower() if found else "us-ascii")
    if charset is None:
        return None
    encoding = (cte or "7bit").strip().lower()
    try:
        if encoding == "base64":
            raw = binascii.a2b_base64(body)  # skips line ends, as the parser does
        elif encoding == "quoted-printable":
            raw = binascii.a2b_qp(body)
        elif encoding in ("7bit", "8bit"):
            raw = body
        else:
            return None
    except binascii.Error:
        return None  # the parser has its own idea of damaged base64
    return raw.decode(charset, "replace")


def _parsed_code(content: bytes) -> str | None:
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(content)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    return _code_in(str(text))
