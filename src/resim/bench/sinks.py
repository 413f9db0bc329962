"""The bench's mail and SMS sinks: the capture classes' storage behind lean servers.

:class:`MailSink` stores every message exactly as
:class:`~resim.adapters.mail.capture.MailCapture` does (numbered ``.eml``
files, written under a hidden name, fsynced, renamed) and tells the driver
about it; :class:`SmsSink` answers and stores texts exactly as
:class:`~resim.adapters.sms.capture.SmsCapture` does (its :meth:`answer`).
Only the servers in front differ: aiosmtpd (a class built per SMTP command,
the handler's methods listed per connection) and ``http.server`` (a thread per
connection, headers through the e-mail parser) cost the bench's own process
several milliseconds of CPU per replacement. Here each sink is an asyncio
protocol on an event loop of its own thread, speaking just what resim's
clients send:

* SMTP (RFC 5321 subset): EHLO/HELO, MAIL, RCPT (the capture's ``refuse``
  list applies), DATA with dot-unstuffing, RSET, NOOP, VRFY, QUIT; several
  messages per connection; no STARTTLS, no AUTH;
* HTTP/1.1 with keep-alive and ``Content-Length`` bodies (no chunked uploads:
  411), ``POST /messages`` as the SMS gateway's wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

from resim.adapters.mail.capture import MailCapture, read_mailbox
from resim.adapters.sms.capture import MAX_BODY, SmsCapture, read_outbox
from resim.bench.delivery import Delivered, read_delivery
from resim.entrypoints.event_loop import new_event_loop

MAX_LINE = 4096  # an SMTP command or HTTP head line longer than this is refused
MAX_MESSAGE = 32 * 1024 * 1024


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, factory: Callable[[], Any]) -> Any:
        """Run the coroutine ``factory()`` makes on the loop; wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(factory(), self.loop)
        return future.result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class _Served:
    """A server of a sink: its loop thread and asyncio server."""

    def __init__(self, name: str, protocol: Callable[[], asyncio.Protocol], host: str) -> None:
        self.thread = _LoopThread(name)

        async def serve() -> asyncio.AbstractServer:
            return await self.thread.loop.create_server(protocol, host, 0)

        self.server: asyncio.AbstractServer = self.thread.call(serve)
        self.port = int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            await self.server.wait_closed()

        with contextlib.suppress(TimeoutError):
            self.thread.call(shut)
        self.thread.stop()


# ---------------------------------------------------------------- mail


