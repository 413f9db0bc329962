"""The counter side of a physical SIM hand-over (issue 14): the store's stock of
cards to choose from, and the receipt once a card was handed over.

The hand-over itself is :func:`resim.services.delivery.handover.hand_over`. Both
functions here only read; both are limited to the caller's ``scope`` (another
brand's request is NotFound, like the request itself).

Stock ICCIDs are shown in full: they are the unused cards in the store's
drawer, not a customer's. A SIM carries no store of its own in resim, so "this
store's stock" is the brand's unused physical cards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.errors import Conflict
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.console import mask_name, mask_phone
from resim.services.context import ServiceContext
from resim.services.notifications.notify import request_ref

STOCK_SHOWN = 50


def stock_cards(
    ctx: ServiceContext, *, request_id: str, scope: Scope = UNRESTRICTED, limit: int = STOCK_SHOWN
) -> list[str]:
    """ICCIDs of the request's brand's physical cards in stock (at most ``limit``,
    in ICCID order). NotFound for a request out of ``scope``."""
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, scope=scope)
        rows = uow.lookups.cards_in_stock(req.brand_id, limit=limit)
    return [iccid for _brand, iccid in rows]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def receipt(ctx: ServiceContext, *, request_id: str, scope: Scope = UNRESTRICTED) -> dict[str, Any]:
    """What the counter receipt shows for a handed-over card: the customer's name
    and number masked, old and new ICCID, the fee, the agent's display name, the
    time (with the brand's time zone to show it in) and the reference.

    NotFound (REQUEST_NOT_FOUND) out of ``scope``; Conflict (NO_RECEIPT) if no
    card was handed over for the request."""
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, scope=scope)
        handed = uow.audit_log.latest(action="sim.handed_over", object_id=req.id)
        if handed is None or not req.new_iccid:
            raise Conflict("no card was handed over for this request", code="NO_RECEIPT")
        actor, at = handed.actor, handed.at
        staff_id = actor.removeprefix("staff:")
        agent = uow.staff.display_name(staff_id)
        subscriber = repo.get_subscriber(uow, req.subscriber_id)
        brand = repo.get_brand(uow, req.brand_id)
        return {
            "id": req.id,
            "ref": request_ref(req.id),
            "customer": mask_name(subscriber.name),
            "msisdn": mask_phone(req.msisdn),
            "old_iccid": req.old_iccid,
            "new_iccid": req.new_iccid,
            "fee": {"amount_minor": req.fee_minor or 0, "currency": req.fee_currency},
            "agent": agent or "-",
            "at": _aware(at).isoformat(),
            "timezone": brand.timezone,
            "brand": brand.name,
            "state": req.state.value,
        }
