"""``x-correlator`` on every response of a CAMARA path (Commonalities 0.6).

* A request's ``x-correlator`` is echoed unchanged on the response, success or
  error.
* One that does not match the spec's ``XCorrelator`` pattern is refused with
  400 INVALID_ARGUMENT before any route runs; that response carries a fresh
  correlator (the bad value cannot be echoed: the response header must match
  the pattern too).
* Without one, resim makes one (a UUID): the design guide lets the provider
  answer with "any valid value" when the consumer sent none, and a correlator
  in every answer helps the caller's support staff.

A pure ASGI middleware (no BaseHTTPMiddleware): it sits on the hot path of
``/sim-swap/v2/check``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The spec's pattern, ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$ ; "9-_" in a character
# class is the range 0x39..0x5F in ECMA and Python alike, so it admits
# ":;<=>?@A-Z[\]^_" too. fullmatch (not $) so a trailing newline is refused.
PATTERN = re.compile(r"[a-zA-Z0-9-_:;.\/<>{}]{0,256}")
HEADER = b"x-correlator"


def valid_correlator(value: str) -> bool:
    return PATTERN.fullmatch(value) is not None


class CorrelatorMiddleware:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(
            self.owner.state.camara_prefixes
        ):
            await self.app(scope, receive, send)
            return
        given: bytes | None = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value
                break
        if given is not None:
            text = given.decode("latin-1")
            if not valid_correlator(text):
                await _bad_correlator(send)
                return
            echo = given
        else:
            echo = str(uuid.uuid4()).encode()
        scope.setdefault("state", {})["x_correlator"] = echo.decode("latin-1")

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER]
                headers.append((HEADER, echo))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_header)


async def _bad_correlator(send: Send) -> None:
    body = json.dumps(
        {
            "status": 400,
            "code": "INVALID_ARGUMENT",
            "message": "Client specified an invalid argument: header x-correlator does not"
            " match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$",
        }
    ).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (HEADER, str(uuid.uuid4()).encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_correlator(app: FastAPI) -> None:
    """Add the middleware once; it reads ``app.state.camara_prefixes`` per request."""
    if getattr(app.state, "camara_correlator", False):
        return
    app.state.camara_correlator = True
    kwargs: dict[str, Any] = {"owner": app}
    app.add_middleware(CorrelatorMiddleware, **kwargs)
