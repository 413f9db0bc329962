"""Request and response bodies of the BSS REST API (OpenAPI is generated from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from resim.domain.model import Reason


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRequest(Strict):
    msisdn: str = Field(
        min_length=3, max_length=32, description="The line's number, E.164 (+4520123456)"
    )
    reason: Reason
    channel: Literal["api", "portal", "agent"] = "api"
    actor: str = Field(
        "bss", min_length=1, max_length=120, description="Who opens it (agent id, system)"
    )
    eid: str | None = Field(
        None, description="Bind the order to this EID (32 digits); only if the customer gave it"
    )


class CreatedRequest(BaseModel):
    id: str
    ref: str
    state: str
    verification_methods: list[str]
    fee: dict[str, object]


class Verification(Strict):
    otp: str = Field(min_length=4, max_length=12, pattern=r"^\s*[0-9]+\s*$")
    pin: str | None = Field(None, min_length=4, max_length=12)


class Cancellation(Strict):
    actor: str = Field("bss", min_length=1, max_length=120)
    note: str | None = Field(None, max_length=500)


class Review(Strict):
    reviewer: str = Field(min_length=1, max_length=120)
    decision: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=500)


class StateOnly(BaseModel):
    id: str
    state: str


class Activation(BaseModel):
    activation_code: str
    qr_payload: str
    smdp_address: str
    matching_id: str
    confirmation_code_required: bool
    ios_install_url: str
    expires_at: str | None
    qr_png_url: str
    qr_svg_url: str


class Problem(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = Field(
        None, description="For INVALID_INPUT: each field and its problem (never the input)"
    )


class View(BaseModel):
    """A read model: the fields listed are documented; fields a view gains later pass through."""

    model_config = ConfigDict(extra="allow")


class RiskView(View):
    outcome: str | None
    reasons: list[dict[str, Any]]


class FeeView(View):
    amount_minor: int
    currency: str | None


class FailureView(View):
    code: str | None
    reason: str | None


class SimChangeView(View):
    msisdn: str
    changed_at: str | None
    old_iccid: str | None
    new_iccid: str


class SimChangeRecord(SimChangeView):
    request_id: str | None


class RequestView(View):
    """A replacement request as the BSS sees it (services.queries.request_view). No secrets."""

    id: str
    ref: str
    state: str
    description: str
    msisdn: str
    reason: str
    channel: str
    actor: str
    created_at: str | None
    updated_at: str | None
    verification_methods: list[str]
    verified_at: str | None
    risk: RiskView
    reviewed_by: str | None
    fee: FeeView
    old_iccid: str | None
    new_iccid: str | None
    old_sim_suspended: bool
    activation_expires_at: str | None
    install_failed_at: str | None
    installed_at: str | None
    completed_at: str | None
    failure: FailureView | None
    sim_change: SimChangeView | None = Field(
        None, description="The SIM change record, once the number moved (single reads only)"
    )
