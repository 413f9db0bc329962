"""The loss report: a line's SIM blocked because the phone is lost or stolen (pure).

A loss report lives apart from any replacement request (DESIGN.md, "Loss
report"). While it is open the SIM it names stays suspended, in resim and in
the core network. Only :meth:`LossReport.close` ends it, along one of the
edges of :data:`CLOSES`:

* ``resolved``: a replacement's cut-over retired the SIM (the number lives on
  the new SIM now);
* ``lifted``: the customer found the phone and proved it with strong
  verification (two factors, or an agent's recorded ID-document check);
* ``voided``: the replacement request whose verification opened the report
  was rejected (by the risk check or a reviewer): whoever verified it was
  judged not to be the account holder, so the block they set must not bar
  the real customer's SIM. A report opened in its own right (portal, agent,
  API), or already held by an approved request, is never voided.

Cancelling, expiring or failing a replacement, and a "this was not me"
report on it, never close a loss report: none of them proves the phone is
back (the thief may hold the mailbox the "not me" link went to).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from resim.errors import Conflict


class LossState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # retired by a replacement's cut-over
    LIFTED = "lifted"  # "I found my phone", strongly verified
    VOIDED = "voided"  # the rejected request that opened it was not the account holder's


class LossReason(StrEnum):
    LOST = "lost"
    STOLEN = "stolen"


class LossChannel(StrEnum):
    PORTAL = "portal"  # "Block my SIM now"
    AGENT = "agent"  # the console's line page, after an ID check
    API = "api"  # staff or a client with the scope lines:loss
    REPLACEMENT = "replacement"  # a lost/stolen replacement's verification


# (from, to) -> why. Every pair not listed is forbidden; a closed report stays closed.
CLOSES: dict[tuple[LossState, LossState], str] = {
    (LossState.OPEN, LossState.RESOLVED): "a replacement's cut-over retired the SIM",
    (LossState.OPEN, LossState.LIFTED): "the customer found the phone (strong verification)",
    (LossState.OPEN, LossState.VOIDED): "the request that opened it was rejected",
}

# Lifting needs at least this much strength (domain.verification.strength): two
# one-factor methods, or one of strength 2 (TOTP, an agent's document check).
LIFT_STRENGTH = 2


class LossReport:
    """Only :meth:`close` changes ``state``; ``open_line_id`` equals ``line_id`` while open
    (unique in the database: at most one open report per line)."""

    def __init__(
        self,
        *,
        id: str,
        line_id: str,
        brand_id: str,
        subscriber_id: str,
        msisdn: str,
        iccid: str,
        reason: LossReason,
        channel: LossChannel,
        opened_by: str,
        opened_at: dt.datetime,
        evidence: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.id = id
        self.line_id = line_id
        self.open_line_id: str | None = line_id
        self.brand_id = brand_id
        self.subscriber_id = subscriber_id
        self.msisdn = msisdn
        self.iccid = iccid  # the SIM that is blocked
        self.reason = reason
        self.channel = channel
        self.opened_by = opened_by
        self.opened_at = opened_at
        # what proved the caller's identity when it was opened (never a secret)
        self.evidence: list[dict[str, Any]] = list(evidence or [])
        # the replacement request whose verification opened it (channel replacement)
        self.request_id = request_id
        self.state = LossState.OPEN
        self.suspended_at: dt.datetime | None = None  # when the core network barred the SIM
        self.closed_at: dt.datetime | None = None
        self.closed_by: str | None = None
        self.close_evidence: list[dict[str, Any]] = []
        self.closing_request_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state == LossState.OPEN

    def close(
        self,
        target: LossState,
        *,
        by: str,
        at: dt.datetime,
        evidence: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> str:
        """End the report along an edge of :data:`CLOSES`; return the edge's reason.

        Lifting needs ``evidence`` of strength >= :data:`LIFT_STRENGTH`; voiding
        only a report opened by ``request_id``'s own verification.
        """
        why = CLOSES.get((self.state, target))
        if why is None:
            raise Conflict(
                f"a loss report cannot go from {self.state.value} to {target.value}",
                code="LOSS_REPORT_CLOSED",
            )
        if target == LossState.LIFTED:
            strength = sum(int(e.get("strength", 0)) for e in evidence or [])
            if strength < LIFT_STRENGTH:
                raise Conflict("lifting a loss report needs strong verification", code="WEAK")
        if target == LossState.VOIDED and (
            self.channel != LossChannel.REPLACEMENT or request_id != self.request_id
        ):
            raise Conflict("only the request that opened it can void it", code="NOT_ITS_REQUEST")
        self.state = target
        self.open_line_id = None
        self.closed_at = at
        self.closed_by = by
        self.close_evidence = list(evidence or [])
        self.closing_request_id = request_id
        return why
