"""SinkCapture: a loopback HTTP server that plays a relying party's notification sink.

Used by the tests and the demo. It accepts ``POST`` on any path, records every
request it receives (before answering, so a request whose client died while
waiting for the answer is still seen, as a real sink would have seen it) and
answers 204, unless told otherwise:

* ``token``: a request without ``Authorization: Bearer <token>`` gets 401;
* ``answers``: the next requests get these statuses, in order (then 204);
* ``delay_s``: wait this long before answering (a slow sink);
* a body that is not a JSON object gets 400.

:meth:`SinkCapture.received` lists every request; :meth:`delivered_ids` the
CloudEvents ids it answered with 2xx. Nothing is logged (requests carry the
relying party's bearer token).
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class ReceivedEvent:
    path: str
    content_type: str
    authorization: str | None
    correlator: str | None
    body: dict[str, Any] | None
    status: int  # what the capture answered
    received_at: dt.datetime

    @property
    def event_id(self) -> str | None:
        value = (self.body or {}).get("id")
        return value if isinstance(value, str) else None


class SinkCapture:
    """A threaded HTTP server on ``host``; ``port=0`` picks a free port (read :attr:`url`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        delay_s: float = 0.0,
        answers: Iterable[int] = (),
    ) -> None:
        self.host = host
        self._port = port
        self._token = token
        self.delay_s = delay_s
        self._answers = list(answers)
        self._lock = threading.Lock()
        self._received: list[ReceivedEvent] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """A sink URL to subscribe with."""
        return f"http://{self.host}:{self._port}/sink"

    def start(self) -> SinkCapture:
        if self._server is not None:
            raise RuntimeError("sink capture already running")
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

    def __enter__(self) -> SinkCapture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def answer_next(self, *statuses: int) -> None:
        with self._lock:
            self._answers.extend(statuses)

    def received(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._received)

    def delivered_ids(self) -> list[str]:
        """CloudEvents ids answered with 2xx, in arrival order (repeats included)."""
        return [
            r.event_id for r in self.received() if 200 <= r.status < 300 and r.event_id is not None
        ]

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedEvent]:
        """Wait until ``count`` requests were answered with 2xx; return them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.received() if 200 <= r.status < 300]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def _decide(self, authorization: str | None, body: dict[str, Any] | None) -> int:
        if self._token:
            given = (authorization or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self._token.encode()):
                return 401
        if body is None:
            return 400
        with self._lock:
            return self._answers.pop(0) if self._answers else 204

    def _record(self, event: ReceivedEvent) -> None:
        with self._lock:
            self._received.append(event)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _handler_for(capture: SinkCapture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413)
                return
            body = _parse(self.rfile.read(length))
            authorization = self.headers.get("Authorization")
            status = capture._decide(authorization, body)
            capture._record(
                ReceivedEvent(
                    path=self.path,
                    content_type=self.headers.get("Content-Type", ""),
                    authorization=authorization,
                    correlator=self.headers.get("x-correlator"),
                    body=body,
                    status=status,
                    received_at=dt.datetime.now(dt.UTC),
                )
            )
            if capture.delay_s:
                time.sleep(capture.delay_s)
            self._answer(status)

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away while we were slow: nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request logging: requests carry bearer tokens

    return Handler


def render_events_html(received: list[ReceivedEvent], *, title: str = "Received events") -> str:
    """A self-contained HTML page of ``received``, newest first; all escaped.

    The Authorization header is shown masked (the demo's sink token is a secret too).
    """
    items = []
    for r in reversed(received):
        when = r.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        auth = "Bearer ****" if r.authorization else "none"
        body = json.dumps(r.body, indent=2, ensure_ascii=False) if r.body else "(not JSON)"
        items.append(
            f'<article data-id="{html.escape(r.event_id or "")}"><p class="meta">'
            f"{when} &middot; answered {r.status} &middot; {html.escape(r.content_type)}"
            f" &middot; Authorization {auth}</p><pre>{html.escape(body)}</pre></article>"
        )
    content = "\n".join(items) or '<p class="empty">No events yet.</p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
        "article{border:1px solid #ccc;border-radius:12px;padding:0 1rem;margin:1rem 0;"
        "background:#f6f8fa}pre{white-space:pre-wrap}.meta{color:#555;font-size:.9em}"
        f"</style></head><body><h1>{html.escape(title)}</h1>\n{content}\n</body></html>"
    )
