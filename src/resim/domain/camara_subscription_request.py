"""Parse a ``POST /subscriptions`` body (sim-swap-subscriptions 0.3.0) into a spec.

Pure. Every refusal is an :class:`InvalidInput` whose ``code`` is the spec's
400 error code, chosen as the spec's ``CreateSubscriptionBadRequest400`` says:

==================  ==========================================================
INVALID_ARGUMENT    malformed body, a missing or mistyped field, an unknown
                    event type or protocol name, an unsupported
                    ``protocolSettings``, a ``sink`` that is not a URL at all
                    (it fails the schema's ``format: uri``), a
                    ``subscriptionExpireTime`` not in the future
INVALID_PROTOCOL    a known protocol other than HTTP ("Only HTTP is supported")
INVALID_SINK        ``sink`` a URL unfit for the protocol: not https://, or
                    carrying credentials or a fragment (see ``sink_problem``)
INVALID_CREDENTIAL  ``sinkCredential.credentialType`` PLAIN or REFRESHTOKEN
                    ("Only Access token is supported")
INVALID_TOKEN       ``accessTokenType`` other than ``bearer``
OUT_OF_RANGE        ``accessTokenExpiresUtc`` not in the future,
                    ``subscriptionMaxEvents`` below 1 (the schema's ``minimum``)
==================  ==========================================================

The identifier rules (2-legged / 3-legged) need the caller and are the
service's job.

Why a past ``subscriptionExpireTime`` is INVALID_ARGUMENT, not OUT_OF_RANGE:
Commonalities keeps OUT_OF_RANGE for "a given field [that] has a pre-defined
range"; the schema gives ``subscriptionExpireTime`` none (``subscriptionMaxEvents``
has ``minimum: 1``), and the CAMARA test plan (r3.3,
``sim_swap_subscription_creation_24``/``_26``) expects INVALID_ARGUMENT.

``accessTokenExpiresUtc`` is RFC 3339 per the schema; the
spec's own example gives epoch seconds ("1717753038"), which is accepted too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resim.domain.camara_events import (
    CREDENTIAL_TYPES,
    PROTOCOLS,
    SUBSCRIBABLE_TYPES,
    sink_is_url,
    sink_problem,
)
from resim.errors import InvalidInput

PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{4,14}")
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class SubscriptionDialect:
    """What differs in sim-swap-subscriptions 0.4.0-rc (``RESIM_CAMARA_VERSION=2.2``)
    from 0.3.0; the defaults are 0.3.0. ``entrypoints.camara.versions`` has the table.

    ``strict``: "Request body strictness": properties the schema does not name,
    at any depth, are 400 INVALID_ARGUMENT; and the 0.4 bounds apply
    (``subscriptionMaxEvents`` at most 1,000,000: OUT_OF_RANGE; ``accessToken``
    at most 4,096 characters, date-times at most 64). ``unsupported_identifier``,
    ``token_context``, ``paginated``: used by the service and the routes.
    """

    strict: bool = False
    unsupported_identifier: bool = False
    token_context: bool = False
    paginated: bool = False


V0_3 = SubscriptionDialect()

# The properties each object may have in 0.4 (HTTP protocol; the credential's by its type).
_KNOWN = {
    "": frozenset({"protocol", "sink", "sinkCredential", "types", "config", "protocolSettings"}),
    "protocolSettings": frozenset({"headers", "method"}),
    "config": frozenset(
        {"subscriptionDetail", "subscriptionExpireTime", "subscriptionMaxEvents", "initialEvent"}
    ),
    "config.subscriptionDetail": frozenset({"phoneNumber"}),
    "sinkCredential": frozenset(
        {"credentialType", "accessToken", "accessTokenExpiresUtc", "accessTokenType"}
    ),
    "sinkCredential/PRIVATE_KEY_JWT": frozenset(
        {"credentialType", "clientId", "tokenUri", "jwksUri"}
    ),
}
PRIVATE_KEY_JWT = "PRIVATE_KEY_JWT"  # 0.4: a credential type resim does not support
MAX_EVENTS_0_4 = 1_000_000
MAX_TOKEN_LENGTH_0_4 = 4096
MAX_DATETIME_LENGTH_0_4 = 64


def _only_known(value: Any, where: str) -> None:
    """400 INVALID_ARGUMENT when ``value`` (an object at ``where``) has a property
    the 0.4 schema does not name. The message names the place, not the property
    (the request is never echoed)."""
    if isinstance(value, Mapping) and not set(value) <= _KNOWN[where]:
        raise _bad(f"{where or 'the request body'} has a property the schema does not define")


@dataclass(frozen=True)
class SubscriptionSpec:
    sink: str
    types: tuple[str, ...]
    phone_number: str | None  # config.subscriptionDetail.phoneNumber, if given
    expire_time: dt.datetime | None
    max_events: int | None
    credential_type: str | None
    access_token: str | None = field(default=None, repr=False)
    token_expires_at: dt.datetime | None = None
    protocol: str = "HTTP"


def _bad(message: str, code: str = "INVALID_ARGUMENT") -> InvalidInput:
    return InvalidInput(message, code=code)


def parse_subscription_request(
    body: Any,
    *,
    now: dt.datetime,
    allow_http_loopback: bool,
    dialect: SubscriptionDialect = V0_3,
) -> SubscriptionSpec:
    """The spec of a valid request body; raises InvalidInput (codes in the module doc)."""
    if not isinstance(body, Mapping):
        raise _bad("The request body must be a JSON object.")
    if dialect.strict:
        _strict(body)
    for name in ("protocol", "sink", "types", "config"):
        if name not in body:
            raise _bad(f"Expected property is missing: {name}")
    protocol = body["protocol"]
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        raise _bad("protocol must be one of " + ", ".join(sorted(PROTOCOLS)))
    if protocol != "HTTP":
        raise _bad("Only HTTP is supported", "INVALID_PROTOCOL")
    sink = body["sink"]
    if not isinstance(sink, str):
        raise _bad("sink must be a string")
    if not sink_is_url(sink):
        raise _bad("sink is not a URL")
    problem = sink_problem(sink, allow_http_loopback=allow_http_loopback)
    if problem is not None:
        raise _bad(problem, "INVALID_SINK")
    types = _types(body["types"])
    settings = body.get("protocolSettings")
    if settings is not None:
        _check_http_settings(settings)
    phone, expire_time, max_events = _config(body["config"], now)
    if dialect.strict and max_events is not None and max_events > MAX_EVENTS_0_4:
        raise _bad(f"subscriptionMaxEvents must be at most {MAX_EVENTS_0_4}", "OUT_OF_RANGE")
    credential = body.get("sinkCredential")
    credential_type = token = token_expires = None
    if credential is not None:
        credential_type, token, token_expires = _credential(credential, now)
    return SubscriptionSpec(
        sink=sink,
        types=types,
        phone_number=phone,
        expire_time=expire_time,
        max_events=max_events,
        credential_type=credential_type,
        access_token=token,
        token_expires_at=token_expires,
        protocol=protocol,
    )


def _strict(body: Mapping[str, Any]) -> None:
    """0.4's strictness and bounds that 0.3.0 did not have (see SubscriptionDialect)."""
    _only_known(body, "")
    for where in ("protocolSettings", "config"):
        _only_known(body.get(where), where)
    credential = body.get("sinkCredential")
    if isinstance(credential, Mapping) and credential.get("credentialType") == PRIVATE_KEY_JWT:
        _only_known(credential, "sinkCredential/PRIVATE_KEY_JWT")
        raise _bad("Only Access token is supported", "INVALID_CREDENTIAL")
    _only_known(credential, "sinkCredential")
    config = body.get("config")
    if isinstance(config, Mapping):
        _only_known(config.get("subscriptionDetail"), "config.subscriptionDetail")
        initial = config.get("initialEvent")
        if initial is not None and not isinstance(initial, bool):
            raise _bad("config.initialEvent must be a boolean")
        expire = config.get("subscriptionExpireTime")
        if isinstance(expire, str) and len(expire) > MAX_DATETIME_LENGTH_0_4:
            raise _bad("subscriptionExpireTime is longer than 64 characters")
    if isinstance(credential, Mapping):
        token = credential.get("accessToken")
        if isinstance(token, str) and len(token) > MAX_TOKEN_LENGTH_0_4:
            raise _bad("sinkCredential.accessToken is longer than 4096 characters")
        expires = credential.get("accessTokenExpiresUtc")
        if isinstance(expires, str) and len(expires) > MAX_DATETIME_LENGTH_0_4:
            raise _bad("sinkCredential.accessTokenExpiresUtc is longer than 64 characters")


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) != 1:
        raise _bad("types must be an array of exactly one event type")
    if not isinstance(value[0], str) or value[0] not in SUBSCRIBABLE_TYPES:
        raise _bad("Unsupported event type; only " + ", ".join(sorted(SUBSCRIBABLE_TYPES)))
    return (str(value[0]),)


