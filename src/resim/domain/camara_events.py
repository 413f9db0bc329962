"""CAMARA SIM Swap subscriptions 0.3.0: the subscription states and the CloudEvents.

Pure: no I/O, no framework. The facts come from the normative OpenAPI file
(``sim-swap-subscriptions.yaml``, base path ``/sim-swap-subscriptions/v0.3``):

* one subscribable event type, ``org.camaraproject.sim-swap-subscriptions.v0.swapped``;
* ``org.camaraproject.sim-swap-subscriptions.v0.subscription-ended`` is sent,
  without being subscribed to, when a subscription ends (the spec's schema
  spells it ``subscription-ended``; some prose says "subscription-ends");
* termination reasons MAX_EVENTS_REACHED, NETWORK_TERMINATED,
  SUBSCRIPTION_EXPIRED, ACCESS_TOKEN_EXPIRED, SUBSCRIPTION_DELETED;
* statuses ACTIVATION_REQUESTED, ACTIVE, EXPIRED, INACTIVE, DELETED.

resim creates subscriptions synchronously (201, ``ACTIVE`` at once), so
ACTIVATION_REQUESTED and INACTIVE are never stored; every end other than a
deletion leaves the subscription ``EXPIRED`` (the spec names no other ended
state), a deletion leaves it ``DELETED``.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
SUBSCRIPTION_ENDED = "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"
SUBSCRIBABLE_TYPES = frozenset({SWAPPED})
PROTOCOLS = frozenset({"HTTP", "MQTT3", "MQTT5", "AMQP", "NATS", "KAFKA"})
CREDENTIAL_TYPES = frozenset({"PLAIN", "ACCESSTOKEN", "REFRESHTOKEN"})
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"


class SubscriptionStatus(enum.StrEnum):
    ACTIVATION_REQUESTED = "ACTIVATION_REQUESTED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    INACTIVE = "INACTIVE"
    DELETED = "DELETED"


class TerminationReason(enum.StrEnum):
    MAX_EVENTS_REACHED = "MAX_EVENTS_REACHED"
    NETWORK_TERMINATED = "NETWORK_TERMINATED"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    ACCESS_TOKEN_EXPIRED = "ACCESS_TOKEN_EXPIRED"  # noqa: S105 - a reason, not a secret
    SUBSCRIPTION_DELETED = "SUBSCRIPTION_DELETED"


TERMINATION_DESCRIPTIONS = {
    TerminationReason.MAX_EVENTS_REACHED: "maximum number of events reached",
    TerminationReason.NETWORK_TERMINATED: "the API server stopped sending notifications",
    TerminationReason.SUBSCRIPTION_EXPIRED: "subscription expire time reached",
    TerminationReason.ACCESS_TOKEN_EXPIRED: "sink access token expires",
    TerminationReason.SUBSCRIPTION_DELETED: "subscription deleted by the requester",
}


def status_after(reason: TerminationReason) -> SubscriptionStatus:
    """The status a subscription ends in for ``reason`` (see the module doc)."""
    if reason is TerminationReason.SUBSCRIPTION_DELETED:
        return SubscriptionStatus.DELETED
    return SubscriptionStatus.EXPIRED


def rfc3339(at: dt.datetime) -> str:
    """UTC, millisecond precision, ``Z``: the form of the spec's examples."""
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def swapped_event(
    *,
    event_id: str,
    source: str,
    subscription_id: str,
    phone_number: str | None,
    swapped_at: dt.datetime,
) -> dict[str, Any]:
    """A CloudEvents 1.0 ``swapped`` notification (structured mode JSON).

    ``phone_number`` is left out for subscriptions made with a 3-legged token
    (the spec's data minimisation: the number is known from the consent).
    ``time`` is the moment the number moved to the new SIM.
    """
    data: dict[str, Any] = {"subscriptionId": subscription_id}
    if phone_number is not None:
        data["phoneNumber"] = phone_number
    return _envelope(event_id, source, SWAPPED, swapped_at, data)


def ended_event(
    *,
    event_id: str,
    source: str,
    subscription_id: str,
    phone_number: str | None,
    reason: TerminationReason,
    at: dt.datetime,
) -> dict[str, Any]:
    """A CloudEvents 1.0 ``subscription-ended`` notification."""
    data: dict[str, Any] = {
        "subscriptionId": subscription_id,
        "terminationReason": reason.value,
        "terminationDescription": TERMINATION_DESCRIPTIONS[reason],
    }
    if phone_number is not None:
        data["phoneNumber"] = phone_number
    return _envelope(event_id, source, SUBSCRIPTION_ENDED, at, data)


def _envelope(
    event_id: str, source: str, type_: str, at: dt.datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": source,
        "type": type_,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": rfc3339(at),
        "data": data,
    }


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def sink_is_url(sink: str) -> bool:
    """Whether ``sink`` is a URL at all (the schema's ``format: uri``): a scheme,
    and for a hierarchical one a host, no spaces, a valid port. ``"not-an-url"``
    is not (400 INVALID_ARGUMENT); ``http://...`` or ``ftp://...`` is a URL unfit
    for the protocol (:func:`sink_problem`, 400 INVALID_SINK)."""
    if not sink or len(sink) > 2048 or any(c.isspace() or ord(c) < 32 for c in sink):
        return False
    try:
        parts = urlsplit(sink)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    if not _SCHEME.fullmatch(parts.scheme or ""):
        return False
    if sink[len(parts.scheme) + 1 :].startswith("//"):
        return bool(parts.hostname)
    return bool(parts.path)


def sink_problem(sink: str, *, allow_http_loopback: bool) -> str | None:
    """Why ``sink`` is not acceptable, or None if it is.

    The spec's pattern is ``^https://.+$``. With ``allow_http_loopback`` (tests
    and the demo only; ``RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK``) a plain
    ``http://`` sink on a loopback address (127.0.0.0/8, ::1, ``localhost``) is
    accepted too. User-info in the URL is refused: credentials belong in
    ``sinkCredential``, not in a URL that is echoed back and may be logged.
    """
    if len(sink) > 2048:
        return "sink is longer than 2048 characters"
    try:
        parts = urlsplit(sink)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return "sink is not a valid URL"
    if not host or any(c.isspace() for c in sink):
        return "sink is not a valid URL"
    if parts.username is not None or parts.password is not None:
        return "sink must not carry credentials; use sinkCredential"
    if parts.fragment:
        return "sink must not carry a fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and _is_loopback(host):
        return None
    return "sink not valid for the specified protocol (an https:// URL is required)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
