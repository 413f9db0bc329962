"""SmsCapture: a loopback HTTP server that plays the SMS gateway and keeps every message.

Used by the demo (texts go nowhere real; ``/demo/sms`` shows them) and by the
tests (the real :class:`~resim.adapters.sms.http.HttpSmsGateway` talks to it
over HTTP). It speaks the gateway's wire format (see ``http.py``):

* ``POST /messages`` with JSON ``{"id", "to", "text", "sender"}``: 202 and the
  message is stored; the same ``id`` again: 200, nothing new stored.
* a wrong or missing bearer token (when ``token`` is set): 401.
* a body that is not such JSON: 400.
* a number listed in ``refuse`` gets the status given there (e.g. 400, 503).

Every accepted message becomes ``<directory>/<seq>-<safe-id>.json``, written
under a hidden temporary name, fsynced and renamed into place, so a reader in
any process (:func:`read_outbox`) sees whole messages or nothing. A restarted
capture continues after the highest sequence number and still knows the ids it
stored. The server never logs requests (texts carry "this was not me" links).
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from resim.services.ports import Clock

_FILE_NAME = re.compile(r"(\d{6,})-[^/\\]*\.json")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class CapturedSms:
    seq: int
    id: str
    to: str
    sender: str
    text: str
    received_at: dt.datetime
    path: Path


class SmsCapture:
    """A threaded HTTP server on ``host`` storing messages in ``directory``.

    ``port=0`` picks a free port when started; read :attr:`port` / :attr:`url`.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        refuse: Mapping[str, int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self._port = port
        self._token = token
        self._refuse = dict(refuse or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._ids: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The endpoint a gateway client posts to."""
        return f"http://{self.host}:{self._port}/messages"

    def start(self) -> SmsCapture:
        if self._server is not None:
            raise RuntimeError("SMS capture already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        stored = read_outbox(self.directory)
        self._seq = max((m.seq for m in stored), default=0)
        self._ids = {m.id for m in stored}
        server = ThreadingHTTPServer((self.host, self._port), _handler_for(self))
        server.daemon_threads = True
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SmsCapture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def messages(self) -> list[CapturedSms]:
        return read_outbox(self.directory)

    def authorised(self, header: str | None) -> bool:
        if not self._token:
            return True
        given = (header or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self._token.encode())

    def refusal_for(self, number: str) -> int | None:
        return self._refuse.get(number)

    def answer(
        self, path: str, length: int, authorization: str | None, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """The gateway's answer to ``POST path`` with a body of ``length`` bytes
        (``raw``, read only when the path and length are acceptable), storing the
        message when it is one (see the module docstring for the statuses)."""
        if path != "/messages" or length > MAX_BODY:
            return (404 if path != "/messages" else 413), {"error": "not accepted"}
        if not self.authorised(authorization):
            return 401, {"error": "unauthorised"}
        message = _parse(raw)
        if message is None:
            return 400, {"error": "expected JSON with id, to, text and sender"}
        refusal = self.refusal_for(message["to"])
        if refusal is not None:
            return refusal, {"error": "refused"}
        try:
            new = self.store(message)
        except OSError:
            return 503, {"error": "could not store the message"}
        return (202 if new else 200), {"id": message["id"], "duplicate": not new}

    def store(self, message: Mapping[str, str]) -> bool:
        """Store one message durably; False if its id was stored before."""
        now = self._clock.now() if self._clock is not None else dt.datetime.now(dt.UTC)
        with self._lock:
            if message["id"] in self._ids:
                return False
            self._seq += 1
            name = f"{self._seq:06d}-{_UNSAFE.sub('_', message['id'])[:80]}.json"
            record = {**message, "received_at": now.isoformat()}
            final = self.directory / name
            temporary = self.directory / f".{name}.part"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(record, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            self._ids.add(message["id"])
        return True


def read_outbox(directory: Path | str) -> list[CapturedSms]:
    """Every message stored in ``directory`` by an SmsCapture, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = sorted(
        (int(m.group(1)), path)
        for path in folder.iterdir()
        if (m := _FILE_NAME.fullmatch(path.name))
    )
    out = []
    for seq, path in found:
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append(
            CapturedSms(
                seq=seq,
                id=str(data["id"]),
                to=str(data["to"]),
                sender=str(data.get("sender", "")),
                text=str(data["text"]),
                received_at=dt.datetime.fromisoformat(str(data["received_at"])),
                path=path,
            )
        )
    return out


def render_outbox_html(messages: list[CapturedSms], *, title: str = "Captured SMS") -> str:
    """A self-contained HTML page listing ``messages``, newest first; all escaped."""
    items = []
    for m in reversed(messages):
        when = m.received_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        items.append(
            f'<article id="sms-{m.seq}" data-id="{html.escape(m.id)}">'
            f'<p class="meta">To {html.escape(m.to)} from {html.escape(m.sender)}'
            f" &middot; {when}</p><pre>{html.escape(m.text)}</pre></article>"
        )
    body = "\n".join(items) or '<p class="empty">No text messages yet.</p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "article{border:1px solid #ccc;border-radius:12px;padding:0 1rem;margin:1rem 0;"
        "background:#f6f8fa}pre{white-space:pre-wrap;font:inherit}"
        ".meta{color:#555;font-size:.9em}"
        f"</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )


def _parse(raw: bytes) -> dict[str, str] | None:
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    fields = ("id", "to", "text", "sender")
    if not all(isinstance(data.get(k), str) and data[k] for k in fields):
        return None
    return {k: data[k] for k in fields}


def _handler_for(capture: SmsCapture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/messages" or length > MAX_BODY:
                self._answer(*capture.answer(self.path, length, None, b""))
                return
            raw = self.rfile.read(length)
            self._answer(*capture.answer(self.path, length, self.headers.get("Authorization"), raw))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request logging: see the module doc

    return Handler