def _check_http_settings(value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _bad("protocolSettings must be an object")
    if value.get("method", "POST") != "POST":
        raise _bad("protocolSettings.method must be POST")
    if value.get("headers"):
        raise _bad("protocolSettings.headers is not supported by this server")


def _config(value: Any, now: dt.datetime) -> tuple[str | None, dt.datetime | None, int | None]:
    if not isinstance(value, Mapping):
        raise _bad("config must be an object")
    if "subscriptionDetail" not in value:
        raise _bad("Expected property is missing: config.subscriptionDetail")
    detail = value["subscriptionDetail"]
    if not isinstance(detail, Mapping):
        raise _bad("config.subscriptionDetail must be an object")
    phone = detail.get("phoneNumber")
    if phone is not None and not (isinstance(phone, str) and PHONE_NUMBER.fullmatch(phone)):
        raise _bad("phoneNumber must be in E.164 format: + and 5 to 15 digits")
    expire_time = None
    if value.get("subscriptionExpireTime") is not None:
        expire_time = _datetime(value["subscriptionExpireTime"], "subscriptionExpireTime")
        if expire_time <= now:
            raise _bad("subscriptionExpireTime must be in the future")
    max_events = value.get("subscriptionMaxEvents")
    if max_events is not None:
        if isinstance(max_events, bool) or not isinstance(max_events, int):
            raise _bad("subscriptionMaxEvents must be an integer")
        if max_events < 1:
            raise _bad("subscriptionMaxEvents must be at least 1", "OUT_OF_RANGE")
    return phone, expire_time, max_events


def _credential(value: Any, now: dt.datetime) -> tuple[str, str, dt.datetime]:
    if not isinstance(value, Mapping):
        raise _bad("sinkCredential must be an object")
    kind = value.get("credentialType")
    if not isinstance(kind, str) or kind not in CREDENTIAL_TYPES:
        raise _bad("sinkCredential.credentialType must be one of " + ", ".join(CREDENTIAL_TYPES))
    if kind != "ACCESSTOKEN":
        raise _bad("Only Access token is supported", "INVALID_CREDENTIAL")
    for name in ("accessToken", "accessTokenExpiresUtc", "accessTokenType"):
        if name not in value:
            raise _bad(f"Expected property is missing: sinkCredential.{name}")
    if value["accessTokenType"] != "bearer":
        raise _bad("Only bearer token is supported", "INVALID_TOKEN")
    token = value["accessToken"]
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
        raise _bad("sinkCredential.accessToken must be a non-empty string")
    if any(c in token for c in "\r\n"):
        raise _bad("sinkCredential.accessToken must be one line")
    expires = _datetime(value["accessTokenExpiresUtc"], "accessTokenExpiresUtc", epoch_ok=True)
    if expires <= now:
        raise _bad("sinkCredential.accessTokenExpiresUtc must be in the future", "OUT_OF_RANGE")
    return "ACCESSTOKEN", token, expires


def _datetime(value: Any, name: str, *, epoch_ok: bool = False) -> dt.datetime:
    if not isinstance(value, str):
        raise _bad(f"{name} must be an RFC 3339 date-time with a time zone")
    if epoch_ok and value.isdigit() and len(value) <= 12:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name} must be an RFC 3339 date-time with a time zone") from None
    if parsed.tzinfo is None or "T" not in value.upper():
        raise _bad(f"{name} must be an RFC 3339 date-time with a time zone")
    return parsed.astimezone(dt.UTC)
