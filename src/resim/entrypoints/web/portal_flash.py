"""What the portal carries from a POST to the GET it redirects to (post/redirect/get).

No portal POST answers with a page (issue 12, finding 1): Back and reload
would show the browser's "resubmit the form?" warning, and a reload would send
the form again. Every POST answers 303; what the next page must show (an error,
the values typed, "we have sent a new code") travels in a *flash* cookie, and
the number chosen on the start page in a *draft* cookie:

* ``resim_flash``: one message for one path, read once (the page that shows it
  deletes it), for at most :data:`FLASH_TTL`.
* ``resim_draft``: the number typed on the start page, for the choose page and
  its language links, reloads and Back, for at most :data:`DRAFT_TTL`.

Both are encrypted and authenticated with the deployment's secret keys
(``ctx.secrets``, Fernet), since they may hold a phone number: a visitor can
neither read nor forge them, and the expiry inside is checked against the
service clock. They hold no secret (never a code or a token) and are
HttpOnly, SameSite=Lax, Secure on https. A cookie that does not open is
ignored: the page simply shows no message.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.entrypoints.web.portal_text import PageError
from resim.errors import ResimError
from resim.services.context import ServiceContext

FLASH_COOKIE = "resim_flash"
DRAFT_COOKIE = "resim_draft"
FLASH_TTL = dt.timedelta(minutes=5)
DRAFT_TTL = dt.timedelta(minutes=30)
_MAX_TEXT = 80  # typed values kept for the next page are cut to this


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _seal(ctx: ServiceContext, body: dict[str, Any], ttl: dt.timedelta) -> str:
    return ctx.secrets.encrypt(json.dumps({**body, "exp": (ctx.now() + ttl).isoformat()}))


def _open(ctx: ServiceContext, sealed: str | None) -> dict[str, Any] | None:
    if not sealed or len(sealed) > 3000:
        return None
    try:
        body = json.loads(ctx.secrets.decrypt(sealed))
        expires = dt.datetime.fromisoformat(body["exp"])
    except (ResimError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(body, dict) or ctx.now() >= expires:
        return None
    return body


def _set(request: Request, response: Response, name: str, value: str, ttl: dt.timedelta) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            out[key] = value[:_MAX_TEXT]
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
    return out


def redirect(
    request: Request,
    to: str,
    *,
    error: PageError | None = None,
    **values: Any,
) -> RedirectResponse:
    """303 to ``to``; ``error`` and ``values`` (short text, numbers, booleans) go to
    the page at ``to``'s path through the flash cookie."""
    response = RedirectResponse(to, status_code=303)
    if error is None and not values:
        return response
    body: dict[str, Any] = {"to": to.split("?")[0], "values": _clean(values)}
    if error is not None:
        body["error"] = {
            "msgid": error.msgid,
            "params": {
                k: v if isinstance(v, int | float) else str(v) for k, v in error.params.items()
            },
            "field": error.field,
        }
    _set(request, response, FLASH_COOKIE, _seal(_ctx(request), body, FLASH_TTL), FLASH_TTL)
    return response


def take_flash(request: Request, path: str) -> dict[str, Any] | None:
    """The values meant for ``path`` (``error`` as a PageError), or None.

    The caller deletes the cookie on its response (:func:`forget_flash`), so a
    reload no longer shows the message.
    """
    body = _open(_ctx(request), request.cookies.get(FLASH_COOKIE))
    if body is None or body.get("to") != path:
        return None
    values: dict[str, Any] = dict(body.get("values") or {})
    raw = body.get("error")
    if isinstance(raw, dict) and isinstance(raw.get("msgid"), str):
        given = raw.get("params")
        params: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        field = raw.get("field") if isinstance(raw.get("field"), str) else None
        values["error"] = PageError(raw["msgid"], params, field=field)
    return values


def forget_flash(request: Request, response: Response) -> None:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")


def set_draft(request: Request, response: Response, msisdn: str) -> None:
    """Remember the number typed on the start page (for the choose page)."""
    sealed = _seal(_ctx(request), {"msisdn": msisdn[:_MAX_TEXT]}, DRAFT_TTL)
    _set(request, response, DRAFT_COOKIE, sealed, DRAFT_TTL)


def draft_number(request: Request) -> str | None:
    body = _open(_ctx(request), request.cookies.get(DRAFT_COOKIE))
    number = body.get("msisdn") if body else None
    return number if isinstance(number, str) and number else None
