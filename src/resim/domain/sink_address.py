"""Which addresses a CAMARA notification sink may have (issue 13, finding 7).

Pure. A relying party names the URL resim POSTs its events to, with the bearer
token it chose. Left unchecked, that is a server-side request forgery: resim's
worker posted to its own PostgreSQL and Redis, to 10.0.0.1 and to the cloud
metadata service at 169.254.169.254. So a sink must resolve only to public
unicast addresses:

* refused: loopback, private (RFC 1918, unique-local fc00::/7), link-local
  (169.254/16, fe80::/10), shared address space (100.64/10), multicast,
  reserved, unspecified, documentation and benchmark ranges, site-local, and
  anything else Python's :mod:`ipaddress` does not call global;
* an IPv6 address that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-compatible, 6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96`` and
  ``64:ff9b:1::/48``) is judged by the embedded address too: a NAT64 gateway
  or a dual-stack socket would deliver ``64:ff9b::a00:1`` to 10.0.0.1;
* allowed anyway: the networks an operator lists (``RESIM_CAMARA_SINK_ALLOW``,
  for a lab whose sinks live on a private network), and loopback when the
  tests' and demo's ``allow_loopback`` is on.

The service layer resolves names and applies :meth:`SinkAddressRules.problem`
to every address a name gives (``services.sink_guard``); the HTTP adapter
connects only to an address it has just checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone dropped), or None for a name."""
    bare = text.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    bare = bare.partition("%")[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if _written_as_ipv6(address):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _written_as_ipv6(address: ipaddress.IPv6Address) -> bool:
    """NAT64 or IPv4-compatible: only another way of writing the IPv4 address inside."""
    if any(address in net for net in _NAT64):
        return True
    return address in _IPV4_COMPATIBLE and int(address) > 1  # not :: or ::1


def _judged(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to ``address`` may really reach."""
    inner = embedded_ipv4(address)
    if inner is None:
        return [address]
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or _written_as_ipv6(address)
    ):
        return [inner]
    return [address, inner]  # 6to4, Teredo: a tunnel to both


def _why_not_public(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None if it is."""
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private or special-purpose address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (not address.is_global, "not a public address"),
    )
    for hit, why in checks:
        if hit:
            return why
    return None


def parse_allow_list(text: str) -> tuple[Network, ...]:
    """Comma-separated networks (``10.20.0.0/16, fd00:1::/64``); ValueError names a bad one.

    A network that spans every address (``0.0.0.0/0``, ``::/0``) is refused: it
    would switch the protection off rather than open a lab network.
    """
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"not a network (CIDR) in the sink allow-list: {item!r}") from None
        if network.prefixlen == 0:
            raise ValueError(f"{item} would allow every address; list the lab's networks")
        networks.append(network)
    return tuple(networks)


@dataclass(frozen=True)
class SinkAddressRules:
    """The operator's exceptions to "public addresses only" (see the module doc)."""

    allow: tuple[Network, ...] = ()
    allow_loopback: bool = False

    def problem(self, address: str) -> str | None:
        """Why a sink may not be reached at ``address`` (an IP address), or None."""
        ip = parse_address(address)
        if ip is None:
            return f"{address!r} is not an IP address"
        candidates = _judged(ip)
        if any(c in net for c in candidates for net in self._allowed()):
            return None
        for candidate in candidates:
            why = _why_not_public(candidate)
            if why is not None:
                shown = str(candidate) if candidate == ip else f"{candidate} (inside {ip})"
                return f"{shown} is {why}"
        return None

    def _allowed(self) -> Iterable[Network]:
        yield from self.allow
        if self.allow_loopback:
            yield from LOOPBACK_NETWORKS
