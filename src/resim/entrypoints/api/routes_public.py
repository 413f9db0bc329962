"""The demo's captured mail and text messages, readable in a browser.

The customer's pages (status, "this was not me") are the portal's:
:mod:`resim.entrypoints.web.portal_status`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from resim.entrypoints.api.access import Principal, allow


def mailbox_router(directory: Path) -> APIRouter:
    """The demo's captured mail, readable in a browser (only mounted by the demo)."""
    from resim.adapters.mail.capture import read_mailbox, render_mailbox_html

    demo = APIRouter(include_in_schema=False, dependencies=[allow("anyone")])

    @demo.get("/demo/mail", response_class=HTMLResponse)
    async def mailbox() -> HTMLResponse:
        messages = await run_in_threadpool(read_mailbox, directory)
        return HTMLResponse(render_mailbox_html(messages))

    return demo


def smsbox_router(directory: Path) -> APIRouter:
    """The demo's captured text messages, next to /demo/mail (only mounted by the demo)."""
    from resim.adapters.sms.capture import read_outbox, render_outbox_html

    demo = APIRouter(include_in_schema=False)

    @demo.get("/demo/sms", response_class=HTMLResponse)
    async def smsbox(principal: Annotated[Principal, allow("anyone")]) -> HTMLResponse:
        messages = await run_in_threadpool(read_outbox, directory)
        return HTMLResponse(render_outbox_html(messages))

    return demo
