"""Sub-states of a replacement request: progress inside one workflow state.

Pure Python. The workflow table (``domain.workflow``) says where a request is;
three small tables here say how far a step inside it got. Each is stored in
the request's own columns (no migration): ``smdp_step``, ``installed_at`` /
``install_failed_at`` and ``old_sim_suspended``. The aggregate
(``domain.request``) changes them only through :func:`check_substate`; every
pair not listed is refused with ``InvalidTransition``. Setting a sub-state to
the value it has is a no-op everywhere (callbacks and jobs are repeated).

* :data:`SMDP_STEPS` -- the ES2+ order at the SM-DP+ (SGP.22 5.3): nothing yet,
  downloadOrder done, confirmOrder done. A reissue starts over.
* :data:`INSTALL_STEPS` -- the new SIM on the device: not yet, failed (point 4
  failure; the customer may reissue), installed (the cut-over follows).
* :data:`OLD_SIM_STEPS` -- whether the old SIM is barred in the core network
  on this request's behalf (lost or stolen, a line separation).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from resim.errors import InvalidTransition


class SmdpStep(StrEnum):
    NONE = "none"  # stored as NULL
    ORDERED = "ordered"
    CONFIRMED = "confirmed"


class InstallStep(StrEnum):
    PENDING = "pending"  # installed_at and install_failed_at NULL
    FAILED = "failed"  # install_failed_at set
    INSTALLED = "installed"  # installed_at set


class OldSimStep(StrEnum):
    IN_SERVICE = "in_service"  # old_sim_suspended false
    SUSPENDED = "suspended"


SMDP_STEPS: dict[tuple[SmdpStep, SmdpStep], str] = {
    (SmdpStep.NONE, SmdpStep.ORDERED): "downloadOrder took effect at the SM-DP+",
    (SmdpStep.ORDERED, SmdpStep.CONFIRMED): "confirmOrder took effect: released for download",
    # A run killed after its confirmOrder took effect but before it was recorded:
    # the next run's downloadOrder answer was "already done" and nothing recorded it.
    (SmdpStep.NONE, SmdpStep.CONFIRMED): "confirmOrder took effect after an unrecorded order",
    # A late run of the order job (its lease ran out) records its downloadOrder again.
    (SmdpStep.CONFIRMED, SmdpStep.ORDERED): "a late run of the order job recorded its order",
    (SmdpStep.ORDERED, SmdpStep.NONE): "reissue or a new profile: the order starts over",
    (SmdpStep.CONFIRMED, SmdpStep.NONE): "reissue: the order is withdrawn and starts over",
}

INSTALL_STEPS: dict[tuple[InstallStep, InstallStep], str] = {
    (InstallStep.PENDING, InstallStep.INSTALLED): "installed on the device; cut-over follows",
    (InstallStep.FAILED, InstallStep.INSTALLED): "installed on a later try",
    (InstallStep.PENDING, InstallStep.FAILED): "the download failed on the device (point 4)",
    (InstallStep.FAILED, InstallStep.PENDING): "reissue: a new profile will be offered",
}

OLD_SIM_STEPS: dict[tuple[OldSimStep, OldSimStep], str] = {
    (OldSimStep.IN_SERVICE, OldSimStep.SUSPENDED): "the old SIM was barred for this request",
    (OldSimStep.SUSPENDED, OldSimStep.IN_SERVICE): "the bar was lifted: the old SIM is back",
}

# name -> (its states, its table): for tests and the diagram.
SUBSTATE_TABLES: dict[str, tuple[type[StrEnum], Mapping[tuple[Any, Any], str]]] = {
    "smdp_step": (SmdpStep, SMDP_STEPS),
    "install": (InstallStep, INSTALL_STEPS),
    "old_sim": (OldSimStep, OLD_SIM_STEPS),
}


S = TypeVar("S", bound=StrEnum)


def check_substate(
    table: Mapping[tuple[S, S], str], name: str, current: S, target: S
) -> str | None:
    """The edge's reason; None when ``target`` is ``current`` (nothing changes).

    Raises InvalidTransition for a pair the table does not list.
    """
    if current == target:
        return None
    reason = table.get((current, target))
    if reason is None:
        raise InvalidTransition(
            f"{name} cannot go from {current.value} to {target.value}",
            code="INVALID_SUBSTATE",
        )
    return reason
