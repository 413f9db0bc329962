"""Handing a physical SIM card over the counter (agent console).

A request whose target form is ``physical`` is not ordered from the SM-DP+:
once approved (and past its cooling-off), it waits for the customer at the
store. The agent checks the customer's ID document again (a live check by this
agent on the line), takes a card from the store's stock and enters or scans its
ICCID. :func:`hand_over` then, in one transaction:

* checks the ICCID (18-20 digits, ``89`` prefix, Luhn check digit) and that the
  card is a physical SIM of the request's brand, in stock;
* reserves the card for the line, moves the request approved -> provisioning ->
  ready (the card is "installed": it is in the customer's hand), and
* enqueues the ordinary ``core.cutover`` job, which moves the number to the new
  card, retires the old SIM and writes the SIM change record (SEC-06 holds
  included), exactly as for an installed eSIM.

Every refusal changes nothing. Audited as ``sim.handed_over`` (the ICCID is not
a secret; the card's keys never leave the database).
"""

from __future__ import annotations

from dataclasses import dataclass

from resim.domain.identifiers import normalize_iccid
from resim.domain.model import DeliveryMode, SimForm, SimState
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.console import live_check
from resim.services.context import ServiceContext


@dataclass(frozen=True)
class HandedOver:
    request_id: str
    iccid: str
    state: State


def clean_iccid(raw: str) -> str:
    """The ICCID as stored (scanner noise such as spaces and a trailing F removed), or
    InvalidInput ICCID_INVALID saying what is wrong (length, prefix, check digit)."""
    compact = "".join(raw.split()).replace("-", "")
    try:
        return normalize_iccid(compact)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, code="ICCID_INVALID") from None


def hand_over(
    ctx: ServiceContext,
    *,
    staff_id: str,
    request_id: str,
    iccid: str,
    scope: Scope = UNRESTRICTED,
) -> HandedOver:
    """Give the customer the physical card ``iccid`` for an approved physical request.

    ``scope``: the agent's (another brand's request is NotFound). Refusals:
    ICCID_INVALID, NOT_PHYSICAL, NOT_PICKUP (a courier request), NOT_AWAITING_HANDOVER,
    COOLING_OFF (the customer may still say "not me"), IDENTITY_CHECK_REQUIRED,
    ICCID_UNKNOWN, SIM_NOT_AVAILABLE (another brand's, an eSIM profile, or not
    in stock).
    """
    number = clean_iccid(iccid)
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True, scope=scope)
        if req.target_form != SimForm.PHYSICAL:
            raise Conflict("this request is for an eSIM, not a card", code="NOT_PHYSICAL")
        if req.delivery != DeliveryMode.PICKUP:
            raise Conflict("this card goes to the customer by courier", code="NOT_PICKUP")
        if req.state != State.APPROVED:
            raise Conflict(
                "the request is not approved and waiting for a card",
                code="NOT_AWAITING_HANDOVER",
            )
        if req.cooling_off_until is not None and now < req.cooling_off_until:
            raise Refused(
                "the cooling-off period has not ended; hand the card over after it",
                code="COOLING_OFF",
            )
        if live_check(uow, staff_id=staff_id, line_id=req.line_id, now=now) is None:
            raise PermissionDenied(
                "check the customer's ID document for this line first",
                code="IDENTITY_CHECK_REQUIRED",
            )
        sim = uow.sims.get(number, lock=True)
        if sim is None:
            raise NotFound("no SIM card with that ICCID", code="ICCID_UNKNOWN")
        if (
            sim.brand_id != req.brand_id
            or sim.form != SimForm.PHYSICAL
            or sim.state != SimState.IN_STOCK
        ):
            raise Refused(
                "that card cannot be used: it is not an unused card of this brand",
                code="SIM_NOT_AVAILABLE",
            )
        sim.set_state(SimState.RESERVED, line_id=req.line_id)
        # HandedOver is audited (sim.handed_over); Installed enqueues core.cutover.
        req.hand_over(iccid=sim.iccid, actor=f"staff:{staff_id}", at=now)
        uow.commit()
        return HandedOver(req.id, sim.iccid, req.state)
