"""The SM-DP+ emulator as an ASGI app: real ES2+ on the wire, admin endpoints beside it.

ES2+ (operator -> SM-DP+, SGP.22 section 5.3 / 6.5): ``POST
/gsma/rsp2/es2plus/{downloadOrder,confirmOrder,cancelOrder,releaseProfile}``.
Every answer is HTTP 200 with a JSON ``header.functionExecutionStatus``, also
for errors, and carries ``X-Admin-Protocol``. Checks run in SGP.22 order:

1. body is a JSON object with a valid header, else 1.6/2.2 (missing) or 1.6/2.1;
2. functionRequesterIdentifier in ``config.allowed_requesters``, else 1.1/1.1;
3. injected fault (busy 1.2/4.4, HTTP 500, held answer), see :mod:`.faults`;
4. function fields, else 1.6/2.2 or 1.6/2.1 naming the field;
5. the core's state machine (:class:`resim.emulator.core.SmdpCore`).

Liberal on input: padded or unpadded ICCIDs, absent or empty optional
fields, unknown fields ignored, any request X-Admin-Protocol accepted.
Admin endpoints live under ``/emulator/`` (:mod:`resim.emulator.admin`); they
have no authentication, so bind the emulator to loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from resim.adapters.es2 import wire
from resim.emulator.admin import build_admin_router
from resim.emulator.core import SmdpCore
from resim.emulator.faults import FaultInjector, FaultSettings
from resim.emulator.model import SmdpRefusal


@dataclass(frozen=True)
class EmulatorConfig:
    """Start-up settings of the emulator; faults can change later via PUT /emulator/faults.

    ``allowed_requesters`` empty means any operator id is accepted.
    ``callback_url`` is the operator's base URL (callbacks go to
    ``<callback_url>/gsma/rsp2/es2plus/handleDownloadProgressInfo``); None
    skips callbacks. ``requester_id`` is this SM-DP+'s functionRequesterIdentifier
    in callbacks. ``timeout_hold_s`` must exceed the client's timeout.
    ``callback_client_cert`` (certificate and key files) and
    ``callback_ca_bundle``: callbacks over mutual TLS, as a standard SM-DP+
    makes them (SGP.22 2.6.6).
    """

    smdp_address: str = "smdp.resim.test"
    allowed_requesters: tuple[str, ...] = ("resim",)
    callback_url: str | None = None
    callback_token: str | None = None
    callback_client_cert: tuple[str, str] | None = None
    callback_ca_bundle: str | None = None
    requester_id: str = "smdp-emulator"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    http5xx_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold_s: float = 30.0
    timeout_executes: bool = True
    seed: int | None = None
    callback_attempts: int = 3
    callback_timeout_s: float = 5.0
    callback_backoff_s: float = 0.2

    def fault_settings(self) -> FaultSettings:
        return FaultSettings(
            latency_ms=self.latency_ms,
            jitter_ms=self.jitter_ms,
            error_rate=self.error_rate,
            http5xx_rate=self.http5xx_rate,
            timeout_rate=self.timeout_rate,
            timeout_hold_s=self.timeout_hold_s,
            timeout_executes=self.timeout_executes,
        )


def build_emulator_app(core: SmdpCore, config: EmulatorConfig) -> FastAPI:
    """An app serving ``core`` over ES2+; ``config.smdp_address`` must equal the core's."""
    if config.smdp_address.lower() != core.smdp_address.lower():
        raise ValueError("config.smdp_address differs from the core's SM-DP+ address")
    faults = FaultInjector(config.fault_settings(), seed=config.seed)
    app = FastAPI(title="resim SM-DP+ emulator", docs_url=None, redoc_url=None)
    for function, handler in _handlers(core).items():
        app.add_api_route(
            wire.PATH_PREFIX + function,
            _endpoint(function, handler, core, config, faults),
            methods=["POST"],
            include_in_schema=False,
        )
    app.include_router(build_admin_router(core, config, faults))
    return app


Handler = Callable[[Any, str, str], dict[str, Any]]


