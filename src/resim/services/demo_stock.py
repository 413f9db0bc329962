"""What the demo's help shows of the stock: a few blank physical cards per brand.

A store agent handing a card over at the counter types (or scans) the card's
ICCID; in the demo there is no box of cards to read it from, so ``resim demo``
prints a few that are in stock (``services/demo_seed.py`` adds them).
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.model import SimForm, SimState
from resim.services.context import ServiceContext


def cards_in_stock(ctx: ServiceContext, *, per_brand: int = 3) -> dict[str, list[str]]:
    """Brand id -> up to ``per_brand`` ICCIDs of physical cards in stock, lowest first."""
    sim = orm.sim.c
    found: dict[str, list[str]] = {}
    with ctx.uow() as uow:
        rows = uow.session.execute(
            sa.select(sim.brand_id, sim.iccid)
            .where(sim.form == SimForm.PHYSICAL, sim.state == SimState.IN_STOCK)
            .order_by(sim.brand_id, sim.iccid)
        )
        for brand_id, iccid in rows:
            shown = found.setdefault(brand_id, [])
            if len(shown) < per_brand:
                shown.append(iccid)
    return found
