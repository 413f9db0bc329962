"""Errors as JSON with a stable code and a human message; mapped here and only here.

The database not answering (server down, connection lost, no free
connection: SQLAlchemy's OperationalError, InterfaceError, a DBAPI error that
invalidated its connection, or the pool's TimeoutError) is 503 with
``Retry-After``: the request may be sent again. Under the CAMARA prefixes in
CAMARA's format (``{status, code, message}``, code UNAVAILABLE), elsewhere
``{code: DATABASE_UNAVAILABLE, message}``. The driver's message is never
shown or logged (it may quote the statement's parameters).
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from resim.adapters.db.transient import classify, unavailable
from resim.errors import (
    Conflict,
    ExternalError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    ResimError,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
    VerificationFailed,
)

log = structlog.get_logger()

STATUS: list[tuple[type[ResimError], int]] = [
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (VerificationFailed, 400),
    (Refused, 403),
    (TooManyAttempts, 429),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (ExternalError, 503),
]


DB_RETRY_AFTER_SECONDS = 5
log = structlog.get_logger()


def database_unavailable(exc: BaseException) -> bool:
    """The database did not answer (as opposed to refusing a statement)."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def status_for(exc: ResimError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(
    code: str, message: str, details: list[dict[str, str]] | None = None
) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ResimError)
    async def _resim(_request: Request, exc: ResimError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyAttempts | Unavailable) and exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=status_for(exc), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the offending input: it may be a one-time code or a PIN.
        details = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "problem": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body("INVALID_INPUT", "the request body or parameters are invalid", details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "UNAUTHENTICATED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            413: "BODY_TOO_LARGE",
        }.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def _database(request: Request, exc: sa.exc.SQLAlchemyError) -> JSONResponse:
        camara = request.url.path.startswith(getattr(request.app.state, "camara_prefixes", ()))
        # A use case not wrapped in retry_transient met a busy database (a lock,
        # the pool): the caller may try again (503), it is not a bug (500).
        outage = database_unavailable(exc)
        kind = classify(exc)
        if kind is not None and not camara and not outage:
            log.warning("db.unavailable", path=request.url.path, reason=kind.reason)
            return await _resim(request, unavailable(kind))
        if kind is None and not outage:
            raise exc  # a bug, not an outage: the server's 500 and its traceback
        original = getattr(exc, "orig", None)
        log.warning(
            "http.database_unavailable",
            error=type(exc).__name__,
            driver_error=type(original).__name__ if original is not None else None,
            method=request.method,
        )
        headers = {"Retry-After": str(DB_RETRY_AFTER_SECONDS)}
        message = "the database is not answering; try again shortly"
        if camara:
            body: dict[str, object] = {"status": 503, "code": "UNAVAILABLE", "message": message}
        else:
            body = error_body("DATABASE_UNAVAILABLE", message)
        return JSONResponse(body, status_code=503, headers=headers)