class MailSink(MailCapture):
    """MailCapture's storage behind a lean SMTP server; reports each stored message
    to ``on_mail`` (called on the sink's thread)."""

    def __init__(self, directory: Path, on_mail: Callable[[Delivered], None]) -> None:
        super().__init__(directory)
        self._on_mail = on_mail
        self._served: _Served | None = None

    @property
    def port(self) -> int:
        return self._served.port if self._served is not None else self._port

    def start(self) -> None:
        if self._served is not None:
            raise RuntimeError("mail sink already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq = max((m.seq for m in read_mailbox(self.directory)), default=0)
        self._served = _Served("bench-mail-sink", lambda: _Smtp(self), self.host)

    def stop(self) -> None:
        if self._served is not None:
            self._served.close()
            self._served = None

    def accept(self, mail_from: str, recipients: list[str], content: bytes) -> str:
        """Store one message; the SMTP reply to its DATA."""
        try:
            self.store(mail_from, recipients, content)
        except OSError:
            return "451 4.3.0 Could not store the message, try again later"
        self._on_mail(read_delivery(content, time.monotonic()))
        return "250 Message accepted for delivery"


class _Smtp(asyncio.Protocol):
    def __init__(self, sink: MailSink) -> None:
        self._sink = sink
        self._buffer = b""
        self._in_data = False
        self._from: str | None = None
        self._to: list[str] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not derive from asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        self._reply("220 resim-bench ESMTP")

    def _reply(self, text: str) -> None:
        assert self._transport is not None
        self._transport.write(text.encode() + b"\r\n")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and not self._transport.is_closing():
            if self._in_data:
                if not self._take_message():
                    return
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._reply("500 5.5.2 Line too long")
                    self._transport.close()
                return
            line, self._buffer = self._buffer[:end].rstrip(b"\r"), self._buffer[end + 1 :]
            self._command(line.decode("utf-8", "replace"))

    def _take_message(self) -> bool:
        """Store the message when its end has arrived (True), else wait (False)."""
        buf = self._buffer
        if buf.startswith(b".\r\n"):
            content, rest = b"", buf[3:]
        else:
            end = buf.find(b"\r\n.\r\n")
            if end < 0:
                if len(buf) > MAX_MESSAGE:
                    self._reply("552 5.3.4 Message too big")
                    assert self._transport is not None
                    self._transport.close()
                return False
            content, rest = buf[: end + 2], buf[end + 5 :]
        if content.startswith(b".."):
            content = content[1:]
        content = content.replace(b"\r\n..", b"\r\n.")
        self._buffer, self._in_data = rest, False
        recipients, self._to = self._to, []
        self._reply(self._sink.accept(self._from or "", recipients, content))
        self._from = None
        return True

    def _command(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self._reply("250-resim-bench\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250 SMTPUTF8")
        elif verb == "HELO":
            self._reply("250 resim-bench")
        elif verb == "MAIL":
            address = _address(arg, "FROM:")
            if address is None:
                self._reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                return
            self._from, self._to = address, []
            self._reply("250 OK")
        elif verb == "RCPT":
            address = _address(arg, "TO:")
            if self._from is None:
                self._reply("503 5.5.1 Error: need MAIL command")
            elif not address:
                self._reply("501 5.5.4 Syntax: RCPT TO:<address>")
            elif (refusal := self._sink.refusal_for(address)) is not None:
                self._reply(refusal)
            else:
                self._to.append(address)
                self._reply("250 OK")
        elif verb == "DATA":
            if not self._to:
                self._reply("503 5.5.1 Error: need RCPT command")
                return
            self._in_data = True
            self._reply("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self._from, self._to = None, []
            self._reply("250 OK")
        elif verb == "NOOP":
            self._reply("250 OK")
        elif verb == "VRFY":
            self._reply("252 2.0.0 Cannot VRFY user, but will accept message")
        elif verb == "QUIT":
            self._reply("221 Bye")
            assert self._transport is not None
            self._transport.close()
        else:
            self._reply(f'500 Error: command "{verb[:20]}" not recognized')


def _address(arg: str, prefix: str) -> str | None:
    """The address of ``MAIL FROM:<a>`` / ``RCPT TO:<a>`` (parameters ignored)."""
    if arg[: len(prefix)].upper() != prefix:
        return None
    rest = arg[len(prefix) :].strip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end > 0 else None
    return rest.split(" ", 1)[0] if rest else None


# ---------------------------------------------------------------- SMS


class SmsSink(SmsCapture):
    """SmsCapture's answers and storage behind a lean HTTP/1.1 server on a free
    loopback port; counts the texts it stored."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, port=0)
        self.stored = 0
        self._count_lock = threading.Lock()
        self._served: _Served | None = None

    def start(self) -> SmsSink:
        if self._served is not None:
            raise RuntimeError("SMS sink already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        stored = read_outbox(self.directory)
        self._seq = max((m.seq for m in stored), default=0)
        self._ids = {m.id for m in stored}
        self._served = _Served("bench-sms-sink", lambda: _Http(self), self.host)
        self._port = self._served.port
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.close()
            self._served = None

    def store(self, message: Mapping[str, str]) -> bool:
        new = super().store(message)
        if new:
            with self._count_lock:
                self.stored += 1
        return new


class _Http(asyncio.Protocol):
    def __init__(self, sink: SmsSink) -> None:
        self._sink = sink
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not derive from asyncio's.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and not self._transport.is_closing():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE * 8:
                    self._send(431, {"error": "request head too large"}, close=True)
                return
            lines = self._buffer[:end].decode("latin-1").split("\r\n")
            method, path, *_ = ([*lines[0].split(" "), "", ""])[:3]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._send(411, {"error": "send a Content-Length"}, close=True)
                return
            length = int(headers.get("content-length") or 0)
            close = headers.get("connection", "").lower() == "close"
            if method != "POST":
                self._send(405, {"error": "not accepted"}, close=True)
                return
            if path != "/messages" or length > MAX_BODY:
                self._send(*self._sink.answer(path, length, None, b""), close=True)
                return
            if len(self._buffer) < end + 4 + length:
                return  # the body is still coming
            raw = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            status, body = self._sink.answer(path, length, headers.get("authorization"), raw)
            self._send(status, body, close=close)

    def _send(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
        assert self._transport is not None
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
        )
        self._transport.write(head.encode() + data)
        if close:
            self._transport.close()


_REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large",
    431: "Request Header Fields Too Large", 503: "Service Unavailable",
}  # fmt: skip
