"""Where a CAMARA notification sink may be reached (issue 13, finding 7: SSRF).

A sink's host must be, or resolve only to, addresses that
:class:`resim.domain.sink_address.SinkAddressRules` accepts: public unicast
addresses, plus the operator's allow-list (``RESIM_CAMARA_SINK_ALLOW``) and,
in tests and the demo, loopback. Checked twice:

* at creation (:func:`check_new_sink`): the relying party gets 400
  INVALID_SINK, and nothing is stored;
* at every connection (:func:`sink_addresses`, called by the HTTP adapter
  while it opens the socket): a subscription stored before this rule existed,
  or a name whose DNS answer changed since, is refused before any byte is
  sent, and the adapter connects to the address it just checked, so a DNS
  answer that changes between the check and the connection (rebinding)
  cannot slip through.

Every address of a name must pass, not just one: an attacker controls the
order of a DNS answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from resim.domain.sink_address import SinkAddressRules, parse_address
from resim.errors import ExternalError, InvalidInput, Refused
from resim.services.ports import HostResolver

if TYPE_CHECKING:  # the HTTP adapter imports this module, and the context imports the adapter
    from resim.services.context import ServiceContext

DEFAULT_PORTS = {"https": 443, "http": 80}


def sink_addresses(
    host: str, port: int, *, resolver: HostResolver, rules: SinkAddressRules
) -> list[str]:
    """The checked addresses to connect to for ``host``, in the order to try.

    An IP literal is checked as it is; a name is resolved (``resolver``) and
    every address it gives is checked. Raises Refused (SINK_ADDRESS_REFUSED)
    naming the first refused address, or ExternalError (SINK_UNRESOLVED,
    retryable) for a name without addresses.
    """
    literal = parse_address(host)
    addresses = [str(literal)] if literal is not None else resolver.resolve(host, port)
    for address in addresses:
        problem = rules.problem(address)
        if problem is not None:
            shown = host if literal is not None else f"{host} resolves to {address}, which"
            raise Refused(
                f"sink {shown} is not allowed: {problem}; notifications go to public "
                "addresses only (RESIM_CAMARA_SINK_ALLOW lists exceptions)",
                code="SINK_ADDRESS_REFUSED",
            )
    return addresses


def check_new_sink(ctx: ServiceContext, sink: str) -> None:
    """InvalidInput (INVALID_SINK) unless ``sink``'s host passes :func:`sink_addresses`.

    Called with a sink that already passed the syntax rules
    (``domain.camara_events.sink_problem``). Resolves names: call it outside
    any transaction.
    """
    parts = urlsplit(sink)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    try:
        sink_addresses(host, port, resolver=ctx.sink_resolver, rules=ctx.sink_rules)
    except Refused as exc:
        raise InvalidInput(exc.message, code="INVALID_SINK") from None
    except ExternalError:
        raise InvalidInput(
            f"sink host {host} does not resolve to an address", code="INVALID_SINK"
        ) from None
