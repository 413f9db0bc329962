"""Pages a customer reaches from a message: the status page and "this was not me".

The "not me" link does nothing on GET (mail scanners follow links); the page
shows one button that POSTs. Both pages show no personal data and no secret.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.errors import ResimError
from resim.services import cancel, queries
from resim.services.context import ServiceContext

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
router = APIRouter(include_in_schema=False, dependencies=[allow("anyone")])


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;"
        "max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
        "button{font-size:1rem;padding:.6rem 1.2rem}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


@router.get("/status/{request_id}", response_class=HTMLResponse)
async def status_page(request_id: str, ctx: Ctx) -> HTMLResponse:
    try:
        view = await run_in_threadpool(queries.get_request_view, ctx, request_id)
    except ResimError:
        return _page("Request not found", "<p>We could not find this request.</p>", 404)
    return _page(
        f"Request {view['ref']}",
        f"<p><strong>{escape(view['state'].replace('_', ' '))}</strong></p>"
        f"<p>{escape(view['description'])}</p>",
    )


@router.get("/not-me/{token}", response_class=HTMLResponse)
async def not_me_form(token: str) -> HTMLResponse:
    return _page(
        "This was not me",
        "<p>If you did not ask for a new SIM, press the button. We stop the request "
        "at once and keep your number on your current SIM.</p>"
        f"<form method='post' action='/not-me/{escape(token)}'>"
        "<button type='submit'>Stop this request</button></form>",
    )


@router.post("/not-me/{token}", response_class=HTMLResponse)
async def not_me(token: str, ctx: Ctx) -> HTMLResponse:
    try:
        outcome = await run_in_threadpool(cancel.report_not_me, ctx, token)
    except ResimError:
        return _page(
            "Link already used",
            "<p>This link is not valid or was already used. Nothing was changed.</p>",
            404,
        )
    if outcome.cancelled:
        done = "The request is stopped and we have recorded that it was not you."
    else:
        done = "We have recorded that it was not you, and our fraud team will contact you."
    return _page(
        "Thank you",
        f"<p>{done} No new SIM can be requested for your account until we have "
        "spoken with you.</p>",
    )


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
