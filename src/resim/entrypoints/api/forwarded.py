"""Who is on the other end: the caller's address, and the proxies believed about it.

A source address counts attempts (``ip:<address>`` keys), is written to the
audit log and decides who may read ``/metrics``, so a caller must not be able
to choose it. ``X-Forwarded-For`` is a header anyone can send; it is believed
only from the reverse proxies named in ``RESIM_TRUSTED_PROXIES`` (addresses
or CIDR networks; empty by default: nobody). uvicorn's own handling of the
header (on by default, trusting 127.0.0.1) is turned off wherever resim
starts uvicorn (``proxy_headers=False``), so this module is the one place
that decides.

:func:`client_address` is the rule; :class:`ProxyHeadersMiddleware` applies
it once per request, rewriting the ASGI scope's ``client`` (and ``scheme``,
from ``X-Forwarded-Proto``, so cookies stay ``Secure`` behind a TLS proxy);
every route reads the result with :func:`source_address`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``RESIM_TRUSTED_PROXIES`` entries as networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    parsed = _parse(address) if address else None
    return parsed is not None and any(parsed in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The caller's address.

    ``peer`` is the socket's peer; ``forwarded_for`` the values of every
    ``X-Forwarded-For`` header, in order. Unless the peer is a trusted proxy,
    the peer is the answer and the headers are ignored. Otherwise the list is
    walked from the right (each proxy appends the address it was called
    from): the first address that is not a trusted proxy is the client. An
    entry that is not an address ends the walk at the last proxy seen, and so
    does a list of nothing but trusted proxies.
    """
    if not is_trusted(peer, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    answer = peer
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            break
        answer = str(parsed)
        if not any(parsed in net for net in trusted):
            break
    return answer


def forwarded_scheme(
    peer: str | None, forwarded_proto: str | None, trusted: Sequence[Network]
) -> str | None:
    """``X-Forwarded-Proto`` from a trusted proxy (its last value, http or https), else None."""
    if forwarded_proto is None or not is_trusted(peer, trusted):
        return None
    value = forwarded_proto.split(",")[-1].strip().lower()
    return value if value in ("http", "https") else None


class ProxyHeadersMiddleware:
    """Rewrites the scope's ``client`` and ``scheme`` by :func:`client_address`."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            peer = client[0] if client else None
            if is_trusted(peer, self.trusted):
                forwarded = [
                    v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
                ]
                proto = next(
                    (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-proto"),
                    None,
                )
                address = client_address(peer, forwarded, self.trusted)
                scope = dict(scope)
                scope["client"] = (address, 0)
                scheme = forwarded_scheme(peer, proto, self.trusted)
                if scheme is not None:
                    scope["scheme"] = (
                        scheme if scope["type"] == "http" else scheme.replace("http", "ws")
                    )
        await self.app(scope, receive, send)


def source_address(connection: HTTPConnection) -> str | None:
    """The caller's address as :class:`ProxyHeadersMiddleware` left it (None: unknown)."""
    return connection.client.host if connection.client else None


def is_loopback(address: str | None) -> bool:
    parsed = _parse(address) if address else None
    return parsed is not None and parsed.is_loopback
