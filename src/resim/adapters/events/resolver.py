"""Host resolvers for CAMARA notification sinks (the HostResolver port).

* :class:`SystemResolver`: the operating system's resolver (``getaddrinfo``),
  what production uses. No timeout of its own: the system's applies.
* :class:`FakeResolver`: a fixed table, for tests (names resolve only to the
  addresses a test gives; nothing is sent to a DNS server). Records every
  look-up, so a test can tell how often a name was resolved.

Both raise ``ExternalError(SINK_UNRESOLVED, retryable=True)`` for a name with
no address. Neither logs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence

from resim.errors import ExternalError


def unresolved(host: str) -> ExternalError:
    return ExternalError(
        f"sink host {host} does not resolve to an address", retryable=True, code="SINK_UNRESOLVED"
    )


class SystemResolver:
    def resolve(self, host: str, port: int) -> list[str]:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise unresolved(host) from None
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in found:
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise unresolved(host)
        return addresses


class FakeResolver:
    """Resolves the names in ``table`` (case-insensitive) to their addresses, in order."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._table = {name.lower(): list(addrs) for name, addrs in (table or {}).items()}
        self.lookups: list[str] = []

    def set(self, name: str, *addresses: str) -> None:
        """Answer ``name`` with ``addresses`` from now on (none: it stops resolving)."""
        with self._lock:
            self._table[name.lower()] = list(addresses)

    def resolve(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.lookups.append(host)
            addresses = list(self._table.get(host.lower(), []))
        if not addresses:
            raise unresolved(host)
        return addresses
