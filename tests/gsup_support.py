"""A minimal GSUP peer: what an MSC/VLR tells an HLR, and hears back from it.

Used by the CoreNetwork contract and the detach tests to make a real osmo-hlr
see an IMSI attach, and to observe what it sends to the serving VLR when that
IMSI loses access. IPA framing (length, protocol 0xEE "OSMO", extension 0x05
GSUP), the IPA identity exchange the HLR starts, then UpdateLocation for the CS
domain; the HLR answers InsertSubscriberData (acknowledged) and UpdateLocation
result or error. Message and IE numbers: 3GPP TS 29.002 as encoded by
Osmocom's GSUP (libosmocore ``gsup.h``): UL request 0x04, error 0x05, result
0x06; ISD request 0x10 (with the MSISDN, IE 0x08), result 0x12; Delete-Subscriber-Data request 0x14,
error 0x15, result 0x16; IE IMSI 0x01, cause 0x02, CN domain 0x28 (1 = PS,
2 = CS).

:func:`location_update` registers and hangs up. :class:`FakeVlr` registers
and stays connected (a serving VLR), acknowledging and recording every
Delete-Subscriber-Data the HLR sends: osmo-hlr sends them only to GSUP
clients that are connected at the time.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

IPA_CCM, IPA_OSMO, EXT_GSUP = 0xFE, 0xEE, 0x05
CCM_PING, CCM_PONG, CCM_ID_GET, CCM_ID_RESP, CCM_ID_ACK = 0x00, 0x01, 0x04, 0x05, 0x06
UL_REQUEST, UL_ERROR, UL_RESULT, ISD_REQUEST, ISD_RESULT = 0x04, 0x05, 0x06, 0x10, 0x12
DSD_REQUEST, DSD_ERROR, DSD_RESULT = 0x14, 0x15, 0x16
IE_IMSI, IE_CAUSE, IE_MSISDN, IE_CN_DOMAIN = 0x01, 0x02, 0x08, 0x28
CN_PS, CN_CS = 1, 2
TAG_SERNR, TAG_UNITNAME, TAG_UNIT = 0x00, 0x01, 0x08


class LocationUpdateRefused(Exception):
    pass


def _tbcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i], 16) | int(digits[i + 1], 16) << 4 for i in range(0, len(digits), 2))


def _untbcd(value: bytes) -> str:
    digits = "".join(f"{b & 0x0F:x}{b >> 4:x}" for b in value)
    return digits.rstrip("f")


def _ie(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


def _ies(body: bytes) -> dict[int, bytes]:
    """The TLV information elements of a GSUP message body (after the type byte)."""
    found: dict[int, bytes] = {}
    at = 0
    while at + 2 <= len(body):
        tag, length = body[at], body[at + 1]
        found.setdefault(tag, body[at + 2 : at + 2 + length])
        at += 2 + length
    return found


def _id_tag(tag: int, text: str) -> bytes:
    value = text.encode() + b"\0"
    return struct.pack(">H", len(value) + 1) + bytes([tag]) + value


def _frame(proto: int, payload: bytes) -> bytes:
    return struct.pack(">HB", len(payload), proto) + payload


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the HLR closed the GSUP connection")
        data += chunk
    return data


def _receive(sock: socket.socket) -> tuple[int, bytes]:
    length, proto = struct.unpack(">HB", _read(sock, 3))
    return proto, _read(sock, length)


def _identify(sock: socket.socket, vlr: str) -> None:
    ident = _id_tag(TAG_UNIT, "0/0/0") + _id_tag(TAG_SERNR, vlr) + _id_tag(TAG_UNITNAME, vlr)
    sock.sendall(_frame(IPA_CCM, bytes([CCM_ID_RESP]) + ident))


def _update_location(sock: socket.socket, imsi: str) -> None:
    request = bytes([EXT_GSUP, UL_REQUEST]) + _ie(IE_IMSI, _tbcd(imsi))
    sock.sendall(_frame(IPA_OSMO, request + _ie(IE_CN_DOMAIN, bytes([CN_CS]))))


def location_update(
    host: str, port: int, imsi: str, *, vlr: str = "MSC-resim-test", timeout: float = 5.0
) -> None:
    """Register ``imsi`` at the HLR as VLR ``vlr`` (a phone attaching in the CS domain)."""
    imsi_ie = _ie(IE_IMSI, _tbcd(imsi))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        while True:
            proto, body = _receive(sock)
            if proto == IPA_CCM and body[:1] == bytes([CCM_ID_GET]):
                _identify(sock, vlr)
                _update_location(sock, imsi)
            elif proto == IPA_CCM and body[:1] == bytes([CCM_PING]):
                sock.sendall(_frame(IPA_CCM, bytes([CCM_PONG])))
            elif proto == IPA_OSMO and body[:1] == bytes([EXT_GSUP]):
                kind = body[1]
                if kind == ISD_REQUEST:
                    sock.sendall(_frame(IPA_OSMO, bytes([EXT_GSUP, ISD_RESULT]) + imsi_ie))
                elif kind == UL_RESULT:
                    return
                elif kind == UL_ERROR:
                    raise LocationUpdateRefused(f"UpdateLocation refused for {imsi}")


@dataclass(frozen=True)
class DeleteSubscriberData:
    """One Delete-Subscriber-Data request as the VLR received it."""

    imsi: str
    cn_domain: int | None  # CN_CS, CN_PS, or None when the HLR named none


class FakeVlr:
    """A serving MSC/VLR that stays connected to the HLR over GSUP.

    ``with FakeVlr(host, port) as vlr: vlr.attach(imsi)`` registers a phone;
    every Delete-Subscriber-Data the HLR sends is acknowledged (0x16) and
    appended to :attr:`deletes`. A reader thread owns the socket's input.
    """

    def __init__(
        self, host: str, port: int, *, name: str = "MSC-resim-vlr", timeout: float = 5.0
    ) -> None:
        self._addr = (host, port)
        self._name = name
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._identified = False
        self._results: dict[str, str] = {}  # IMSI -> "ok" / "refused"
        self.deletes: list[DeleteSubscriberData] = []
        self.inserts: list[tuple[str, str | None]] = []  # (IMSI, MSISDN digits) of each ISD
        self.error: BaseException | None = None

    def start(self) -> FakeVlr:
        self._sock = socket.create_connection(self._addr, timeout=self._timeout)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-vlr")
        self._thread.start()
        self._wait(lambda: self._identified, "the HLR's identity request")
        return self

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeVlr:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attach(self, imsi: str) -> None:
        """A phone with ``imsi`` registers here (UpdateLocation, CS domain)."""
        assert self._sock is not None, "start() first"
        with self._changed:
            self._results.pop(imsi, None)
        _update_location(self._sock, imsi)
        self._wait(lambda: imsi in self._results, f"the UpdateLocation answer for {imsi}")
        if self._results[imsi] != "ok":
            raise LocationUpdateRefused(f"UpdateLocation refused for {imsi}")

    def deletes_for(self, imsi: str) -> list[DeleteSubscriberData]:
        with self._changed:
            return [d for d in self.deletes if d.imsi == imsi]

    def wait_for_delete(self, imsi: str, timeout: float | None = None) -> DeleteSubscriberData:
        self._wait(lambda: any(d.imsi == imsi for d in self.deletes), f"a DSD for {imsi}", timeout)
        return self.deletes_for(imsi)[0]

    def numbers_sent(self, imsi: str) -> list[str | None]:
        """The MSISDN of each InsertSubscriberData for ``imsi``, in order."""
        with self._changed:
            return [number for i, number in self.inserts if i == imsi]

    def _wait(self, done: object, what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self._timeout)
        with self._changed:
            while not done():  # type: ignore[operator]
                if self.error is not None:
                    raise RuntimeError(f"fake VLR failed: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake VLR: no {what} within the timeout")
                self._changed.wait(left)

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while True:
                proto, body = _receive(sock)
                self._handle(sock, proto, body)
        except (OSError, ConnectionError) as exc:
            if self._sock is not None:  # not our own stop()
                with self._changed:
                    self.error = exc
                    self._changed.notify_all()

    def _handle(self, sock: socket.socket, proto: int, body: bytes) -> None:
        if proto == IPA_CCM and body[:1] == bytes([CCM_ID_GET]):
            _identify(sock, self._name)
            with self._changed:
                self._identified = True
                self._changed.notify_all()
        elif proto == IPA_CCM and body[:1] == bytes([CCM_PING]):
            sock.sendall(_frame(IPA_CCM, bytes([CCM_PONG])))
        elif proto == IPA_OSMO and body[:1] == bytes([EXT_GSUP]) and len(body) > 1:
            kind, ies = body[1], _ies(body[2:])
            imsi = _untbcd(ies.get(IE_IMSI, b""))
            imsi_ie = _ie(IE_IMSI, _tbcd(imsi))
            if kind == ISD_REQUEST:
                sock.sendall(_frame(IPA_OSMO, bytes([EXT_GSUP, ISD_RESULT]) + imsi_ie))
                # MSISDN IE: a length octet, then the digits in TBCD (as osmo-hlr 1.5 sends it)
                number = ies.get(IE_MSISDN)
                with self._changed:
                    self.inserts.append((imsi, _untbcd(number[1:]) or None if number else None))
                    self._changed.notify_all()
            elif kind == DSD_REQUEST:
                domain = ies.get(IE_CN_DOMAIN)
                sock.sendall(_frame(IPA_OSMO, bytes([EXT_GSUP, DSD_RESULT]) + imsi_ie))
                with self._changed:
                    self.deletes.append(DeleteSubscriberData(imsi, domain[0] if domain else None))
                    self._changed.notify_all()
            elif kind in (UL_RESULT, UL_ERROR):
                with self._changed:
                    self._results[imsi] = "ok" if kind == UL_RESULT else "refused"
                    self._changed.notify_all()
