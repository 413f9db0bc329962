"""The demo's core network: the built-in tables, or a real osmo-hlr.

``RESIM_CORE_NETWORK=osmo-hlr`` (or ``resim demo --core-network osmo-hlr``)
runs the demo against osmo-hlr: the one named by ``RESIM_OSMO_HLR_CTRL_HOST``,
or, when that is empty, one the demo starts itself on a free loopback address
(as the tests do; :mod:`resim.adapters.corenet.osmo_hlr_runner`) with its
database under the demo's data directory.

osmo-hlr cannot hold SMS or block port-out after a swap, and reads a barred
record without keys as retired (see :mod:`resim.adapters.corenet.osmo_hlr`).
So, after seeding, :func:`prepare_core` does what an operator on osmo-hlr does
at set-up and stock intake: the brands' post-swap holds are set to 0 (audited),
and the keys of every SIM in service are loaded into the HLR.
"""

from __future__ import annotations

import atexit
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from resim.adapters.corenet import rules
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.osmo_hlr_runner import OsmoHlrProcess
from resim.adapters.db import orm
from resim.domain.model import BOUND_SIM_STATES, Brand
from resim.errors import ConfigurationError, ExternalError
from resim.services.context import ServiceContext
from resim.settings import Settings

_HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")
# Keys for a demo SIM whose vendor file gave none usable: the demo has no radio.
_DEMO_K, _DEMO_OPC = "000102030405060708090a0b0c0d0e0f", "0f0e0d0c0b0a09080706050403020100"


def start_core(
    settings: Settings, data_dir: Path, say: Callable[[str], None]
) -> tuple[Settings, OsmoHlrProcess | None]:
    """Settings that name a reachable core network, and the osmo-hlr we started (or None).

    Raises ConfigurationError (one line) when osmo-hlr is asked for, none is
    named and the binary is not installed.
    """
    if settings.core_network != "osmo-hlr":
        return settings, None
    if settings.osmo_hlr_ctrl_host:
        where = f"{settings.osmo_hlr_ctrl_host}:{settings.osmo_hlr_ctrl_port}"
        say(f"core       osmo-hlr at {where} (CTRL), VTY port {settings.osmo_hlr_vty_port}")
        return settings, None
    binary = shutil.which("osmo-hlr")
    if binary is None:
        raise ConfigurationError(
            "osmo-hlr is not installed (apt-get install osmo-hlr); set RESIM_OSMO_HLR_CTRL_HOST"
            " to use a running one, or run the demo with --core-network builtin",
            code="OSMO_HLR_MISSING",
        )
    workdir = data_dir / "osmo-hlr"
    workdir.mkdir(parents=True, exist_ok=True)
    process = OsmoHlrProcess(workdir, binary=binary)
    atexit.register(process.stop)  # also when the demo fails half-way (stop is idempotent)
    try:
        endpoint = process.start()
    except RuntimeError as exc:
        raise ConfigurationError(
            f"osmo-hlr did not start: {str(exc).splitlines()[0]}", code="OSMO_HLR_FAILED"
        ) from None
    say(
        f"core       osmo-hlr started on {endpoint.host} (CTRL {endpoint.ctrl_port}, "
        f"VTY {endpoint.vty_port}, GSUP {endpoint.gsup_port}); log {process.log_path}"
    )
    updated = settings.model_copy(
        update={
            "osmo_hlr_ctrl_host": endpoint.host,
            "osmo_hlr_ctrl_port": endpoint.ctrl_port,
            "osmo_hlr_vty_host": endpoint.host,
            "osmo_hlr_vty_port": endpoint.vty_port,
        }
    )
    return updated, process


def prepare_core(ctx: ServiceContext, say: Callable[[str], None]) -> None:
    """On osmo-hlr: no post-swap holds in the brands' policies, and SIM keys in the HLR."""
    core = ctx.core
    if not isinstance(core, OsmoHlrCoreNetwork):
        return
    now = ctx.now()
    with ctx.uow() as uow:
        for brand in uow.session.scalars(sa.select(Brand)):
            policy = dict(brand.policy_data)
            if policy.get("sms_hold_hours") == 0 and policy.get("port_out_block_days") == 0:
                continue
            policy.update(sms_hold_hours=0, port_out_block_days=0)
            brand.policy_data = policy
            uow.audit(
                at=now,
                actor="demo",
                action="brand.policy_changed",
                object_type="brand",
                object_id=brand.id,
                detail={"sms_hold_hours": 0, "port_out_block_days": 0, "why": "osmo-hlr"},
            )
        sims = uow.session.execute(
            sa.select(orm.sim.c.imsi, orm.sim.c.ki, orm.sim.c.opc).where(
                orm.sim.c.state.in_(list(BOUND_SIM_STATES))
            )
        ).all()
        uow.commit()
    loaded = 0
    for imsi, ki, opc in sims:
        usable = bool(ki and opc and _HEX128.match(ki) and _HEX128.match(opc))
        try:
            core.set_milenage_keys(
                imsi=imsi, k=ki if usable else _DEMO_K, opc=opc if usable else _DEMO_OPC
            )
            loaded += 1
        except ExternalError as exc:
            # A line imported as suspended was barred before it had keys, and
            # osmo-hlr reads that as retired (no flag of its own): it stays so.
            if exc.code != rules.IMSI_RETIRED:
                raise
    say(
        f"core       {loaded} of {len(sims)} SIM keys loaded into osmo-hlr (the rest were "
        "imported suspended); post-swap holds off (osmo-hlr has none)"
    )
