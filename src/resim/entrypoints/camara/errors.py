"""CAMARA error responses (Commonalities 0.6): ``{"status", "code", "message"}``.

Error tree, mapped here and only here for CAMARA paths::

    CamaraError(status, code, message)        raised by CAMARA routes and dependencies
    RequestValidationError                     -> 400 INVALID_ARGUMENT (never FastAPI's 422)
      (maxAge above 2400 is 400 OUT_OF_RANGE: see routes; the CAMARA test plan asks for it)
    StarletteHTTPException 404 / 405 / other   -> NOT_FOUND / METHOD_NOT_ALLOWED / status code

Paths outside the CAMARA prefixes keep the app's own error format: the
handlers installed here wrap the ones already registered and delegate to them.
The ``x-correlator`` header is added by :mod:`resim.entrypoints.camara.correlator`
to every response of a CAMARA path, errors included.

Messages never echo the request (a token, a phone number): they name the field
and the rule only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from resim.entrypoints.camara.correlator import install_correlator

Handler = Callable[[Request, Any], Awaitable[Response] | Response]

# Status -> (code, message) for errors that carry no code of their own.
GENERIC: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param."),
    401: (
        "UNAUTHENTICATED",
        "Request not authenticated due to missing, invalid, or expired credentials."
        " A new authentication is required.",
    ),
    403: (
        "PERMISSION_DENIED",
        "Client does not have sufficient permissions to perform this action.",
    ),
    404: ("NOT_FOUND", "The specified resource is not found."),
    405: ("METHOD_NOT_ALLOWED", "The requested method is not allowed on the target resource."),
    406: ("NOT_ACCEPTABLE", "The server cannot produce a response matching the content requested."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "The request body is not in a supported format."),
    429: ("TOO_MANY_REQUESTS", "Rejected due to request rate limit overpassed."),
    500: ("INTERNAL", "Unknown server error. Typically a server bug."),
    503: ("UNAVAILABLE", "Service Unavailable."),
}


class CamaraError(Exception):
    """An answer in CAMARA's error format. ``headers`` are added to the response
    (``Retry-After`` for 429; ``WWW-Authenticate`` is added for 401)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def generic(cls, status: int, message: str | None = None) -> CamaraError:
        code, default = GENERIC.get(status, ("INTERNAL", "Unknown server error."))
        return cls(status, code, message or default)


def error_response(exc: CamaraError) -> JSONResponse:
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
    return JSONResponse(
        {"status": exc.status, "code": exc.code, "message": exc.message},
        status_code=exc.status,
        headers=headers,
    )


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        kind = str(err.get("type", "invalid"))
        if kind in ("json_invalid", "model_attributes_type", "dict_type", "model_type"):
            problems.append("the request body is not a JSON object")
        elif kind == "extra_forbidden":  # 2.2 strictness; the name is not echoed
            problems.append("the request body has a property the schema does not define")
        elif kind == "missing" and where == "body":
            problems.append("the request body is required")
        else:
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Client specified an invalid argument, request body or query param: " + "; ".join(
        dict.fromkeys(problems)
    )


def install_camara_errors(app: FastAPI, prefixes: tuple[str, ...]) -> None:
    """Render errors on paths under ``prefixes`` in CAMARA's format, with x-correlator.

    Call after the app's own handlers are installed. Calling it again (the
    subscriptions router, with its own prefix) adds prefixes; handlers are
    installed once.
    """
    known: tuple[str, ...] = getattr(app.state, "camara_prefixes", ())
    app.state.camara_prefixes = known + tuple(p for p in prefixes if p not in known)
    install_correlator(app)
    if known:
        return

    def ours(request: Request) -> bool:
        path: str = request.url.path
        return path.startswith(app.state.camara_prefixes)

    previous_validation: Handler | None = app.exception_handlers.get(RequestValidationError)
    previous_http: Handler | None = app.exception_handlers.get(StarletteHTTPException)

    async def delegate(previous: Handler | None, request: Request, exc: Exception) -> Response:
        if previous is None:
            raise exc
        result = previous(request, exc)
        return await result if isinstance(result, Awaitable) else result

    async def camara(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CamaraError)
        return error_response(exc)

    async def validation(request: Request, exc: Exception) -> Response:
        if not ours(request):
            return await delegate(previous_validation, request, exc)
        assert isinstance(exc, RequestValidationError)
        return error_response(CamaraError(400, "INVALID_ARGUMENT", _validation_message(exc)))

    async def http(request: Request, exc: Exception) -> Response:
        if not ours(request):
            return await delegate(previous_http, request, exc)
        assert isinstance(exc, StarletteHTTPException)
        error = CamaraError.generic(exc.status_code)
        error.headers.update(getattr(exc, "headers", None) or {})
        return error_response(error)

    app.add_exception_handler(CamaraError, camara)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
