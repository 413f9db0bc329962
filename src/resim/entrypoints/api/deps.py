"""FastAPI dependencies: the service context and the BSS bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, HTTPException, Request

from resim.services.context import ServiceContext


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def require_api_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Bearer token from RESIM_API_TOKENS; an empty list (dev) leaves the API open."""
    tokens: list[str] = request.app.state.api_tokens
    if not tokens:
        return
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not any(hmac.compare_digest(given, t) for t in tokens):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
