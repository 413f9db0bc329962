"""The demo's "simulate the phone installing this eSIM" button (demo only).

A demo has no phone to scan the QR code. When ``resim demo`` runs with its
built-in SM-DP+ emulator it sets ``ApiConfig.demo_phone_url`` to the
emulator's address; then, and only then, the portal's eSIM block shows a
button (template ``portal/_demo_phone.html.j2``) whose POST asks the
emulator's phone to download and install the profile
(``POST /emulator/phone/install``), as ``resim demo --walkthrough`` does. The
SM-DP+ then sends its ES2+ callbacks and the request goes on as with a real
phone. Production settings never set ``demo_phone_url``
(:func:`resim.bootstrap.build_api_config` has no such setting), so there the
button is absent and the route does not exist (404).

Only the verified customer session of the request may press it (the same
check as "I have installed it"), with a valid CSRF token.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.entrypoints.api.access import allow
from resim.entrypoints.web.portal import ctx_of, source_ip
from resim.entrypoints.web.portal_status import _owned_action, _status_page, owner_session
from resim.entrypoints.web.portal_text import GENERIC, PageError
from resim.errors import ResimError
from resim.services.replacement import queries

INSTALL_PATH = "/emulator/phone/install"


def install_demo_phone(app: FastAPI, emulator_url: str) -> None:
    """Add the button's route; ``emulator_url``: the demo's SM-DP+ emulator (loopback)."""
    app.state.demo_phone_url = emulator_url
    router = APIRouter(include_in_schema=False, dependencies=[allow("anyone")])

    @router.post("/portal/requests/{request_id}/demo/install")
    async def simulate_install(request_id: str, request: Request) -> Response:
        form = await _owned_action(request, request_id)
        if isinstance(form, Response):
            return form

        def install() -> bool:
            session_id = owner_session(request, request_id)
            if session_id is None:
                return False
            try:
                act = queries.activation_view(
                    ctx_of(request),
                    request_id,
                    reader=f"customer:session:{session_id}",
                    via="portal",
                    source=source_ip(request),
                )
            except ResimError:
                return False
            answer = httpx.post(
                f"{emulator_url}{INSTALL_PATH}",
                json={"activation_code": act["qr_payload"]},
                timeout=20,
            )
            return answer.status_code == 200

        try:
            installed = await run_in_threadpool(install)
        except httpx.HTTPError:
            installed = False
        if not installed:
            return await _status_page(request, request_id, error=PageError(GENERIC), status=409)
        return RedirectResponse(f"/portal/requests/{request_id}", status_code=303)

    app.include_router(router)
