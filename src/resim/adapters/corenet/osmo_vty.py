"""A small client for an Osmocom VTY (the telnet command line, osmo-hlr: port 4258).

Why resim speaks VTY at all: osmo-hlr's CTRL variables ``cs-enabled`` and
``ps-enabled`` only write its database. The VTY command
``subscriber imsi <IMSI> update network-access-mode none|cs|ps|cs+ps`` goes
through the HLR's own logic, which sends GSUP Delete-Subscriber-Data to the
VLR/SGSN serving an attached subscriber when an access flag goes from on to
off (seen with osmo-hlr 1.5 and a fake VLR over GSUP; no message when the
flag was off already, or when nobody serves the IMSI). Only that takes a
stolen phone off the network before its next location update.

Wire behaviour (learnt against osmo-hlr 1.5, libosmovty 1.7): on connect the
server sends a banner, a few telnet negotiations (``IAC WILL ECHO`` ...) and
the prompt ``OsmoHLR> ``; ``enable`` gives ``OsmoHLR# ``. The server echoes
each command line, then prints the command's output, then the prompt again.
A line must end with ``\\n`` alone (``\\r\\n`` is read as two lines).
Problems are printed, not signalled: output lines beginning with ``%``.

Errors (all :class:`resim.errors.ExternalError`, as on the CTRL path):

- a broken, refused or silent connection: retryable ``CORE_UNAVAILABLE``;
  the next command reconnects (a kept connection found closed is replaced
  at once, once: the server may close idle sessions);
- ``% No subscriber for imsi = '...'``: :class:`VtyError`, ``CORE_UNKNOWN_IMSI``;
- ``% Unknown command.`` and the other parser complaints (a VTY that does not
  know the command: another osmo-hlr version): ``CORE_PROTOCOL_ERROR``;
- any other ``%`` line but osmo-hlr's reports of success (``% Updated
  subscriber ...``, ``% Created ...``, ``% Deleted ...``): :class:`VtyError`,
  permanent ``CORE_REJECTED``;
- a server that asks for a password: permanent ``CORE_REJECTED`` (configure
  the VTY without login on a loopback or management address).
"""

from __future__ import annotations

import re
import socket
import threading

from resim.adapters.corenet import rules
from resim.errors import ExternalError

DEFAULT_VTY_PORT = 4258

_IAC, _SB, _SE = 0xFF, 0xFA, 0xF0
_PROMPT = re.compile(rb"(?:^|\n)([A-Za-z0-9_.\-]+(?:\([a-z0-9\-]+\))?)([>#]) $")
_PASSWORD = re.compile(rb"(?i)password: ?$")
# libosmovty's answers for a line it could not parse (vty.c, cmd.c).
_PARSER_ERRORS = (
    "% Unknown command",
    "% Command incomplete",
    "% There is no matched command",
    "% Ambiguous command",
)
_NO_SUBSCRIBER = "% No subscriber for "
# osmo-hlr reports some successes with a % line too ("% Updated subscriber
# IMSI='...' to MSISDN='...'", "% Created subscriber ..."): these are not errors.
_DONE = re.compile(r"^% (Updated|Created|Deleted) subscriber ")


class VtyError(ExternalError):
    """The VTY printed a ``%`` line for our command."""

    def __init__(self, message: str, *, command: str) -> None:
        if message.startswith(_NO_SUBSCRIBER):
            code = rules.UNKNOWN_IMSI
        elif message.startswith(_PARSER_ERRORS):
            code = rules.PROTOCOL_ERROR
        else:
            code = rules.REJECTED
        super().__init__(f"osmo-hlr VTY refused a command: {message}", retryable=False, code=code)
        self.reason = message
        self.command = command


def strip_telnet(data: bytes) -> bytes:
    """Remove telnet commands (``IAC x y``, ``IAC SB ... IAC SE``) from ``data``.

    ``data`` must hold whole commands; :meth:`VtyClient._read_prompt` only
    calls this on complete buffers ending in a prompt, where that holds.
    """
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte != _IAC:
            out.append(byte)
            i += 1
            continue
        nxt = data[i + 1] if i + 1 < len(data) else None
        if nxt == _IAC:  # an escaped 0xFF
            out.append(_IAC)
            i += 2
        elif nxt == _SB:
            end = data.find(bytes([_IAC, _SE]), i + 2)
            i = len(data) if end < 0 else end + 2
        elif nxt is not None and nxt >= 0xFB:  # WILL, WONT, DO, DONT + option
            i += 3
        else:
            i += 2
    return bytes(out)


def command_output(raw: str, command: str) -> str:
    """The output of one command: the text between its echo and the next prompt."""
    lines = raw.replace("\r", "").split("\n")
    if lines and lines[0].strip() == command.strip():
        lines = lines[1:]
    return "\n".join(line for line in lines[:-1] if line.strip())  # the last is the prompt


class VtyClient:
    """One telnet connection in enable mode, opened lazily, one command at a time."""

    def __init__(self, host: str, port: int = DEFAULT_VTY_PORT, *, timeout: float = 5.0) -> None:
        self._addr = (host, port)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def run(self, command: str) -> str:
        """Run one command in enable mode; its output, or VtyError for a ``%`` line."""
        if not command.isascii() or not command.isprintable() or not command.strip():
            raise ValueError("a VTY command is one line of printable ASCII")
        with self._lock:
            # A kept connection may have been closed by the server while idle: one
            # more try on a new one. Safe because every command resim sends is
            # idempotent (setting access or a number to what it already is).
            reused = self._sock is not None
            while True:
                try:
                    sock = self._connect()
                    sock.sendall(command.encode("ascii") + b"\n")
                    output = command_output(self._read_prompt(sock), command)
                    break
                except OSError as exc:
                    self._drop()
                    if reused and not isinstance(exc, TimeoutError):
                        reused = False
                        continue
                    where = f"{self._addr[0]}:{self._addr[1]}"
                    raise rules.unavailable(f"osmo-hlr VTY {where}: {exc}") from exc
                except ExternalError:
                    self._drop()
                    raise
        for line in output.splitlines():
            text = line.strip()
            if text.startswith("%") and not _DONE.match(text):
                raise VtyError(text, command=command)
        return output

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.create_connection(self._addr, timeout=self._timeout)
        try:
            self._read_prompt(sock)  # the banner and the view-mode prompt
            sock.sendall(b"enable\n")
            if not self._read_prompt(sock).endswith("# "):
                raise _protocol("`enable` did not give the privileged prompt")
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return sock

    def _read_prompt(self, sock: socket.socket) -> str:
        """Read until the server shows its prompt; the text before it, prompt included."""
        buf = bytearray()
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("osmo-hlr closed the VTY connection")
            buf += chunk
            if len(buf) > 1_000_000:
                raise _protocol("no prompt within 1 MB of output")
            text = strip_telnet(bytes(buf))
            if _PROMPT.search(text):
                return text.decode("ascii", errors="replace")
            if _PASSWORD.search(text):
                raise ExternalError(
                    "osmo-hlr VTY asks for a password; resim needs a VTY without login "
                    "(bind it to loopback or a management network)",
                    retryable=False,
                    code=rules.REJECTED,
                )

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _protocol(what: str) -> ExternalError:
    return ExternalError(f"osmo-hlr VTY: {what}", retryable=False, code=rules.PROTOCOL_ERROR)
