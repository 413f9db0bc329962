"""Request body limits for every route of the app (issue 13, finding 3).

Without a limit Starlette reads a body whole into memory before a route sees
it: eight anonymous 100 MB posts took an API process from 222 MB to over a
gigabyte, and most of it stayed. :class:`BodyLimitMiddleware` is a pure ASGI
middleware in front of every route (the BSS API, CAMARA, the ES2+ callback,
the portal and the console):

* a ``Content-Length`` above the route's limit is answered 413 at once; the
  body is never read;
* a body without one (chunked) is counted as it streams in; the moment it
  goes over, reading stops (the route's ``receive`` raises
  :class:`BodyTooLarge`), whatever the route was about to answer is dropped,
  and the caller gets the 413;
* the 413 says ``Connection: close``, so the server stops taking the rest.

Limits are per path prefix, the longest prefix winning (:data:`FORM_LIMIT`
for the pages' forms, :data:`ES2_LIMIT` for the SM-DP+'s callbacks); any
other path gets the default (``RESIM_MAX_BODY_BYTES``, 64 KiB: every JSON body
resim takes is well under it). No route takes uploads (an identity check
records the document's type and last digits, never an image); a route that
does must get its own entry sized for it.

The 413 is in the format of the path: CAMARA's ``{status, code, message}``
under the CAMARA prefixes, an ES2+ failure header for the ES2+ callback,
resim's ``{code, message}`` elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resim.adapters.es2 import wire

KIB = 1024
DEFAULT_LIMIT = 64 * KIB
# The portal's and console's url-encoded forms (a number, a few fields).
FORM_LIMIT = 16 * KIB
# handleDownloadProgressInfo (SGP.22 5.3.5): a header, EID, ICCID, profile type,
# a timestamp, a status and an optional base64 ProfileInstallationResult of a
# few hundred bytes; under 4 KiB in practice.
ES2_LIMIT = 32 * KIB
CODE = "BODY_TOO_LARGE"
ADMIN_PROTOCOL = wire.ADMIN_PROTOCOL_HEADER.lower().encode()


def route_limits() -> tuple[tuple[str, int], ...]:
    """Path prefixes with limits of their own (everything else: the default)."""
    return (
        ("/portal/", FORM_LIMIT),
        ("/console/", FORM_LIMIT),
        ("/not-me/", FORM_LIMIT),
        (wire.PATH_PREFIX, ES2_LIMIT),
    )


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body goes over the limit.

    An HTTPException so that FastAPI's body parsing passes it on unchanged
    (it turns any other exception into a 400); the middleware answers it.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))
        self.limit = limit


def _message(limit: int) -> str:
    return f"the request body is larger than the {limit} bytes allowed here"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimitMiddleware:
    """See the module docstring. ``camara_prefixes`` is read per request (the
    CAMARA routers register their prefixes while the app is being built)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int = DEFAULT_LIMIT,
        limits: Sequence[tuple[str, int]] = (),
        camara_prefixes: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        # longest prefix first, so /gsma/rsp2/es2plus/x beats a shorter one
        self.limits = sorted(limits, key=lambda item: len(item[0]), reverse=True)
        self.camara_prefixes = camara_prefixes

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit_for(path)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(path, limit, send)
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the route's answer after the overflow is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if over and not started:
            await self._refuse(path, limit, send)

    async def _refuse(self, path: str, limit: int, send: Send) -> None:
        status, body = self._body(path, limit)
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        if path.startswith(wire.PATH_PREFIX):
            headers.append((ADMIN_PROTOCOL, wire.ADMIN_PROTOCOL.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _body(self, path: str, limit: int) -> tuple[int, dict[str, object]]:
        message = _message(limit)
        if path.startswith(self.camara_prefixes()):
            return 413, {"status": 413, "code": CODE, "message": message}
        if path.startswith(wire.PATH_PREFIX):
            # ES2+ (SGP.22 6.5.1.4): a function failure in the header; 1.6/2.1
            # "invalid", so the SM-DP+ does not resend the same body.
            header = wire.failure_header("1.6", "2.1", message=message)
            return 413, {"header": wire.dump(header)}
        return 413, {"code": CODE, "message": message}
