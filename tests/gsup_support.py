"""A minimal GSUP client: what an MSC/VLR tells an HLR when a phone registers.

Used by the CoreNetwork contract to make a real osmo-hlr see an IMSI attach:
IPA framing (length, protocol 0xEE "OSMO", extension 0x05 GSUP), the IPA
identity exchange the HLR starts, then UpdateLocation for the CS domain; the
HLR answers InsertSubscriberData (acknowledged) and UpdateLocation result or
error. Message and IE numbers: 3GPP TS 29.002 as encoded by Osmocom's GSUP
(libosmocore ``gsup.h``): UL request 0x04, error 0x05, result 0x06; ISD
request 0x10, result 0x12; IE IMSI 0x01, CN domain 0x28 (2 = CS), cause 0x02.
"""

from __future__ import annotations

import socket
import struct

IPA_CCM, IPA_OSMO, EXT_GSUP = 0xFE, 0xEE, 0x05
CCM_PING, CCM_PONG, CCM_ID_GET, CCM_ID_RESP = 0x00, 0x01, 0x04, 0x05
UL_REQUEST, UL_ERROR, UL_RESULT, ISD_REQUEST, ISD_RESULT = 0x04, 0x05, 0x06, 0x10, 0x12
IE_IMSI, IE_CAUSE, IE_CN_DOMAIN = 0x01, 0x02, 0x28
TAG_SERNR, TAG_UNITNAME, TAG_UNIT = 0x00, 0x01, 0x08


class LocationUpdateRefused(Exception):
    pass


def _tbcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i], 16) | int(digits[i + 1], 16) << 4 for i in range(0, len(digits), 2))


def _ie(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


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
                ident = _id_tag(TAG_UNIT, "0/0/0") + _id_tag(TAG_SERNR, vlr)
                ident += _id_tag(TAG_UNITNAME, vlr)
                sock.sendall(_frame(IPA_CCM, bytes([CCM_ID_RESP]) + ident))
                request = bytes([EXT_GSUP, UL_REQUEST]) + imsi_ie + _ie(IE_CN_DOMAIN, b"\x02")
                sock.sendall(_frame(IPA_OSMO, request))
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
