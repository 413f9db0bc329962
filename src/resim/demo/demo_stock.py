"""What the demo's help shows of the stock: a few blank physical cards per brand.

A store agent handing a card over at the counter types (or scans) the card's
ICCID; in the demo there is no box of cards to read it from, so ``resim demo``
prints a few that are in stock (``demo/demo_seed.py`` adds them).
"""

from __future__ import annotations

from resim.services.context import ServiceContext


def cards_in_stock(ctx: ServiceContext, *, per_brand: int = 3) -> dict[str, list[str]]:
    """Brand id -> up to ``per_brand`` ICCIDs of physical cards in stock, lowest first."""
    found: dict[str, list[str]] = {}
    with ctx.uow() as uow:
        for brand_id, iccid in uow.lookups.cards_in_stock():
            shown = found.setdefault(brand_id, [])
            if len(shown) < per_brand:
                shown.append(iccid)
    return found
