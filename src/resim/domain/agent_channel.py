"""Who else must take part in a replacement that staff made (issue 13, finding 9).

Pure. An agent who records an ID-document check, opens a request on the agent
channel and verifies it with that check has, alone, done everything a swap
needs; if they could then read the activation code, one insider could take any
number. So a *staff-made* request (agent channel, opened by a staff member, or
verified with a staff member's evidence) goes on only when someone other than
that staff member confirms it, as the brand's ``agent_confirmation`` says:

* ``customer_factor``: the customer proved a factor of their own that the
  agent cannot produce (:data:`CUSTOMER_FACTORS`: the code sent to the e-mail
  address on file, or their authenticator app). A line separation never counts
  here: its contact details were typed in by the agent.
* ``second_staff``: a second staff member approves it (the review queue;
  nobody decides a request they opened or verified).

With both listed (the default) either is enough; without ``second_staff`` the
agent channel's combinations all include a customer factor
(:func:`agent_channel_combos`), so the request cannot even be verified without
the customer. And whichever way it went on, the staff who opened or verified
it never read its activation code (:func:`involved_staff`).
"""

from __future__ import annotations

from collections.abc import Sequence

from resim.domain.model import Channel, ReplacementRequest, RequestKind, RiskOutcome
from resim.domain.policy import AGENT_CONFIRMATIONS, BrandPolicy
from resim.domain.risk import RiskFinding

# Methods only the customer can complete: a fresh code sent to the e-mail on
# file, or the customer's own authenticator. A PIN or password may have been
# said aloud at a counter before; an ID-document check is the agent's own word.
CUSTOMER_FACTORS = frozenset({"email_otp", "totp"})

RULE = "agent_confirmation"

__all__ = [
    "AGENT_CONFIRMATIONS",
    "CUSTOMER_FACTORS",
    "RULE",
    "agent_channel_combos",
    "confirmation_finding",
    "customer_took_part",
    "involved_staff",
    "staff_made",
]


def involved_staff(request: ReplacementRequest) -> frozenset[str]:
    """The staff actors ("staff:<id>") who opened the request or recorded its evidence."""
    actors = {request.actor} | {str(e.get("by", "")) for e in request.verification_evidence}
    return frozenset(a for a in actors if a.startswith("staff:"))


def staff_made(request: ReplacementRequest) -> bool:
    """Whether staff opened or verified the request (so a second party must confirm it)."""
    return request.channel == Channel.AGENT or bool(involved_staff(request))


def customer_took_part(request: ReplacementRequest) -> bool:
    """Whether the customer proved a factor of their own on this request."""
    if request.kind == RequestKind.LINE_SEPARATION:
        return False  # the survivor's e-mail on file is what the agent typed in
    return any(m in CUSTOMER_FACTORS for m in request.verification_methods)


def confirmation_finding(request: ReplacementRequest, policy: BrandPolicy) -> RiskFinding | None:
    """A REVIEW finding when a staff-made request lacks the confirmation the policy
    asks for; None when it needs none or has it.

    A request that should have been refused at verification (``customer_factor``
    alone, no customer factor proven) is held for review rather than let through.
    """
    if not staff_made(request):
        return None
    ways = policy.agent_confirmation
    if "customer_factor" in ways and customer_took_part(request):
        return None
    if "second_staff" in ways:
        why = (
            "opened or verified by staff without a factor of the customer's own: a second "
            "staff member must approve it (brand policy agent_confirmation)"
        )
    else:
        why = (
            "opened or verified by staff without a factor of the customer's own, which the "
            "brand requires (agent_confirmation): a second person must look at it"
        )
    return RiskFinding(RULE, RiskOutcome.REVIEW, why)


def agent_channel_combos(combos: Sequence[Sequence[str]], policy: BrandPolicy) -> list[list[str]]:
    """The agent channel's combinations under the policy: when a second staff member
    cannot confirm (``second_staff`` not listed), every combination without a
    customer factor also needs the e-mail code."""
    if "second_staff" in policy.agent_confirmation:
        return [list(c) for c in combos]
    return [list(c) if any(m in CUSTOMER_FACTORS for m in c) else [*c, "email_otp"] for c in combos]
