"""Deciding a verified request: the risk check, four-eyes review, approval, rejection.

Methods of ``ReplacementRequest`` (see ``resim.domain.request``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from resim.domain import events as ev
from resim.domain.kinds import (
    RiskOutcome,
)
from resim.domain.request_state import RequestState
from resim.domain.workflow import State
from resim.errors import Conflict, Refused


class Deciding(RequestState):
    """Deciding a verified request: the risk check, four-eyes review, approval, rejection."""

    # ------------------------------------------------------------ deciding

    def assess(
        self,
        *,
        outcome: RiskOutcome,
        decision: RiskOutcome,
        findings: Sequence[dict[str, str]],
        four_eyes: bool,
        step_up_methods: Sequence[str],
        step_up_rules: Sequence[str],
        step_up_deadline: dt.datetime,
        deny_reason: str,
        cooling_off: dt.timedelta,
        at: dt.datetime,
    ) -> RiskOutcome:
        """Record the risk check on a verified request and act on ``decision``.

        ``outcome``: the rules' own result; ``decision``: what to do (it also
        counts the confirmation finding, four eyes and a proven step-up).
        allow: approved; review: held; deny: rejected (``RISK_DENIED``);
        step_up: the first time, the methods are asked for (the request stays
        verified and expires at ``step_up_deadline``), afterwards nothing.
        Returns ``decision``.
        """
        if self.state != State.VERIFIED:
            raise Conflict("only a verified request is assessed", code="NOT_VERIFIED")
        if four_eyes:
            self.required_approvals = max(self.required_approvals or 1, 2)
        self.risk_outcome = outcome
        self.risk_reasons = [dict(f) for f in findings]
        rules = tuple(f["rule"] for f in findings)
        actor = "risk-engine"
        self._record(
            ev.RiskAssessed(
                request_id=self.id,
                at=at,
                actor=actor,
                outcome=outcome.value,
                decision=decision.value,
                rules=rules,
                required_approvals=self.required_approvals,
            )
        )
        if decision == RiskOutcome.STEP_UP:
            if self.step_up_methods is None:
                self.step_up_methods = list(step_up_methods)
                self._record(
                    ev.StepUpRequired(
                        request_id=self.id,
                        at=at,
                        actor=actor,
                        methods=tuple(step_up_methods),
                        rules=tuple(step_up_rules),
                        expires_at=step_up_deadline,
                    )
                )
        elif decision == RiskOutcome.ALLOW:
            self.approve(by=actor, cooling_off=cooling_off, at=at)
        elif decision == RiskOutcome.REVIEW:
            why = self.move_to(State.IN_REVIEW, at=at)
            self._record(ev.Held(request_id=self.id, at=at, actor=actor, why=why, rules=rules))
        else:
            self.reject(code="RISK_DENIED", reason=deny_reason, actor=actor, at=at)
        return decision

    def approve(self, *, by: str, cooling_off: dt.timedelta, at: dt.datetime) -> None:
        """-> approved; the order (or courier dispatch) waits ``cooling_off`` (SEC-07)."""
        why = self.move_to(State.APPROVED, at=at)
        self.cooling_off_until = at + cooling_off
        self._record(
            ev.Approved(
                request_id=self.id,
                at=at,
                actor=by,
                why=why,
                approvers=tuple(a["by"] for a in self.approvals),
                cooling_off_until=self.cooling_off_until,
                delivery=self.delivery.value,
            )
        )

    def review(
        self,
        *,
        by: str,
        approve_it: bool,
        note: str | None,
        cooling_off: dt.timedelta,
        at: dt.datetime,
    ) -> State:
        """A reviewer decides a held request (SEC-08 four eyes).

        Approving adds ``by`` to ``approvals``; the request is approved once
        ``required_approvals`` distinct people did. One rejection rejects.
        Nobody approves twice (DUPLICATE_APPROVAL); who may review at all is
        the caller's policy. Returns the new state.
        """
        if self.state != State.IN_REVIEW:
            raise Conflict("the request is not waiting for review", code="NOT_IN_REVIEW")
        if approve_it and any(a.get("by") == by for a in self.approvals):
            raise Refused(
                "this reviewer already approved the request; a second person must decide",
                code="DUPLICATE_APPROVAL",
            )
        self.reviewed_by = by
        self.review_note = note
        if not approve_it:
            self.reject(
                code="REVIEW_REJECTED",
                reason=note or "rejected by a reviewer",
                actor=by,
                at=at,
            )
            return self.state
        entry = {"by": by, "at": at.isoformat(), "note": note}
        self.approvals = [*self.approvals, entry]  # JSON column: assign anew
        needed = max(self.required_approvals or 1, 1)
        if len({a["by"] for a in self.approvals}) >= needed:
            self.approve(by=by, cooling_off=cooling_off, at=at)
        else:
            self._record(
                ev.ApprovalRecorded(
                    request_id=self.id,
                    at=at,
                    actor=by,
                    approvals=len(self.approvals),
                    required=needed,
                )
            )
        return self.state

    def reject(self, *, code: str, reason: str, actor: str, at: dt.datetime) -> None:
        """-> rejected (verification attempts used up, the risk check, a reviewer)."""
        why = self.move_to(State.REJECTED, at=at)
        self.failure_code = code
        self.failure_reason = reason
        self.otp_hash = None
        self._record(ev.Rejected(request_id=self.id, at=at, actor=actor, why=why, code=code))
