"""Diagrams of the smaller transition tables (the SIM's, the request's sub-states).

Pure Python; ``resim workflow diagram --of sim`` prints them, like the request's
own table (``domain.workflow.diagram_mermaid``), so the docs never drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from resim.domain.kinds import SimState
from resim.domain.sim_lifecycle import SIM_TRANSITIONS
from resim.domain.substates import SUBSTATE_TABLES

# name -> (initial state, its table)
TABLES: dict[str, tuple[StrEnum, Mapping[tuple[Any, Any], str]]] = {
    "sim": (SimState.IN_STOCK, SIM_TRANSITIONS),
    **{name: (next(iter(states)), table) for name, (states, table) in SUBSTATE_TABLES.items()},
}


def mermaid(name: str) -> str:
    """The table ``name`` (a key of :data:`TABLES`) as a Mermaid state diagram."""
    initial, table = TABLES[name]
    lines = ["stateDiagram-v2", f"    [*] --> {initial.value}"]
    lines += [f"    {src.value} --> {dst.value}: {why}" for (src, dst), why in table.items()]
    return "\n".join(lines)


def text(name: str) -> str:
    """The table ``name`` as aligned text lines."""
    _initial, table = TABLES[name]
    width = max(len(s.value) for pair in table for s in pair)
    return "\n".join(
        f"{src.value:<{width}} -> {dst.value:<{width}}  {why}" for (src, dst), why in table.items()
    )
