"""MailCapture: a local SMTP server that keeps every message as a file.

Used by the demo (mail goes nowhere real; the web page shows the mailbox) and
by integration tests (a real SMTP conversation on loopback). Every accepted
message becomes ``<directory>/<seq>-<safe-message-id>.eml``: the raw message as
received, preceded by three ``X-Resim-*`` headers with the envelope sender,
envelope recipients and time of receipt. The file is written under a hidden
temporary name, fsynced and renamed into place, so a reader (this process or
another one, via :func:`read_mailbox`) sees whole messages or nothing, even
after a crash. The directory is the index: file names sort by sequence number,
and a restarted capture continues after the highest one. One capture process
writes to a directory at a time.

``refuse`` maps recipient addresses (case-insensitive) to an SMTP reply, such
as ``"550 5.1.1 No such user"``, to exercise a sender's error handling.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import html
import logging
import os
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from resim.services.ports import Clock

_FILE_NAME = re.compile(r"(\d{6,})-[^/\\]*\.eml")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")
_ENVELOPE_FROM = "X-Resim-Envelope-From"
_ENVELOPE_TO = "X-Resim-Envelope-To"
_RECEIVED_AT = "X-Resim-Received-At"


@dataclass(frozen=True)
class CapturedMail:
    """One received message as read back from its file."""

    seq: int
    to: str  # the To header
    recipients: tuple[str, ...]  # the envelope (RCPT TO) addresses
    subject: str
    message_id: str  # without angle brackets
    text: str  # the text/plain body ("" if none)
    html: str | None
    language: str | None  # Content-Language
    received_at: dt.datetime
    path: Path
    kind: str | None = None  # X-Resim-Kind: which customer message this is


class MailCapture:
    """An aiosmtpd server on ``host`` (loopback) storing messages in ``directory``.

    ``port=0`` picks a free port when the server starts; read it from
    :attr:`port`. Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        refuse: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self._port = port
        self._refuse = {k.casefold(): v for k, v in (refuse or {}).items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The listening port (the chosen one after start, when started with 0)."""
        if self._controller is not None:
            return int(self._controller.port)
        return self._port

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("mail capture already running")
        _keep_message_bodies_out_of_logs()
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = [m.seq for m in read_mailbox(self.directory)]
        self._seq = max(existing, default=0)
        controller = _Controller(
            _Handler(self), hostname=self.host, port=self._port, server_hostname="resim-capture"
        )
        controller.start()
        self._controller = controller
        self._port = int(controller.port)  # a restart reuses the same port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCapture:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def messages(self) -> list[CapturedMail]:
        """Every stored message, oldest first (read from the directory)."""
        return read_mailbox(self.directory)

    def refusal_for(self, address: str) -> str | None:
        return self._refuse.get(address.casefold())

    def store(self, mail_from: str, recipients: list[str], content: bytes) -> Path:
        """Write one message durably; called from the server thread per DATA."""
        now = self._clock.now() if self._clock is not None else dt.datetime.now(dt.UTC)
        # Only the Message-ID is needed (for the file name): read it from the raw
        # header block; parsing the whole MIME message cost about a millisecond.
        safe_id = _UNSAFE.sub("_", (header_value(content, "Message-ID") or "").strip("<> "))[:80]
        envelope = (
            f"{_ENVELOPE_FROM}: {_one_line(mail_from)}\r\n"
            f"{_ENVELOPE_TO}: {_one_line(', '.join(recipients))}\r\n"
            f"{_RECEIVED_AT}: {now.isoformat()}\r\n"
        ).encode()
        with self._lock:
            self._seq += 1
            name = f"{self._seq:06d}-{safe_id or 'no-id'}.eml"
        final = self.directory / name
        temporary = self.directory / f".{name}.part"
        with open(temporary, "wb") as handle:
            handle.write(envelope + content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.directory)
        return final


@functools.lru_cache(maxsize=64)
def _header_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(
        rb"^" + re.escape(name.encode("ascii")) + rb"[ \t]*:[ \t]*(.*(?:\n[ \t].*)*)",
        re.IGNORECASE | re.MULTILINE,
    )


def header_value(content: bytes, name: str) -> str | None:
    """The first ``name`` header of a raw message's top-level header block, unfolded
    and stripped, without parsing the message; None when absent.

    For plain ASCII headers such as ``Message-ID`` or resim's ``X-Resim-*``:
    RFC 2047 encoded words are returned as they are, not decoded.
    """
    end = content.find(b"\r\n\r\n")
    if end < 0:
        end = content.find(b"\n\n")
    block = content if end < 0 else content[: end + 2]
    found = _header_pattern(name).search(block)
    if found is None:
        return None
    raw = found.group(1).replace(b"\r\n", b"").replace(b"\n", b"").replace(b"\r", b"")
    return raw.decode("utf-8", "replace").strip()


def read_mailbox(directory: Path | str) -> list[CapturedMail]:
    """Every message stored in ``directory`` by a MailCapture, oldest first.

    Safe to call from another process while the capture runs: temporary files
    are hidden and ignored. A missing directory is an empty mailbox.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _FILE_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [_read_one(seq, path) for seq, path in sorted(found)]


def render_mailbox_html(messages: list[CapturedMail], *, title: str = "Captured mail") -> str:
    """A self-contained HTML page listing ``messages``, newest first.

    Everything is escaped. The HTML alternative of a message is shown in a
    sandboxed ``iframe`` (no scripts, no same-origin access), so a hostile
    message cannot act in the demo page.
    """
    items = []
    for m in reversed(messages):
        when = m.received_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        frame = ""
        if m.html is not None:
            frame = (
                '<details><summary>HTML version</summary><iframe sandbox="" '
                f'referrerpolicy="no-referrer" srcdoc="{html.escape(m.html, quote=True)}">'
                "</iframe></details>"
            )
        items.append(
            f'<article id="mail-{m.seq}" data-message-id="{html.escape(m.message_id)}">'
            f"<h2>{html.escape(m.subject) or '(no subject)'}</h2>"
            f'<p class="meta">To {html.escape(m.to)} &middot; {when}'
            f" &middot; {html.escape(m.language or '')}</p>"
            f"<pre>{html.escape(m.text)}</pre>{frame}</article>"
        )
    body = "\n".join(items) or '<p class="empty">No mail yet.</p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}"
        "article{border:1px solid #ccc;border-radius:6px;padding:0 1rem 1rem;margin:1rem 0}"
        "pre{white-space:pre-wrap;font:inherit}.meta{color:#555;font-size:.9em}"
        "iframe{width:100%;height:28rem;border:1px solid #ddd}"
        f"</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )


# ---------------------------------------------------------------- internals


def _read_one(seq: int, path: Path) -> CapturedMail:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    recipients = tuple(r.strip() for r in str(msg.get(_ENVELOPE_TO, "")).split(",") if r.strip())
    try:
        received_at = dt.datetime.fromisoformat(str(msg[_RECEIVED_AT]))
    except (TypeError, ValueError):
        received_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return CapturedMail(
        seq=seq,
        to=str(msg.get("To", "")),
        recipients=recipients,
        subject=str(msg.get("Subject", "")),
        message_id=str(msg.get("Message-ID", "")).strip().strip("<>"),
        text=_content(text_part) or "",
        html=_content(html_part),
        language=str(msg["Content-Language"]) if msg["Content-Language"] else None,
        received_at=received_at,
        path=path,
        kind=str(msg["X-Resim-Kind"]) if msg["X-Resim-Kind"] else None,
    )


def _content(part: Any) -> str | None:
    if part is None:
        return None
    value = part.get_content()
    text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # SMTP line ends are CRLF


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened on Windows.
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _NoMessageBodies(logging.Filter):
    """Drops aiosmtpd's per-line DEBUG records of DATA: bodies hold one-time codes (SEC-11)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("DATA readline")


def _keep_message_bodies_out_of_logs() -> None:
    logger = logging.getLogger("mail.log")  # aiosmtpd's logger
    if not any(isinstance(f, _NoMessageBodies) for f in logger.filters):
        logger.addFilter(_NoMessageBodies())


class _Handler:
    """aiosmtpd hooks; they run on the capture's event-loop thread."""

    def __init__(self, capture: MailCapture) -> None:
        self._capture = capture

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._capture.refusal_for(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or b""
        try:
            self._capture.store(str(envelope.mail_from), list(envelope.rcpt_tos), content)
        except OSError:
            # Disk full or similar: tell the sender to try again later (a 5xx,
            # aiosmtpd's default for an exception, would make it give up).
            return "451 4.3.0 Could not store the message, try again later"
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded controller, bound to a socket we open so port 0 works."""

    def _create_server(self) -> Any:
        sock = socket.create_server((self.hostname, self.port))
        self.port = sock.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)
