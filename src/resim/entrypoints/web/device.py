"""The portal's device cookie: what lets the new-device risk rule work for self-service.

A browser gets a long-lived random value in the ``resim_device`` cookie
(HttpOnly, SameSite=Lax, Secure over https; 400 days, the longest browsers
keep one) the first time it opens a request. The portal sends
HMAC-SHA256(key, value) as the request's device id; the services store only
the SHA-256 of that, and a completed replacement makes it a known device of the
subscriber (``risk_facts.remember_origin``). So:

- the cookie value itself never reaches the database or a log;
- nobody can forge a known device without the cookie: the key is derived from
  the deployment's one-time-code pepper with its own label, never stored;
- a browser that refuses cookies, or clears them, is simply a new device.

A value that does not look like ours (wrong length or characters) is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

DEVICE_COOKIE = "resim_device"
MAX_AGE_SECONDS = 400 * 24 * 3600
_VALUE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")


def _key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"resim portal device v1", hashlib.sha256).digest()


def device_of(request: Request, pepper: bytes) -> tuple[str, str | None]:
    """(the device id to send, a new cookie value to set or None).

    The device id is the keyed hash of the browser's cookie; without a valid
    cookie a fresh value is made, and must be set on the response.
    """
    value = request.cookies.get(DEVICE_COOKIE, "")
    new: str | None = None
    if not _VALUE.match(value):
        value = new = secrets.token_urlsafe(32)
    return hmac.new(_key(pepper), value.encode(), hashlib.sha256).hexdigest(), new


def set_device_cookie(request: Request, response: Response, value: str | None) -> None:
    if value is not None:
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )


_IOS = re.compile(r"\b(?:iPhone|iPad|iPod)\b")
_ANDROID = re.compile(r"\bAndroid\b")


def device_kind(user_agent: str | None) -> str:
    """``ios``, ``android`` or ``desktop``, from the User-Agent header.

    Only chooses which way to install an eSIM the page offers first; every
    way stays on the page. An iPad that asks for desktop pages (it says
    "Macintosh") gets the QR code, which it can still use from another screen.
    """
    agent = (user_agent or "")[:512]
    if _IOS.search(agent):
        return "ios"
    if _ANDROID.search(agent):
        return "android"
    return "desktop"
