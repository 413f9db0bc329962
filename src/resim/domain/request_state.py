"""The replacement request's fields and its one state-changing step (``move_to``).

Pure Python; the behaviour is in ``request_opening``, ``request_deciding`` and
``request_fulfilment``, combined in ``resim.domain.request.ReplacementRequest``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.domain import events as ev
from resim.domain.kinds import (
    Channel,
    DeliveryMode,
    Reason,
    RequestKind,
    RiskOutcome,
    SimForm,
)
from resim.domain.substates import (
    InstallStep,
    OldSimStep,
    SmdpStep,
)
from resim.domain.workflow import OPEN_STATES, State, check_transition


class RequestState:
    """The request's fields, what can be read from them, and the transition table.

    Only :meth:`move_to` changes ``state``; only the methods of
    ``ReplacementRequest`` change any field (the constructor is for the mapper,
    the ``open`` factory and tests)."""

    def __init__(
        self,
        *,
        id: str,
        line_id: str,
        brand_id: str,
        subscriber_id: str,
        msisdn: str,
        reason: Reason,
        channel: Channel,
        actor: str,
        created_at: dt.datetime,
        old_iccid: str | None,
        eid: str | None = None,
        kind: RequestKind = RequestKind.REPLACEMENT,
    ) -> None:
        self.id = id
        self.kind = kind
        self.line_id = line_id
        self.brand_id = brand_id
        self.subscriber_id = subscriber_id
        self.msisdn = msisdn
        self.reason = reason
        self.channel = channel
        self.actor = actor
        self.created_at = created_at
        self.updated_at = created_at
        self.state = State.REQUESTED
        # Stored in the open-request partial index: equals line_id while open.
        self.open_line_id: str | None = line_id
        self.old_iccid = old_iccid
        self.eid = eid
        self.target_form = SimForm.ESIM
        # None on requests made before delivery modes existed: read ``delivery``.
        self.delivery_mode: DeliveryMode | None = None
        # courier: when the card was handed to the carrier and its reference
        self.dispatched_at: dt.datetime | None = None
        self.shipment_ref: str | None = None
        # the portal language the request was opened in: its messages use it
        self.language: str | None = None
        # verification
        self.otp_hash: str | None = None
        self.otp_expires_at: dt.datetime | None = None
        self.otp_attempts = 0
        self.verified_at: dt.datetime | None = None
        self.verification_methods: list[str] = []
        # every method proved, with its strength, time and who recorded it (no secrets)
        self.verification_evidence: list[dict[str, Any]] = []
        # methods the risk engine asked for on top (outcome step_up), None if none
        self.step_up_methods: list[str] | None = None
        # where the request came from (risk rules: new device or country)
        self.source_ip: str | None = None
        self.device_id: str | None = None  # SHA-256 of the device identifier
        self.country: str | None = None
        # risk and review
        self.risk_outcome: RiskOutcome | None = None
        self.risk_reasons: list[dict[str, str]] = []
        self.reviewed_by: str | None = None
        self.review_note: str | None = None
        # SEC-08 four eyes: high-risk and lock-override requests need two approvers
        self.required_approvals = 1
        self.approvals: list[dict[str, Any]] = []
        self.lock_override = False
        # SEC-07 cooling-off: provisioning starts no earlier than this
        self.cooling_off_until: dt.datetime | None = None
        self.fraud_reported_at: dt.datetime | None = None
        # fee (recorded, charged by billing later)
        self.fee_minor = 0
        self.fee_currency: str | None = None
        # provisioning
        self.new_iccid: str | None = None
        self.matching_id: str | None = None
        self.smdp_step: str | None = None  # None | "ordered" | "confirmed"
        self.activation_code_enc: str | None = None
        self.activation_expires_at: dt.datetime | None = None
        self.install_failed_at: dt.datetime | None = None
        self.installed_at: dt.datetime | None = None
        self.old_sim_suspended = False
        self.completed_at: dt.datetime | None = None
        # failure
        self.failure_code: str | None = None
        self.failure_reason: str | None = None
        self.not_me_token_hash: str | None = None
        # Issue 12: the console session of the agent who opened or took over the
        # request; only it shows the customer the eSIM on the hand-over screen.
        self.agent_session_id: str | None = None

    # ------------------------------------------------------------ reading

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def delivery(self) -> DeliveryMode:
        """The delivery mode; a physical request without one is a store pickup."""
        if self.delivery_mode is not None:
            return DeliveryMode(self.delivery_mode)
        return DeliveryMode.ESIM if self.target_form == SimForm.ESIM else DeliveryMode.PICKUP

    @property
    def events(self) -> list[ev.RequestEvent]:
        """What happened since the request was loaded, oldest first (not persisted).

        A request loaded by the mapper skips ``__init__``: the list is made on
        first use. The unit of work empties it when it translates the events.
        """
        found: list[ev.RequestEvent] | None = vars(self).get("_events")
        if found is None:
            found = []
            vars(self)["_events"] = found
        return found

    def take_events(self) -> list[ev.RequestEvent]:
        """Remove and return the recorded events (the unit of work calls this)."""
        found: list[ev.RequestEvent] | None = vars(self).get("_events")
        if not found:
            return []
        vars(self)["_events"] = []
        return found

    @property
    def smdp_progress(self) -> SmdpStep:
        return SmdpStep(self.smdp_step) if self.smdp_step else SmdpStep.NONE

    @property
    def install_progress(self) -> InstallStep:
        if self.installed_at is not None:
            return InstallStep.INSTALLED
        return InstallStep.FAILED if self.install_failed_at is not None else InstallStep.PENDING

    @property
    def old_sim_progress(self) -> OldSimStep:
        return OldSimStep.SUSPENDED if self.old_sim_suspended else OldSimStep.IN_SERVICE

    # ------------------------------------------------------------ the table

    def move_to(self, target: State, *, at: dt.datetime) -> str:
        """Change state if the table allows it; return the edge's reason.

        The low-level step under every method below; it records no event.
        """
        why = check_transition(self.state, target)
        self.state = target
        self.updated_at = at
        self.open_line_id = self.line_id if target in OPEN_STATES else None
        return why

    def _record(self, event: ev.RequestEvent) -> None:
        self.events.append(event)
