"""Binding imported lines' SIMs in the core network, in bulk when the core can.

Idempotent: an IMSI that already holds the number is left as it is, so a
re-run after a crash binds only what is missing. A core that offers
``bind_many`` (the built-in one: a few statements per batch) gets the whole
batch; any other core (osmo-hlr, the fake) gets the port's per-line calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from resim.services.ports import CoreNetwork


class Binding(NamedTuple):
    """A tuple, so a batch goes to ``bind_many`` as it is (no copy per line)."""

    imsi: str
    msisdn: str
    enabled: bool  # False: the line is suspended (SIM bound but barred)


@runtime_checkable
class BulkBinder(Protocol):
    def bind_many(self, bindings: Sequence[tuple[str, str, bool]]) -> None:
        """Provision each (imsi, msisdn, enabled), number bound; no-op where already so."""


def bind(core: CoreNetwork, bindings: Sequence[Binding]) -> None:
    if not bindings:
        return
    if isinstance(core, BulkBinder):
        core.bind_many(bindings)
        return
    for b in bindings:
        core.provision_imsi(imsi=b.imsi)
        core.move_msisdn(msisdn=b.msisdn, new_imsi=b.imsi, old_imsi=None)
        if not b.enabled:
            core.suspend_imsi(imsi=b.imsi)
