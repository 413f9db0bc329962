"""Every (from, to) pair of the transition table: allowed pairs move, all others refuse."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from resim.domain.model import Channel, Reason, ReplacementRequest
from resim.domain.workflow import (
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    State,
    check_transition,
    diagram_mermaid,
    diagram_text,
)
from resim.errors import InvalidTransition

AT = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
ALL_PAIRS = list(itertools.product(State, State))


def make_request(state: State) -> ReplacementRequest:
    req = ReplacementRequest(
        id="r1",
        line_id="l1",
        brand_id="b1",
        subscriber_id="s1",
        msisdn="+4520123456",
        reason=Reason.LOST,
        channel=Channel.API,
        actor="bss",
        created_at=AT,
        old_iccid=None,
    )
    req.state = state  # test set-up only: place the request in the starting state
    req.open_line_id = "l1" if state in OPEN_STATES else None
    return req


@pytest.mark.parametrize(
    ("src", "dst"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS]
)
def test_every_pair_obeys_the_table(src: State, dst: State) -> None:
    req = make_request(src)
    later = AT + dt.timedelta(minutes=1)
    if (src, dst) in TRANSITIONS:
        reason = req.move_to(dst, at=later)
        assert reason == TRANSITIONS[(src, dst)]
        assert req.state == dst
        assert req.updated_at == later
        assert req.open_line_id == ("l1" if dst in OPEN_STATES else None)
    else:
        with pytest.raises(InvalidTransition):
            req.move_to(dst, at=later)
        assert req.state == src
        assert req.updated_at == AT


def test_terminal_states_have_no_way_out() -> None:
    for src, _dst in TRANSITIONS:
        assert src not in TERMINAL_STATES


def test_every_state_is_reachable_from_requested() -> None:
    seen = {State.REQUESTED}
    frontier = [State.REQUESTED]
    while frontier:
        here = frontier.pop()
        for src, dst in TRANSITIONS:
            if src == here and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(State)


def test_check_transition_names_both_states() -> None:
    with pytest.raises(InvalidTransition, match="completed to requested"):
        check_transition(State.COMPLETED, State.REQUESTED)


def test_diagrams_list_every_edge() -> None:
    mermaid = diagram_mermaid()
    text = diagram_text()
    for src, dst in TRANSITIONS:
        assert f"{src.value} --> {dst.value}" in mermaid
        assert any(line.split()[:3] == [src.value, "->", dst.value] for line in text.splitlines())


def test_failing_records_code_and_reason() -> None:
    req = make_request(State.PROVISIONING)
    req.fail(code="NO_STOCK", reason="no profile", at=AT)
    assert (req.state, req.failure_code, req.failure_reason) == (
        State.FAILED,
        "NO_STOCK",
        "no profile",
    )
    assert req.open_line_id is None
