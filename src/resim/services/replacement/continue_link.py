"""The signed "continue your request" link in every customer message about a request.

``{public_base_url}/c/{token}`` (short: it goes into text messages too), the
token being ``<request id>.<expiry, unix seconds in base 36>.<MAC>``: an
HMAC-SHA256 (the first 12 bytes, url-safe base64) of the id and the expiry under a key derived
from the OTP pepper (itself derived from the deployment's secret keys) with its
own label. No secret is in it, and it proves nothing about who holds it: the
page it opens leads to a *fresh* verification (an e-mailed code, the policy's
combinations) and never straight into a signed-in state. What it adds over the
bare request id is that it cannot be made up for another request and that it
ends (:data:`LINK_LIFETIME`); a tampered or expired token is refused with a
clear message, and nothing changes.

Derivable, so nothing is stored: any notice of the request can carry a fresh
link, and a retried mail job sends the same one (the expiry is fixed when the
job is enqueued).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from resim.errors import InvalidInput, NotFound
from resim.services.context import ServiceContext

# Long enough for a courier card to arrive and for the 72-hour activation code
# of an eSIM to run out; after that the request itself has moved on.
LINK_LIFETIME = dt.timedelta(days=14)
# Request ids are uuid4 hex (services.unit_of_work.new_id); the hyphenated form is read too.
_TOKEN = re.compile(
    r"(?P<rid>[0-9a-f-]{32,36})\.(?P<exp>[0-9a-z]{1,10})\.(?P<mac>[A-Za-z0-9_-]{16})"
)


class LinkExpired(InvalidInput):
    """A well-formed, genuine link whose time is over (the page answers 410)."""

    code = "CONTINUE_LINK_EXPIRED"


@dataclass(frozen=True)
class ContinueLink:
    request_id: str
    expires_at: dt.datetime


def _key(ctx: ServiceContext) -> bytes:
    return hmac.new(ctx.otp_pepper, b"resim continue link v1", hashlib.sha256).digest()


def _mac(ctx: ServiceContext, request_id: str, exp: str) -> str:
    digest = hmac.new(_key(ctx), f"{request_id}.{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def continue_token(ctx: ServiceContext, request_id: str, *, now: dt.datetime) -> str:
    """A token for ``request_id`` valid until ``now + LINK_LIFETIME``."""
    exp = _base36(int((now + LINK_LIFETIME).timestamp()))
    return f"{request_id}.{exp}.{_mac(ctx, request_id, exp)}"


def continue_url(ctx: ServiceContext, request_id: str, *, now: dt.datetime) -> str:
    return f"{ctx.public_base_url}/c/{continue_token(ctx, request_id, now=now)}"


def open_token(ctx: ServiceContext, token: str) -> ContinueLink:
    """The request a token names, if it is genuine and not yet expired.

    NotFound (CONTINUE_LINK_INVALID) for anything malformed or tampered with,
    :class:`LinkExpired` for a genuine one past its time. The MAC is checked
    before the expiry is believed. Reads nothing from the database: the caller
    looks the request up (it may have gone since).
    """
    found = _TOKEN.fullmatch(token[:100])
    if found is None:
        raise NotFound("this link is not valid", code="CONTINUE_LINK_INVALID")
    rid, exp, mac = found["rid"], found["exp"], found["mac"]
    if not hmac.compare_digest(_mac(ctx, rid, exp), mac):
        raise NotFound("this link is not valid", code="CONTINUE_LINK_INVALID")
    expires_at = dt.datetime.fromtimestamp(int(exp, 36), tz=dt.UTC)
    if ctx.now() >= expires_at:
        raise LinkExpired("this link has expired")
    return ContinueLink(rid, expires_at)
