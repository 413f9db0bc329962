"""CSRF protection for the pages' POST forms (no JavaScript needed).

A signed double-submit token: the browser holds a random value in the
``resim_csrf`` cookie (HttpOnly, SameSite=Lax) and every form carries
``csrf_token`` = HMAC-SHA256(key, cookie value). A POST is accepted only when
the field matches the cookie it was derived from, so another site can neither
read the field nor plant a matching pair (it cannot compute the HMAC without
the server's key). The key is derived from the deployment's one-time-code
pepper with its own label, so it differs per deployment and is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

CSRF_COOKIE = "resim_csrf"
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """The form's token is missing or does not match the browser's cookie."""


def _key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"resim web csrf v1", hashlib.sha256).digest()


def _sign(pepper: bytes, nonce: str) -> str:
    return hmac.new(_key(pepper), nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, pepper: bytes) -> tuple[str, str | None]:
    """The token for this page's forms, and a new cookie value to set (or None).

    Reuses the browser's cookie when it has one, so several open tabs work.
    """
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(nonce) <= 100:
        return _sign(pepper, nonce), None
    nonce = secrets.token_urlsafe(24)
    return _sign(pepper, nonce), nonce


def set_csrf_cookie(request: Request, response: Response, nonce: str | None) -> None:
    if nonce is not None:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )


def check_csrf(request: Request, pepper: bytes, submitted: str | None) -> None:
    """Raise :class:`CsrfError` unless ``submitted`` matches the browser's cookie."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not submitted:
        raise CsrfError("missing CSRF token")
    if not hmac.compare_digest(_sign(pepper, nonce), submitted):
        raise CsrfError("CSRF token does not match")
