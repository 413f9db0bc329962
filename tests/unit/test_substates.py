"""The request's sub-state tables (smdp_step, install, old SIM): every pair, on the aggregate."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest
from aggregate_builders import AT, request_in

from resim.domain import events as ev
from resim.domain.substates import (
    INSTALL_STEPS,
    OLD_SIM_STEPS,
    SMDP_STEPS,
    SUBSTATE_TABLES,
    InstallStep,
    OldSimStep,
    SmdpStep,
    check_substate,
)
from resim.domain.workflow import State
from resim.errors import InvalidTransition

LATER = AT + dt.timedelta(minutes=5)


def _pairs(states: type[StrEnum]) -> list[tuple[Any, Any]]:
    return list(itertools.product(list(states), list(states)))


@pytest.mark.parametrize("name", sorted(SUBSTATE_TABLES))
def test_every_pair_of_every_table(name: str) -> None:
    states, table = SUBSTATE_TABLES[name]
    for src, dst in _pairs(states):
        if src == dst:
            assert check_substate(table, name, src, dst) is None
        elif (src, dst) in table:
            assert check_substate(table, name, src, dst) == table[(src, dst)]
        else:
            with pytest.raises(InvalidTransition):
                check_substate(table, name, src, dst)


def _smdp(step: SmdpStep) -> str | None:
    return None if step == SmdpStep.NONE else step.value


@pytest.mark.parametrize(("src", "dst"), _pairs(SmdpStep))
def test_smdp_step_on_the_aggregate(src: SmdpStep, dst: SmdpStep) -> None:
    req = request_in(State.PROVISIONING, smdp_step=_smdp(src))
    if src != dst and (src, dst) not in SMDP_STEPS:
        with pytest.raises(InvalidTransition):
            req.record_smdp_step(_smdp(dst), at=LATER)
        assert req.smdp_step == _smdp(src) and req.events == []
        return
    req.record_smdp_step(_smdp(dst), at=LATER)
    assert req.smdp_step == _smdp(dst)
    if src == dst:
        assert req.events == []
    else:
        (event,) = req.events
        assert isinstance(event, ev.SmdpStepRecorded) and event.why == SMDP_STEPS[(src, dst)]


def _install_fields(step: InstallStep) -> Mapping[str, Any]:
    return {
        "installed_at": AT if step == InstallStep.INSTALLED else None,
        "install_failed_at": AT if step == InstallStep.FAILED else None,
    }


@pytest.mark.parametrize("src", list(InstallStep))
def test_install_steps_on_the_aggregate(src: InstallStep) -> None:
    installed = request_in(State.READY, new_iccid="89450001", **_install_fields(src))
    done = installed.install(how="esim", actor="worker", at=LATER)
    assert done == ((src, InstallStep.INSTALLED) in INSTALL_STEPS)
    assert installed.install_progress == InstallStep.INSTALLED
    failed = request_in(State.READY, new_iccid="89450001", **_install_fields(src))
    done = failed.install_failed(at=LATER, actor="worker")
    assert done == (src != InstallStep.INSTALLED)
    if src != InstallStep.INSTALLED:
        assert failed.install_progress == InstallStep.FAILED


@pytest.mark.parametrize(("src", "dst"), _pairs(OldSimStep))
def test_old_sim_steps_on_the_aggregate(src: OldSimStep, dst: OldSimStep) -> None:
    req = request_in(State.VERIFIED, old_sim_suspended=src == OldSimStep.SUSPENDED)
    changed = req.old_sim_barred(dst == OldSimStep.SUSPENDED, at=LATER)
    assert changed == ((src, dst) in OLD_SIM_STEPS)
    assert req.old_sim_progress == dst
    assert len(req.events) == (1 if changed else 0)


def test_installing_is_only_for_a_ready_request() -> None:
    for state in State:
        if state == State.READY:
            continue
        req = request_in(state, new_iccid="89450001")
        assert not req.install(how="esim", actor="worker", at=LATER)
        assert req.installed_at is None and req.events == []
