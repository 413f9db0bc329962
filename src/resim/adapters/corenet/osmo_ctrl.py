"""A small client for the Osmocom CTRL interface (TCP, IPA framing).

Wire format, as osmo-hlr 1.5 speaks it (learnt against the running daemon):
every message is an IPA frame ``len:u16be, proto:u8 = 0xEE (OSMO),
ext:u8 = 0x00 (CTRL)`` followed by ASCII text; ``len`` counts the ext byte
and the text. Requests and replies:

    GET <id> <var>                ->  GET_REPLY <id> <var> <value>
    SET <id> <var> <value>        ->  SET_REPLY <id> <var> <value>
                                  ->  ERROR <id> <reason>
    (unsolicited)                     TRAP <var> <value>

``<value>`` may contain spaces and newlines (``info`` answers a
tab-separated table). Traps and replies to other ids are skipped.

Errors: the peer's ``ERROR`` raises :class:`CtrlError` (a permanent
``CORE_REJECTED``, or ``CORE_UNKNOWN_IMSI`` for "No such subscriber.");
a broken or silent connection raises a retryable ``CORE_UNAVAILABLE`` and
the next call reconnects; a frame we cannot parse raises ``CORE_PROTOCOL_ERROR``.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

from resim.adapters.corenet import rules
from resim.errors import ExternalError

IPA_PROTO_OSMO = 0xEE
IPA_EXT_CTRL = 0x00
_HEADER = struct.Struct(">HB")
NO_SUCH_SUBSCRIBER = "No such subscriber."


class CtrlError(ExternalError):
    """The HLR answered ``ERROR <id> <reason>``."""

    def __init__(self, reason: str, *, variable: str) -> None:
        code = rules.UNKNOWN_IMSI if reason == NO_SUCH_SUBSCRIBER else rules.REJECTED
        super().__init__(f"osmo-hlr refused {variable}: {reason}", retryable=False, code=code)
        self.reason = reason
        self.variable = variable


@dataclass(frozen=True)
class CtrlMessage:
    kind: str  # GET_REPLY, SET_REPLY, ERROR, TRAP, GET, SET
    id: str | None
    variable: str | None
    value: str


def encode_frame(text: str) -> bytes:
    body = bytes([IPA_EXT_CTRL]) + text.encode("ascii")
    if len(body) > 0xFFFF:
        raise ValueError("CTRL message too long for one IPA frame")
    return _HEADER.pack(len(body), IPA_PROTO_OSMO) + body


def parse_message(text: str) -> CtrlMessage:
    """Parse the text of one CTRL frame (after the ext byte)."""
    kind, _, rest = text.partition(" ")
    if kind in ("GET_REPLY", "SET_REPLY", "SET"):
        parts = rest.split(" ", 2)
        if len(parts) < 2:
            raise _protocol(f"short {kind}")
        value = parts[2] if len(parts) == 3 else ""
        return CtrlMessage(kind, parts[0], parts[1], value)
    if kind == "GET":
        msg_id, _, var = rest.partition(" ")
        return CtrlMessage(kind, msg_id, var, "")
    if kind == "ERROR":
        msg_id, _, reason = rest.partition(" ")
        return CtrlMessage(kind, msg_id, None, reason)
    if kind == "TRAP":
        var, _, value = rest.partition(" ")
        return CtrlMessage(kind, None, var, value)
    raise _protocol(f"unknown CTRL message kind {kind[:20]!r}")


def parse_table(value: str) -> dict[str, str]:
    """``info`` answers: lines of ``key<TAB>value`` (the first line is empty)."""
    table: dict[str, str] = {}
    for line in value.splitlines():
        key, sep, val = line.partition("\t")
        if sep:
            table[key.strip()] = val.strip()
    return table


def _protocol(what: str) -> ExternalError:
    return ExternalError(f"osmo-hlr CTRL: {what}", retryable=False, code=rules.PROTOCOL_ERROR)


class CtrlClient:
    """One TCP connection, opened lazily, one request at a time (thread-safe)."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self._addr = (host, port)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._lock = threading.Lock()

    def get(self, variable: str) -> str:
        return self._request("GET", variable, None)

    def set(self, variable: str, value: str) -> str:
        return self._request("SET", variable, value)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _request(self, kind: str, variable: str, value: str | None) -> str:
        for part in (variable, value or ""):
            if any(c.isspace() for c in part) or not part.isascii():
                raise ValueError("CTRL variables and values are ASCII without spaces")
        with self._lock:
            self._next_id = self._next_id % 1_000_000 + 1
            msg_id = str(self._next_id)
            text = f"{kind} {msg_id} {variable}" + ("" if value is None else f" {value}")
            try:
                sock = self._connect()
                sock.sendall(encode_frame(text))
                reply = self._read(sock)
                while reply.kind == "TRAP" or reply.id != msg_id:
                    reply = self._read(sock)  # a trap, or a late answer to a timed-out request
            except OSError as exc:
                self._drop()
                where = f"{self._addr[0]}:{self._addr[1]}"
                raise rules.unavailable(f"osmo-hlr CTRL {where}: {exc}") from exc
            except ExternalError:
                self._drop()
                raise
            if reply.kind == "ERROR":
                raise CtrlError(reply.value, variable=variable)
            if reply.kind not in ("GET_REPLY", "SET_REPLY"):
                self._drop()
                raise _protocol(f"unexpected {reply.kind}")
            return reply.value

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self._addr, timeout=self._timeout)
        return self._sock

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _read(self, sock: socket.socket) -> CtrlMessage:
        length, proto = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
        body = _recv_exactly(sock, length)
        if proto != IPA_PROTO_OSMO or not body or body[0] != IPA_EXT_CTRL:
            # On a CTRL port anything but OSMO/CTRL frames means we are out of step.
            raise _protocol(f"unexpected IPA frame proto={proto:#x}")
        try:
            return parse_message(body[1:].decode("ascii"))
        except UnicodeDecodeError as exc:
            raise _protocol("non-ASCII CTRL message") from exc


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("osmo-hlr closed the CTRL connection")
        chunks += chunk
    return bytes(chunks)
