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
        "bss",
        min_length=1,
        max_length=120,
        description="Ignored: the request's actor is the caller's credential",
    )
    eid: str | None = Field(
        None, description="Bind the order to this EID (32 digits); only if the customer gave it"
    )
    device_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The customer's device identifier; resim keeps only its SHA-256 (risk rules)",
    )
    country: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 alpha-2 country the request came from",
    )
    lock_override: bool = Field(
        False, description="Agents only: open despite a SIM-change lock (two approvers)"
    )
    justification: str | None = Field(
        None, max_length=500, description="Why the lock is overridden (required with it)"
    )


class CreatedRequest(BaseModel):
    id: str
    ref: str
    state: str
    # SEC-02: the combinations of methods this customer can verify with.
    verification_methods: list[list[str]]
    fee: dict[str, object]


class OpenAccepted(BaseModel):
    """The answer to anyone who has proved nothing yet: the same for every number."""

    status: Literal["accepted"]
    message: str


class Verification(Strict):
    """Evidence for one of the offered combinations; an agent's document check comes from
    their session, not from this body."""

    otp: str | None = Field(None, min_length=4, max_length=12, pattern=r"^\s*[0-9]+\s*$")
    pin: str | None = Field(None, min_length=4, max_length=12)
    password: str | None = Field(None, min_length=1, max_length=200)
    totp: str | None = Field(None, min_length=6, max_length=8, pattern=r"^[0-9]+$")


class Cancellation(Strict):
    actor: str = Field(
        "bss",
        min_length=1,
        max_length=120,
        description="Ignored: who cancels is the caller's credential",
    )
    note: str | None = Field(None, max_length=500)


class Review(Strict):
    reviewer: str | None = Field(
        None, min_length=1, max_length=120, description="Ignored: the signed-in reviewer decides"
    )
    decision: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=500)


class StateOnly(BaseModel):
    id: str
    state: str


class VerificationResult(StateOnly):
    session_token: str | None = Field(
        None, description="A customer's bearer session for this request only; shown once"
    )
    session_expires_at: str | None = None


class StaffLoginBody(Strict):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=256)
    totp: str = Field(min_length=6, max_length=8, pattern=r"^\s*[0-9]{6}\s*$")


class SessionOut(BaseModel):
    session_token: str
    expires_at: str
    staff_id: str
    role: str
    display_name: str


class Me(BaseModel):
    kind: str
    id: str | None
    role: str | None
    scopes: list[str]
    request_id: str | None
    brand_id: str | None


class IdentityCheckBody(Strict):
    msisdn: str = Field(min_length=3, max_length=32)
    document_type: Literal["passport", "national_id", "driving_licence", "residence_permit"]
    last_digits: str = Field(pattern=r"^[0-9]{4}$", description="The document number's last 4")


class IdentityCheckOut(BaseModel):
    id: str
    line_id: str
    expires_at: str


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


# Every JSON route may answer with these problems (400: a body that is not JSON).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": Problem} for s in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
