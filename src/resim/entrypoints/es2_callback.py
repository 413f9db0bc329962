"""The operator's ES2+ endpoint: handleDownloadProgressInfo from the SM-DP+ (SGP.22 5.3.5).

``POST /gsma/rsp2/es2plus/handleDownloadProgressInfo``. Outcomes:

- caller not authenticated (:class:`CallbackAuth` finds no peer): HTTP 401
  with an ES2+ body 1.1/1.1; the body is not processed;
- body not valid: HTTP 200 with an ES2+ Failed body, 1.6/2.2 (mandatory field
  missing) or 1.6/2.1 (invalid). SGP.22 6.5.1 reports function errors in the
  JSON header with HTTP 200; the SM-DP+ reads them as final and does not resend
  a body that will never be valid;
- the handler raised NotFound: 200, Failed 8.2.1/3.9 (ICCID unknown to us);
  another DomainError: 200, Failed 1.6/2.1;
- the handler raised ExternalError or anything unexpected: HTTP 503 (body
  1.2/4.2), so the SM-DP+ retries later;
- success: HTTP 204, no body (with ``X-Admin-Protocol``, like every ES2+ answer).

Who may call (SGP.22 2.6.6: ES2+ peers authenticate each other with mutual
TLS): when resim terminates TLS with a client CA (``RESIM_API_TLS_CLIENT_CA_FILE``),
an SM-DP+ is known by its client certificate (``RESIM_SMDP_CALLBACK_CLIENTS``,
:mod:`resim.adapters.es2.peers`), read from the ASGI TLS extension that
:mod:`resim.entrypoints.tls` fills; the bearer token is then not accepted.
Behind a proxy that terminates TLS resim sees no certificate, and the bearer
token (``RESIM_SMDP_CALLBACK_TOKEN``) with the agreed requester id is the only
way in. Either way the body's functionRequesterIdentifier must be the peer's,
and a peer limited to some brands reports only on their ICCIDs (another
brand's ICCID is "unknown", 8.2.1/3.9, as if it did not exist).

The route is a plain ``def``: FastAPI runs it in its thread pool, so ``handle``
may do blocking database work. ``handle`` must be idempotent: an SM-DP+
retries with the same functionCallIdentifier after a 503 or a lost answer.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from resim.adapters.es2 import wire
from resim.adapters.es2.peers import CertificatePeers
from resim.domain.identifiers import normalize_eid, normalize_iccid
from resim.entrypoints.tls import client_certificate
from resim.errors import DomainError, InvalidInput, NotFound
from resim.services.ports import CallbackPeer, DownloadProgress

BEARER_TOKEN = "bearer-token"  # noqa: S105 - how a caller was authenticated, not a token

PATH = wire.PATH_PREFIX + wire.HANDLE_DOWNLOAD_PROGRESS_INFO

_ES2_FAILURE = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["header"],
                "properties": {"header": {"type": "object"}},
            }
        }
    }
}
# What the route answers besides 204, as the module docstring lists (OpenAPI).
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "ES2+ function failure (body not valid, ICCID unknown)", **_ES2_FAILURE},
    401: {"description": "caller not authenticated (ES2+ 1.1/1.1)", **_ES2_FAILURE},
    503: {"description": "not processed now; the SM-DP+ retries (ES2+ 1.2/4.2)", **_ES2_FAILURE},
}


async def _raw_body(request: Request) -> bytes:
    # Read in the event loop so the sync route below gets bytes, whatever they are.
    return await request.body()


@dataclass(frozen=True)
class CallbackAuth:
    """Who a callback is from (see the module docstring), or None: refused.

    ``certificates``: the peers known by client certificate; when set, a
    callback must come with one of them and the token is not looked at.
    ``token`` / ``token_requester``: the bearer token and the requester id it
    stands for (empty token: no token accepted).
    """

    certificates: CertificatePeers | None = None
    token: str = ""
    token_requester: str = ""

    def __call__(
        self, *, authorization: str | None, requester: str, client_cert: str | None
    ) -> CallbackPeer | None:
        if self.certificates is not None:
            peer = self.certificates.identify(client_cert) if client_cert else None
            return peer if peer is not None and peer.requester_id == requester else None
        given = (authorization or "").removeprefix("Bearer ").strip()
        if (
            self.token
            and hmac.compare_digest(given.encode(), self.token.encode())
            and requester == self.token_requester
        ):
            return CallbackPeer(requester, BEARER_TOKEN)
        return None


def _es2(
    status_code: int, subject: str, reason: str, message: str, ident: str | None = None
) -> Response:
    header = wire.failure_header(subject, reason, message=message, subject_identifier=ident)
    return JSONResponse(
        {"header": wire.dump(header)},
        status_code=status_code,
        headers={wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL},
    )


def _requester_of(data: dict[str, Any] | None) -> str:
    header = data.get("header") if data else None
    value = header.get("functionRequesterIdentifier") if isinstance(header, dict) else None
    return value if isinstance(value, str) else ""


def build_es2_callback_router(
    handle: Callable[[DownloadProgress, CallbackPeer], None],
    authenticate: Callable[..., CallbackPeer | None],
) -> APIRouter:
    """A router with the handleDownloadProgressInfo route (see the module docstring).

    ``authenticate`` is called with the keywords ``authorization`` (the header
    or None), ``requester`` (the body's functionRequesterIdentifier, "" when
    absent or unreadable) and ``client_cert`` (PEM or None), as
    :class:`CallbackAuth` is. ``handle`` gets the notification and the
    authenticated peer; it must refuse (NotFound) an ICCID outside the peer's brands.
    """
    router = APIRouter()
    log = structlog.get_logger().bind(component="es2-callback")

    @router.post(
        PATH, status_code=204, response_class=Response, response_model=None, responses=RESPONSES
    )
    def handle_download_progress_info(
        request: Request,
        body: Annotated[bytes, Depends(_raw_body)],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        data = loaded if isinstance(loaded, dict) else None
        requester = _requester_of(data)
        cert = client_certificate(request.scope)
        peer = authenticate(authorization=authorization, requester=requester, client_cert=cert)
        if peer is None:
            log.warning(
                "es2.callback.unauthenticated",
                requester_id=requester or None,
                client_certificate=cert is not None,
            )
            return _es2(401, "1.1", "1.1", "function requester unknown or not authenticated")
        if data is None:
            return _es2(200, "1.6", "2.1", "body is not a JSON object")
        try:
            parsed = wire.HandleDownloadProgressInfoRequest.model_validate(data)
        except ValidationError as exc:
            bad = wire.invalid_status(exc)
            log.warning("es2.callback.invalid", field=bad.subject_identifier)
            return _es2(
                200, bad.subject_code, bad.reason_code, bad.message or "", bad.subject_identifier
            )
        try:
            iccid = normalize_iccid(parsed.iccid)
        except InvalidInput as exc:
            log.warning("es2.callback.invalid", field="iccid")
            return _es2(200, "1.6", "2.1", exc.message, "iccid")
        try:
            eid = normalize_eid(parsed.eid) if parsed.eid else None
        except InvalidInput as exc:
            log.warning("es2.callback.invalid", field="eid")
            return _es2(200, "1.6", "2.1", exc.message, "eid")
        progress = parsed.to_progress(iccid=iccid, eid=eid)
        bound = log.bind(
            call_id=progress.call_id, iccid=iccid, point=progress.notification_point_id,
            status=progress.status, via=peer.via,
        )  # fmt: skip
        try:
            handle(progress, peer)
        except NotFound as exc:
            bound.info("es2.callback.refused", code=exc.code)
            return _es2(200, "8.2.1", "3.9", "ICCID unknown to the operator", "iccid")
        except DomainError as exc:
            bound.info("es2.callback.refused", code=exc.code)
            return _es2(200, "1.6", "2.1", exc.message)
        except Exception:
            # ExternalError or a bug: the SM-DP+ retries on 5xx, so nothing is lost.
            bound.exception("es2.callback.failed")
            return _es2(503, "1.2", "4.2", "temporarily unable to process; retry later")
        bound.info("es2.callback.handled")
        # SGP.22 6.5.1: every ES2+ answer carries X-Admin-Protocol, the empty 204 too.
        return Response(status_code=204, headers={wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL})

    return router
