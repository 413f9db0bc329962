"""FastAPI dependencies: the service context (callers: see ``access.allow``)."""

from __future__ import annotations

from fastapi import Request

from resim.services.context import ServiceContext


async def get_ctx(request: Request) -> ServiceContext:
    """The app's ServiceContext (async: a sync dependency costs a thread-pool hop)."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx
