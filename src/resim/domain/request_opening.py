"""Opening a request, proving who asks, and the small steps around it.

Methods of ``ReplacementRequest`` (see ``resim.domain.request``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Self

from resim.domain import events as ev
from resim.domain.kinds import (
    Channel,
    DeliveryMode,
    Reason,
    RequestKind,
)
from resim.domain.request_state import RequestState
from resim.domain.workflow import State
from resim.errors import Conflict

OPENED = "a new request, waiting for the customer to prove who they are"


class Opening(RequestState):
    """Opening a request, proving who asks, and the small steps around it."""

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        id: str,
        line_id: str,
        brand_id: str,
        subscriber_id: str,
        msisdn: str,
        reason: Reason,
        channel: Channel,
        actor: str,
        at: dt.datetime,
        old_iccid: str | None,
        eid: str | None = None,
        kind: RequestKind = RequestKind.REPLACEMENT,
        delivery_mode: DeliveryMode = DeliveryMode.ESIM,
        fee_minor: int = 0,
        fee_currency: str | None = None,
        source_ip: str | None = None,
        device_id: str | None = None,
        country: str | None = None,
        language: str | None = None,
        otp_hash: str | None = None,
        otp_expires_at: dt.datetime | None = None,
        verify_by: dt.datetime | None = None,
        lock_override: bool = False,
        required_approvals: int = 1,
    ) -> Self:
        """A new request in REQUESTED; records ``Opened`` (``verify_by``: when it
        expires unverified, None for one verified in the same transaction)."""
        request = cls(
            id=id,
            line_id=line_id,
            brand_id=brand_id,
            subscriber_id=subscriber_id,
            msisdn=msisdn,
            reason=reason,
            channel=channel,
            actor=actor,
            created_at=at,
            old_iccid=old_iccid,
            eid=eid,
            kind=kind,
        )
        request.target_form = delivery_mode.form
        request.delivery_mode = delivery_mode
        request.fee_minor = fee_minor
        request.fee_currency = fee_currency
        request.source_ip = source_ip[:64] if source_ip else None
        request.device_id = device_id
        request.country = country
        request.language = language
        request.otp_hash = otp_hash
        request.otp_expires_at = otp_expires_at
        request.lock_override = lock_override
        request.required_approvals = max(required_approvals, 1)
        request._record(
            ev.Opened(
                request_id=id,
                at=at,
                actor=actor,
                why=OPENED,
                kind=kind.value,
                reason=reason.value,
                channel=channel.value,
                fee_minor=fee_minor,
                target_form=request.target_form.value,
                delivery_mode=delivery_mode.value,
                device_signal=device_id is not None,
                country=country,
                lock_override=lock_override,
                verify_by=verify_by,
            )
        )
        return request

    def override_lock(
        self,
        *,
        identity_check: str,
        method: str,
        justification: str,
        approvals: int,
        actor: str,
        at: dt.datetime,
    ) -> None:
        """SEC-05 override of the line's SIM-change lock: ``approvals`` people must approve."""
        self.lock_override = True
        self.required_approvals = max(self.required_approvals, approvals)
        self._record(
            ev.LockOverridden(
                request_id=self.id,
                at=at,
                actor=actor,
                identity_check=identity_check,
                method=method,
                justification=justification,
                required_approvals=self.required_approvals,
            )
        )

    def set_language(self, language: str, *, actor: str, at: dt.datetime) -> bool:
        """The language the request's messages use; False if it already was."""
        if self.language == language:
            return False
        was, self.language = self.language, language
        self._record(
            ev.LanguageSet(request_id=self.id, at=at, actor=actor, language=language, was=was)
        )
        return True

    def assign_agent_session(self, session_id: str) -> None:
        """Issue 12: the console session that shows the customer the eSIM."""
        self.agent_session_id = session_id

    # ------------------------------------------------------------ verification

    def issue_code(
        self,
        *,
        otp_hash: str,
        expires_at: dt.datetime,
        actor: str,
        at: dt.datetime,
        action: str | None = "request.code_resent",
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        """A fresh one-time code (its hash) replaces the old one; attempts keep counting."""
        self.otp_hash = otp_hash
        self.otp_expires_at = expires_at
        self._record(
            ev.CodeIssued(
                request_id=self.id,
                at=at,
                actor=actor,
                action=action,
                detail=dict(detail or {}),
                source=source,
            )
        )

    def note_link_sent(
        self,
        *,
        not_me_token_hash: str | None,
        actor: str,
        at: dt.datetime,
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        """A continue link was mailed (it carries "this was not me")."""
        if not_me_token_hash is not None:
            self.issue_not_me_token(not_me_token_hash)
        self._record(
            ev.CodeIssued(
                request_id=self.id,
                at=at,
                actor=actor,
                action="request.link_sent",
                detail=dict(detail or {}),
                source=source,
            )
        )

    def issue_not_me_token(self, token_hash: str) -> None:
        """A notice carries a "this was not me" link; none once fraud was reported."""
        if self.fraud_reported_at is None:
            self.not_me_token_hash = token_hash

    def consume_code(self) -> None:
        """A one-time code is single use: the proven one no longer verifies anything."""
        self.otp_hash = None

    def count_failed_attempt(self) -> int:
        """One more failed verification attempt; returns the count."""
        self.otp_attempts = (self.otp_attempts or 0) + 1
        return self.otp_attempts

    def verify(
        self,
        *,
        methods: Sequence[str],
        evidence: Sequence[dict[str, Any]],
        actor: str,
        at: dt.datetime,
    ) -> None:
        """requested -> verified with the methods proven and their evidence (no secrets)."""
        why = self.move_to(State.VERIFIED, at=at)
        self.verified_at = at
        self.verification_methods = list(methods)
        self.verification_evidence = list(evidence)
        self._record(
            ev.Verified(request_id=self.id, at=at, actor=actor, why=why, methods=tuple(methods))
        )

    def step_up(
        self,
        *,
        methods: Sequence[str],
        evidence: Sequence[dict[str, Any]],
        actor: str,
        at: dt.datetime,
    ) -> None:
        """A stronger method the risk check asked for was proven (the request stays verified)."""
        if self.state != State.VERIFIED or not self.step_up_methods:
            raise Conflict("no stronger verification is asked for", code="NO_STEP_UP")
        # JSON columns: assign anew so the change is seen
        self.verification_methods = [*self.verification_methods, *methods]
        self.verification_evidence = [*self.verification_evidence, *evidence]
        self._record(ev.SteppedUp(request_id=self.id, at=at, actor=actor, methods=tuple(methods)))

    def reconfirm(
        self, *, methods: Sequence[str], purpose: str, at: dt.datetime, source: str | None
    ) -> None:
        """The customer confirmed again (a code or stronger proof); the code is used up."""
        self.otp_hash = None
        self._record(
            ev.Reconfirmed(
                request_id=self.id,
                at=at,
                actor="customer",
                methods=tuple(methods),
                purpose=purpose,
                source=source,
            )
        )

    def take_over(
        self, *, session_id: str | None, check_id: str, actor: str, at: dt.datetime
    ) -> None:
        """An agent takes the request over after an ID check: the customer's code is void."""
        was = self.channel
        self.channel = Channel.AGENT
        self.agent_session_id = session_id
        self.otp_hash = None
        self.otp_expires_at = None
        self._record(
            ev.TakenOver(
                request_id=self.id,
                at=at,
                actor=actor,
                from_channel=Channel(was).value,
                state=self.state.value,
                check_id=check_id,
            )
        )
