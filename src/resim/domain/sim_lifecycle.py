"""The SIM's life: one transition table, the only way a SIM's state changes.

Pure Python. ``Sim.set_state`` (in ``model.py``) consults :data:`SIM_TRANSITIONS`;
every pair not listed is refused with ``InvalidTransition``. A SIM is bound to
its line while ACTIVE or SUSPENDED (invariant 1, ``BOUND_SIM_STATES``).

Who takes each edge today (``services/``): provisioning, delivery and the store
hand-over reserve from stock; withdrawing an order gives a reserved profile back
or burns it; the cut-over activates the new SIM and retires the old one; loss
reports and the suspension jobs bar and unbar the old SIM.
"""

from __future__ import annotations

from resim.domain.kinds import SimState
from resim.errors import InvalidTransition

# (from, to) -> why this edge exists. Every pair not listed is forbidden.
SIM_TRANSITIONS: dict[tuple[SimState, SimState], str] = {
    (SimState.IN_STOCK, SimState.RESERVED): (
        "taken from stock for a request (eSIM order, courier card, store hand-over)"
    ),
    (SimState.RESERVED, SimState.IN_STOCK): "the order never took effect: back to stock",
    (SimState.RESERVED, SimState.RETIRED): "withdrawn after it may have been downloaded: burnt",
    (SimState.RESERVED, SimState.ACTIVE): "cut-over: the number moved to this SIM",
    (SimState.ACTIVE, SimState.SUSPENDED): "barred: lost, stolen, or held by a line separation",
    (SimState.SUSPENDED, SimState.ACTIVE): "the bar was lifted: back in service",
    (SimState.ACTIVE, SimState.RETIRED): "cut-over: the number left this SIM",
    (SimState.SUSPENDED, SimState.RETIRED): "cut-over: the number left this barred SIM",
}


def check_sim_transition(current: SimState, target: SimState) -> str:
    """Return the edge's reason, or raise InvalidTransition if the table forbids it."""
    reason = SIM_TRANSITIONS.get((current, target))
    if reason is None:
        raise InvalidTransition(
            f"a SIM cannot go from {current.value} to {target.value}",
            code="INVALID_SIM_TRANSITION",
        )
    return reason
