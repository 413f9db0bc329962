"""Admin endpoints of the emulator under ``/emulator/`` (test and demo tooling).

    POST /emulator/stock          add profiles: {"profile_type", "count"? | "iccids"?, "owner"?}
    GET  /emulator/profiles       profile states (?state=&profile_type=); never a code
    GET  /emulator/profiles/{iccid}  one profile's state: {"iccid", "state", "updated_at"};
                                  404 unknown. NOT ES2+ (which has no status query):
                                  what resim's reconcile job asks when configured with
                                  RESIM_SMDP_STATUS_QUERY=emulator
    GET  /emulator/calls          the ES2+ call log (?function=)
    GET  /emulator/faults         current latency and fault settings
    PUT  /emulator/faults         change them: any subset of the fields, plus "seed"
    POST /emulator/phone/install  play a phone: {"activation_code", "eid"?, "fail"?,
                                  "confirmation_code"?}; sends the callbacks
    GET  /emulator/health         liveness and stock counts

Refusals are JSON ``{"refused": <reason>, "message": ...}``: 422 for an
unreadable activation code or bad admin input, 409 when the code cannot be
used (wrong SM-DP+, unknown, cancelled, used, not released, other EID).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from resim.domain.activation import parse_activation_code
from resim.emulator.callbacks import CallbackSender, CallbackTarget
from resim.emulator.faults import FaultInjector
from resim.emulator.model import PhoneRefusal, SmdpRefusal
from resim.errors import InvalidInput

if TYPE_CHECKING:
    from resim.emulator.app import EmulatorConfig
    from resim.emulator.core import SmdpCore


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StockIn(_In):
    profile_type: str = Field(min_length=1)
    count: int | None = Field(default=None, ge=1, le=100_000)
    iccids: list[str] | None = None
    owner: str | None = None


class FaultsIn(_In):
    latency_ms: float | None = Field(default=None, ge=0)
    jitter_ms: float | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    http5xx_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_hold_s: float | None = Field(default=None, ge=0)
    timeout_executes: bool | None = None
    seed: int | None = None


class InstallIn(_In):
    activation_code: str
    eid: str | None = None
    fail: bool = False
    confirmation_code: str | None = None


def _refused(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"refused": reason, "message": message}, status_code=status)


def _plain(obj: Any) -> dict[str, Any]:
    out = dataclasses.asdict(obj)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


def build_admin_router(core: SmdpCore, config: EmulatorConfig, faults: FaultInjector) -> APIRouter:
    router = APIRouter(prefix="/emulator")
    log = structlog.get_logger().bind(component="smdp-emulator")
    sender = (
        CallbackSender(
            CallbackTarget(
                base_url=config.callback_url,
                token=config.callback_token,
                client_cert=config.callback_client_cert,
                ca_bundle=config.callback_ca_bundle,
                attempts=config.callback_attempts,
                timeout_s=config.callback_timeout_s,
                backoff_s=config.callback_backoff_s,
            )
        )
        if config.callback_url
        else None
    )

    @router.get("/health")
    def health() -> dict[str, Any]:
        states = Counter(p.state.value for p in core.profiles())
        return {"status": "ok", "smdp_address": core.smdp_address, "profiles": dict(states)}

    @router.post("/stock", response_model=None)
    def add_stock(body: StockIn) -> dict[str, Any] | JSONResponse:
        if (body.count is None) == (body.iccids is None):
            return _refused(422, "invalid_input", "give exactly one of count or iccids")
        try:
            if body.iccids is not None:
                iccids = core.add_stock(body.profile_type, body.iccids, owner=body.owner)
            else:
                iccids = core.add_generated_stock(
                    body.profile_type, body.count or 0, owner=body.owner
                )
        except InvalidInput as exc:
            return _refused(422, "invalid_input", exc.message)
        return {"profile_type": body.profile_type, "iccids": iccids}

    @router.get("/profiles")
    def profiles(state: str | None = None, profile_type: str | None = None) -> list[dict[str, Any]]:
        return [
            _plain(p)
            for p in core.profiles()
            if (state is None or p.state.value == state)
            and (profile_type is None or p.profile_type == profile_type)
        ]

    @router.get("/profiles/{iccid}", response_model=None)
    def profile_state(iccid: str) -> dict[str, Any] | JSONResponse:
        try:
            view = core.profile(iccid)
        except (InvalidInput, SmdpRefusal):
            return _refused(404, "unknown_iccid", "no profile with that ICCID")
        return {
            "iccid": view.iccid,
            "state": view.state.value,
            "updated_at": view.updated_at.isoformat(),
        }

    @router.get("/calls")
    def calls(function: str | None = None) -> list[dict[str, Any]]:
        return [_plain(c) for c in core.calls(function)]

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return faults.as_dict()

    @router.put("/faults", response_model=None)
    def put_faults(body: FaultsIn) -> dict[str, Any] | JSONResponse:
        changes = body.model_dump(exclude_none=True)
        seed = changes.pop("seed", None)
        try:
            faults.update(seed=seed, **changes)
        except ValueError as exc:
            return _refused(422, "invalid_input", str(exc))
        return faults.as_dict()

    @router.post("/phone/install", response_model=None)
    async def phone_install(body: InstallIn) -> dict[str, Any] | JSONResponse:
        try:
            code = parse_activation_code(body.activation_code)
        except InvalidInput as exc:
            return _refused(422, "invalid_code", exc.message)
        try:
            notes = core.download_and_install(
                code.matching_id,
                code.smdp_address,
                eid=body.eid,
                fail_install=body.fail,
                confirmation_code=body.confirmation_code,
            )
        except PhoneRefusal as refusal:
            log.info("emulator.phone.refused", reason=refusal.reason)
            return _refused(409, refusal.reason, refusal.message)
        summary: dict[str, Any] = {
            "iccid": notes[0].iccid,
            "eid": notes[0].eid,
            "profile_type": notes[0].profile_type,
            "state": core.profile(notes[0].iccid).state.value,
            "callbacks": [],
        }
        if sender is not None:
            deliveries = await sender.deliver(notes)
            summary["callbacks"] = [d.as_json() for d in deliveries]
            log.info(
                "emulator.phone.installed",
                iccid=summary["iccid"],
                delivered=[d.delivered for d in deliveries],
            )
        return summary

    return router
