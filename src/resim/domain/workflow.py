"""The replacement workflow: one transition table, the only way a request's state changes.

Pure Python. ``ReplacementRequest.move_to`` (in ``model.py``) consults
:data:`TRANSITIONS`; nothing else assigns ``state``. ``resim workflow diagram``
prints the table, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from enum import StrEnum

from resim.errors import InvalidTransition


class State(StrEnum):
    REQUESTED = "requested"
    VERIFIED = "verified"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PROVISIONING = "provisioning"
    READY = "ready"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


# (from, to) -> why this edge exists. Every pair not listed is forbidden.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.REQUESTED, State.VERIFIED): "identity verified with the policy's methods",
    (State.REQUESTED, State.REJECTED): "too many failed verification attempts",
    (State.REQUESTED, State.CANCELLED): "cancelled by the customer, an agent or 'this was not me'",
    (State.REQUESTED, State.EXPIRED): "not verified in time",
    (State.VERIFIED, State.APPROVED): "risk check allowed it",
    (State.VERIFIED, State.IN_REVIEW): "risk check held it for a reviewer",
    (State.VERIFIED, State.REJECTED): "risk check denied it",
    (State.VERIFIED, State.CANCELLED): "cancelled",
    (State.VERIFIED, State.FAILED): "a required step (suspending the old SIM) failed for good",
    (State.VERIFIED, State.EXPIRED): "the stronger verification asked for was not given in time",
    (State.IN_REVIEW, State.APPROVED): "a reviewer approved it",
    (State.IN_REVIEW, State.REJECTED): "a reviewer rejected it",
    (State.IN_REVIEW, State.CANCELLED): "cancelled",
    (State.IN_REVIEW, State.FAILED): "a required step (suspending the old SIM) failed for good",
    (State.APPROVED, State.PROVISIONING): "a worker started ordering the new eSIM",
    (State.APPROVED, State.CANCELLED): "cancelled",
    (State.APPROVED, State.FAILED): "a required step failed for good before ordering",
    (State.PROVISIONING, State.READY): "the SM-DP+ confirmed the order; activation code issued",
    (State.PROVISIONING, State.FAILED): "the SM-DP+ or stock refused the order for good",
    (State.PROVISIONING, State.CANCELLED): "cancelled; the order is withdrawn at the SM-DP+",
    (State.READY, State.COMPLETED): "installed on the device; number moved, old SIM retired",
    (State.READY, State.PROVISIONING): "reissue: the download failed on the device",
    (State.READY, State.EXPIRED): "activation code unused until it expired",
    (State.READY, State.CANCELLED): "cancelled; the order is withdrawn at the SM-DP+",
    (State.READY, State.FAILED): "cut-over refused for good by the core network",
}

OPEN_STATES: frozenset[State] = frozenset(
    {
        State.REQUESTED,
        State.VERIFIED,
        State.IN_REVIEW,
        State.APPROVED,
        State.PROVISIONING,
        State.READY,
    }
)
TERMINAL_STATES: frozenset[State] = frozenset(State) - OPEN_STATES

# Shown to customers and in ``requests show``: where it is and what happens next.
DESCRIPTIONS: dict[State, str] = {
    State.REQUESTED: "Waiting for the customer to prove who they are.",
    State.VERIFIED: "Identity verified; the fraud check is running.",
    State.IN_REVIEW: "Held for a fraud reviewer; the customer is told when it is decided.",
    State.APPROVED: "Approved; the new eSIM will be ordered shortly.",
    State.PROVISIONING: "Ordering the new eSIM profile from the SM-DP+.",
    State.READY: "The new eSIM is ready to install with the activation code.",
    State.COMPLETED: "Installed: the number now lives on the new SIM; the old one is dead.",
    State.REJECTED: "Refused; nothing changed on the line.",
    State.CANCELLED: "Cancelled; nothing changed on the line.",
    State.EXPIRED: "Expired: not verified, or the activation code not used, in time.",
    State.FAILED: "Failed; see the reason. Nothing changed on the line.",
}


def check_transition(current: State, target: State) -> str:
    """Return the edge's reason, or raise InvalidTransition if the table forbids it."""
    reason = TRANSITIONS.get((current, target))
    if reason is None:
        raise InvalidTransition(
            f"a request cannot go from {current.value} to {target.value}",
            code="INVALID_TRANSITION",
        )
    return reason


def diagram_mermaid() -> str:
    """The table as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.REQUESTED.value}"]
    for (src, dst), why in TRANSITIONS.items():
        lines.append(f"    {src.value} --> {dst.value}: {why}")
    for state in sorted(TERMINAL_STATES, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)


def diagram_text() -> str:
    """The table as aligned text lines."""
    width = max(len(s.value) for s in State)
    return "\n".join(
        f"{src.value:<{width}} -> {dst.value:<{width}}  {why}"
        for (src, dst), why in TRANSITIONS.items()
    )
