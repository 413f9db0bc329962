"""Read models for the API and the CLI. Never a secret in a view.

The activation code is a separate read (:func:`activation_view`) that callers
must only offer to a verified party. Every read takes the caller's ``scope``
(:mod:`resim.services.access.tenancy`): one object out of scope is NotFound, lists
hold only what the scope sees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.domain.activation import parse_activation_code
from resim.domain.model import ReplacementRequest
from resim.domain.workflow import DESCRIPTIONS, State
from resim.errors import Conflict
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.notifications.notify import request_ref


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def request_view(req: ReplacementRequest) -> dict[str, Any]:
    state = State(req.state)
    return {
        "id": req.id,
        "ref": request_ref(req.id),
        "state": state.value,
        "description": DESCRIPTIONS[state],
        "msisdn": req.msisdn,
        "reason": req.reason.value,
        "target_form": req.target_form.value,
        "delivery_mode": req.delivery.value,
        "shipment_ref": req.shipment_ref,
        "channel": req.channel.value,
        "actor": req.actor,
        "created_at": _iso(req.created_at),
        "updated_at": _iso(req.updated_at),
        "verification_methods": list(req.verification_methods),
        "verified_at": _iso(req.verified_at),
        "risk": {
            "outcome": req.risk_outcome.value if req.risk_outcome else None,
            "reasons": list(req.risk_reasons),
            "step_up_methods": (
                list(req.step_up_methods) if req.step_up_methods is not None else None
            ),
        },
        "review": {
            "required_approvals": req.required_approvals,
            "approvals": [
                {"by": a.get("by"), "at": a.get("at"), "note": a.get("note")}
                for a in req.approvals or []
            ],
            "lock_override": bool(req.lock_override),
        },
        "reviewed_by": req.reviewed_by,
        "review_note": req.review_note,
        "brand_id": req.brand_id,
        "cooling_off_until": _iso(req.cooling_off_until),
        "country": req.country,
        "fee": {"amount_minor": req.fee_minor, "currency": req.fee_currency},
        "old_iccid": req.old_iccid,
        "new_iccid": req.new_iccid,
        "old_sim_suspended": req.old_sim_suspended,
        "activation_expires_at": _iso(req.activation_expires_at),
        "install_failed_at": _iso(req.install_failed_at),
        "installed_at": _iso(req.installed_at),
        "completed_at": _iso(req.completed_at),
        "failure": (
            {"code": req.failure_code, "reason": req.failure_reason}
            if req.failure_code or req.failure_reason
            else None
        ),
    }


def get_request_view(
    ctx: ServiceContext, request_id: str, *, scope: Scope = UNRESTRICTED
) -> dict[str, Any]:
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, scope=scope)
        view = request_view(req)
        change = uow.sim_changes.for_request(req.id)
        view["sim_change"] = (
            {
                "msisdn": change.msisdn,
                "changed_at": _iso(change.changed_at),
                "old_iccid": change.old_iccid,
                "new_iccid": change.new_iccid,
            }
            if change
            else None
        )
        return view


def list_requests(
    ctx: ServiceContext,
    *,
    scope: Scope = UNRESTRICTED,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    wanted = State(state) if state else None
    with ctx.uow() as uow:
        # oldest first for the review queue; newest first otherwise
        found = uow.requests.listed(scope=scope, state=wanted, limit=limit, offset=offset)
        return [request_view(r) for r in found]


def activation_view(
    ctx: ServiceContext,
    request_id: str,
    *,
    reader: str,
    via: str,
    source: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> dict[str, Any]:
    """The activation code and its forms; only for a ready request. A secret (SEC-10).

    ``scope``: the caller's brand (another brand's request is not found).
    Every read is audited (``activation.read``: ``reader`` as the actor, e.g.
    ``staff:<id>``, ``client:<id>``, ``customer:session:<id>``; ``via`` the
    route or page; ``source`` the caller's address), in the transaction that
    reads the code: no audit row, no code. The row never holds the code.
    """
    with ctx.uow() as uow:
        # Its state and sealed code only (issue 16): the whole request is loaded
        # only to say why there is no code.
        req = repo.get_sealed_activation(uow, request_id, scope=scope)
        if req.state != State.READY or req.activation_code_enc is None:
            whole = repo.get_request(uow, request_id, scope=scope)
            raise Conflict(_why_no_code(whole), code="ACTIVATION_NOT_AVAILABLE")
        code = parse_activation_code(ctx.secrets.decrypt(req.activation_code_enc))
        uow.audit(
            at=ctx.now(),
            actor=reader,
            action="activation.read",
            object_type="request",
            object_id=req.id,
            detail={"via": via},
            source=source,
        )
        uow.commit()
        return {
            "activation_code": code.text,
            "qr_payload": code.qr_payload,
            "smdp_address": code.smdp_address,
            "matching_id": code.matching_id,
            "confirmation_code_required": code.confirmation_code_required,
            "ios_install_url": code.ios_install_url,
            "expires_at": _iso(req.activation_expires_at),
        }


def _why_no_code(req: ReplacementRequest) -> str:
    if req.state == State.COMPLETED:
        return "the activation code was used: the eSIM is installed"
    if req.state == State.EXPIRED and req.activation_code_enc is not None:
        return "the activation code expired unused and was withdrawn"
    if req.state == State.EXPIRED:
        return "the request expired before a new SIM was ordered"
    if req.state == State.CANCELLED:
        return "the request was cancelled; its activation code was withdrawn"
    return f"no activation code yet: the request is {State(req.state).value}"


def sim_changes(
    ctx: ServiceContext, *, scope: Scope = UNRESTRICTED, msisdn: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with ctx.uow() as uow:
        return [
            {
                "msisdn": r.msisdn,
                "changed_at": _iso(r.changed_at),
                "old_iccid": r.old_iccid,
                "new_iccid": r.new_iccid,
                "request_id": r.request_id,
            }
            for r in uow.sim_changes.listed(scope=scope, msisdn=msisdn or None, limit=limit)
        ]
