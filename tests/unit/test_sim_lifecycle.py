"""Every (from, to) pair of the SIM's transition table: allowed pairs move, all others refuse."""

from __future__ import annotations

import itertools

import pytest

from resim.domain.model import BOUND_SIM_STATES, Sim, SimForm, SimState
from resim.domain.sim_lifecycle import SIM_TRANSITIONS, check_sim_transition
from resim.errors import InvalidTransition

ALL_PAIRS = list(itertools.product(SimState, SimState))


def make_sim(state: SimState) -> Sim:
    return Sim(
        iccid="8945000000000000001",
        imsi="238010000000001",
        form=SimForm.ESIM,
        state=state,
        brand_id="b1",
        line_id="l1" if state != SimState.IN_STOCK else None,
    )


@pytest.mark.parametrize(
    ("src", "dst"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS]
)
def test_every_pair_obeys_the_table(src: SimState, dst: SimState) -> None:
    sim = make_sim(src)
    before = (sim.state, sim.line_id, sim.bound_line_id)
    if (src, dst) in SIM_TRANSITIONS:
        why = sim.set_state(dst, line_id="l2")
        assert why == SIM_TRANSITIONS[(src, dst)]
        assert sim.state == dst and sim.line_id == "l2"
        assert sim.bound_line_id == ("l2" if dst in BOUND_SIM_STATES else None)
    else:
        with pytest.raises(InvalidTransition):
            sim.set_state(dst, line_id="l2")
        assert (sim.state, sim.line_id, sim.bound_line_id) == before


def test_retired_is_the_end() -> None:
    assert not [pair for pair in SIM_TRANSITIONS if pair[0] == SimState.RETIRED]


def test_every_state_is_reachable_from_stock() -> None:
    seen, frontier = {SimState.IN_STOCK}, [SimState.IN_STOCK]
    while frontier:
        here = frontier.pop()
        for src, dst in SIM_TRANSITIONS:
            if src == here and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(SimState)


def test_the_refusal_names_both_states() -> None:
    with pytest.raises(InvalidTransition, match="retired to active"):
        check_sim_transition(SimState.RETIRED, SimState.ACTIVE)


def test_every_set_state_call_in_the_services_is_an_edge_of_the_table() -> None:
    """The targets the services ask for all have an edge into them (a cheap guard
    against a new call site the table does not know)."""
    targets = {dst for _src, dst in SIM_TRANSITIONS}
    assert targets == set(SimState)


def test_the_diagrams_list_every_edge_of_the_smaller_tables() -> None:
    from resim.domain import diagrams

    for name, (_initial, table) in diagrams.TABLES.items():
        drawn, listed = diagrams.mermaid(name), diagrams.text(name)
        for src, dst in table:
            assert f"{src.value} --> {dst.value}" in drawn
            assert any(
                line.split()[:3] == [src.value, "->", dst.value] for line in listed.splitlines()
            )