def _handlers(core: SmdpCore) -> dict[str, tuple[type[BaseModel], Handler]]:
    """Per function: the request model and a call into the core returning the body."""

    def download(m: wire.DownloadOrderRequest, requester: str, call_id: str) -> dict[str, Any]:
        iccid = core.download_order(
            requester=requester, call_id=call_id, iccid=m.iccid,
            profile_type=m.profile_type, eid=m.eid,
        )  # fmt: skip
        return {"iccid": wire.pad_iccid(iccid)}

    def confirm(m: wire.ConfirmOrderRequest, requester: str, call_id: str) -> dict[str, Any]:
        out = core.confirm_order(
            requester=requester, call_id=call_id, iccid=m.iccid, release_flag=m.release_flag,
            matching_id=m.matching_id, eid=m.eid, confirmation_code=m.confirmation_code,
            smds_address=m.smds_address,
        )  # fmt: skip
        body: dict[str, Any] = {"matchingId": out.matching_id, "smdpAddress": out.smdp_address}
        if out.eid:
            body["eid"] = out.eid
        return body

    def cancel(m: wire.CancelOrderRequest, requester: str, call_id: str) -> dict[str, Any]:
        core.cancel_order(
            requester=requester, call_id=call_id, iccid=m.iccid,
            final_profile_status=m.final_profile_status_indicator,
            matching_id=m.matching_id, eid=m.eid,
        )  # fmt: skip
        return {}

    def release(m: wire.ReleaseProfileRequest, requester: str, call_id: str) -> dict[str, Any]:
        core.release_profile(requester=requester, call_id=call_id, iccid=m.iccid)
        return {}

    return {
        wire.DOWNLOAD_ORDER: (wire.DownloadOrderRequest, download),
        wire.CONFIRM_ORDER: (wire.ConfirmOrderRequest, confirm),
        wire.CANCEL_ORDER: (wire.CancelOrderRequest, cancel),
        wire.RELEASE_PROFILE: (wire.ReleaseProfileRequest, release),
    }


def _endpoint(
    function: str,
    spec: tuple[type[BaseModel], Handler],
    core: SmdpCore,
    config: EmulatorConfig,
    faults: FaultInjector,
) -> Callable[[Request], Any]:
    model, handler = spec
    log = structlog.get_logger().bind(component="smdp-emulator", function=function)

    async def endpoint(request: Request) -> Response:
        if delay := faults.delay_s():
            await asyncio.sleep(delay)
        data = _json_object(await request.body())
        if data is None:
            return _failure("1.6", "2.1", "body is not a JSON object")
        if not isinstance(data.get("header"), dict):
            code = "2.2" if data.get("header") is None else "2.1"
            return _failure("1.6", code, "header is missing or not an object", "header")
        try:
            header = wire.RequestHeader.model_validate(data["header"])
        except ValidationError as exc:
            return _invalid(exc, "header")
        requester, call_id = header.function_requester_identifier, header.function_call_identifier
        if config.allowed_requesters and requester not in config.allowed_requesters:
            refusal = SmdpRefusal("1.1", "1.1", "function requester unknown")
            core.record_refusal(function=function, call_id=call_id, requester=requester,
                                refusal=refusal)  # fmt: skip
            return _failure("1.1", "1.1", refusal.message)
        fault = faults.draw()
        if fault is not None:
            log.info("emulator.fault.injected", fault=fault, call_id=call_id)
            core.record_fault(function=function, call_id=call_id, requester=requester, kind=fault)
        if fault == "busy":
            return _failure("1.2", "4.4", "SM-DP+ busy, retry later")
        if fault == "http5xx":
            return Response("injected server error", status_code=500, media_type="text/plain")
        if fault != "timeout":
            return _execute(model, handler, data, requester, call_id)
        settings = faults.settings
        if settings.timeout_executes:
            answer = _execute(model, handler, data, requester, call_id)
        else:
            answer = _failure("1.2", "4.4", "held and not executed")
        await asyncio.sleep(settings.timeout_hold_s)
        return answer

    def _execute(
        model: type[BaseModel], handler: Handler, data: dict[str, Any], requester: str, call_id: str
    ) -> Response:
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            return _invalid(exc, None)
        try:
            body = handler(parsed, requester, call_id)
        except SmdpRefusal as refusal:
            return _failure(
                refusal.subject_code, refusal.reason_code, refusal.message,
                refusal.subject_identifier,
            )  # fmt: skip
        return _reply({"header": wire.dump(wire.success_header()), **body})

    return endpoint


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _reply(body: dict[str, Any]) -> Response:
    return JSONResponse(body, headers={wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL})


def _failure(
    subject: str, reason: str, message: str, subject_identifier: str | None = None
) -> Response:
    header = wire.failure_header(
        subject, reason, message=message, subject_identifier=subject_identifier
    )
    return _reply({"header": wire.dump(header)})


def _invalid(exc: ValidationError, prefix: str | None) -> Response:
    data = wire.invalid_status(exc, prefix)
    return _failure(
        data.subject_code, data.reason_code, data.message or "", data.subject_identifier
    )
