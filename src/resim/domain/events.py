"""What happened to a replacement request: small frozen records, no secrets.

The aggregate (``resim.domain.request``) records one of these in
``request.events`` for every change it makes; the unit of work hands them to
``resim.services.replacement.event_handlers`` when it commits, which turns each into the
audit row and the outbox jobs it implies. So callers never write the audit
event or the job of a request change themselves.

Every event names the request, the time and the actor; ``why`` is the
transition edge's reason from the table (``domain.workflow.TRANSITIONS`` or a
sub-state table), None for a change that moves along no edge. Nothing here may
carry a one-time code, an activation code, a MatchingID or personal data: the
audit log and the job payloads are readable by operators.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestEvent:
    request_id: str
    at: dt.datetime
    actor: str
    why: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(RequestEvent):
    kind: str
    reason: str
    channel: str
    fee_minor: int
    target_form: str
    delivery_mode: str
    device_signal: bool
    country: str | None
    lock_override: bool
    verify_by: dt.datetime | None  # when an unverified request expires (None: never)


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeIssued(RequestEvent):
    """A fresh one-time code (its hash) or a continue link was issued.

    ``action``: the audit action ("request.code_resent", "request.link_sent"),
    None when another event of the same step audits it (opening, a take-over).
    """

    action: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Reconfirmed(RequestEvent):
    methods: tuple[str, ...]
    purpose: str
    source: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Verified(RequestEvent):
    methods: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class SteppedUp(RequestEvent):
    methods: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskAssessed(RequestEvent):
    outcome: str
    decision: str
    rules: tuple[str, ...]
    required_approvals: int


@dataclass(frozen=True, kw_only=True, slots=True)
class StepUpRequired(RequestEvent):
    methods: tuple[str, ...]
    rules: tuple[str, ...]
    expires_at: dt.datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Held(RequestEvent):
    rules: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalRecorded(RequestEvent):
    approvals: int
    required: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Approved(RequestEvent):
    approvers: tuple[str, ...]
    cooling_off_until: dt.datetime
    delivery: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejected(RequestEvent):
    code: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LockOverridden(RequestEvent):
    identity_check: str
    method: str
    justification: str
    required_approvals: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvisioningStarted(RequestEvent):
    """approved -> provisioning (``for_courier``: a card, reserved in the same step)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SimReserved(RequestEvent):
    iccid: str
    form: str  # "esim" (ordered at the SM-DP+) or "courier" (a card to post)


@dataclass(frozen=True, kw_only=True, slots=True)
class SmdpStepRecorded(RequestEvent):
    """A sub-step of the SM-DP+ order (``domain.substates.SMDP_STEPS``); not audited."""

    step: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class MatchingIdFromSmdp(RequestEvent):
    empty: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class MarkedReady(RequestEvent):
    expires_at: dt.datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Dispatched(RequestEvent):
    iccid: str
    shipment_ref: str


@dataclass(frozen=True, kw_only=True, slots=True)
class HandedOver(RequestEvent):
    iccid: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Installed(RequestEvent):
    """The new SIM is on the device (the cut-over job follows). ``how``: "esim",
    "activated" (a posted card, by the customer) or "handed_over" (in a store)."""

    how: str
    iccid: str | None
    source: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallFailed(RequestEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class Completed(RequestEvent):
    new_iccid: str
    old_iccid: str | None
    sms_hold_until: dt.datetime | None
    port_out_block_until: dt.datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Cancelled(RequestEvent):
    from_state: str
    withdraw_iccid: str | None  # a confirmed eSIM order to withdraw at the SM-DP+


@dataclass(frozen=True, kw_only=True, slots=True)
class Expired(RequestEvent):
    from_state: str
    what: str  # the human reason ("not verified in time", ...)
    withdraw_iccid: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Failed(RequestEvent):
    code: str
    reason: str
    withdraw_iccid: str | None = None  # a confirmed eSIM order to withdraw at the SM-DP+


@dataclass(frozen=True, kw_only=True, slots=True)
class Reissued(RequestEvent):
    withdrawn_iccid: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class TakenOver(RequestEvent):
    from_channel: str
    state: str
    check_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportedNotMe(RequestEvent):
    state: str
    cancelled: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class LanguageSet(RequestEvent):
    language: str
    was: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class OldSimBarred(RequestEvent):
    """The old SIM's sub-state (``domain.substates.OLD_SIM``) changed.

    ``suspended``: the new value. ``from_request``: set when this request took
    the suspension over from an earlier request of the line (audited then).
    """

    suspended: bool
    iccid: str | None = None
    from_request: str | None = None
