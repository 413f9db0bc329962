"""A physical SIM card sent by courier: dispatch, then the customer activates it.

Flow of a ``courier`` request (``BrandPolicy.delivery_modes``):

1. Approval (``ReplacementRequest.approve``: its Approved event) enqueues
   ``courier.dispatch``, due when the cooling-off ends.
2. :func:`dispatch` (the job) takes a card of the brand from stock in one
   transaction (reserved for the line, request approved -> provisioning),
   then books the shipment through the :class:`~resim.services.ports.Courier`
   port (an attempt row first; the request id is the carrier's idempotency
   key, so a retried job books nothing twice), then records the shipment
   (provisioning -> ready, "on its way") and notifies the customer
   (``card_dispatched``).
3. When the card arrives, the customer, in the verified portal session, types
   the ICCID printed on it. :func:`activate_delivered` checks it (format and
   Luhn digit, then that it is the dispatched card; wrong guesses are counted
   like other secrets, SEC-03) and enqueues the ordinary ``core.cutover``.

A lost or stolen old SIM is already suspended since verification; a device
change keeps the old SIM working until the cut-over. The ICCID is not a secret
(it is printed on the card) but it proves the card reached the customer, so a
stranger holding only the status link cannot activate it: the session is
required and guesses are limited.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from resim.domain.model import DeliveryMode, ReplacementRequest, Sim, SimState
from resim.domain.workflow import State
from resim.errors import Conflict, Refused, ResimError
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.delivery.handover import clean_iccid
from resim.services.notifications.notify import notify_customer
from resim.services.outbox.external import JobRecord, call_peer
from resim.services.ports import Shipment
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts


@dataclass(frozen=True)
class _Parcel:
    request_id: str
    iccid: str
    recipient: str
    address: str
    brand_id: str


def dispatch(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``courier.dispatch``: reserve a card, book the courier, record it.

    Re-runnable: a request already in provisioning with a card keeps that card
    (the first run died after reserving); one that left approved/provisioning
    (cancelled, failed) is left alone. No card in stock: NO_CARD_IN_STOCK,
    permanent, so the job dies and the request fails visibly.
    """
    assert job.request_id is not None
    parcel = _reserve(ctx, job.request_id)
    if parcel is None:
        return
    receipt = call_peer(
        ctx,
        job,
        "courier.dispatch",
        lambda _cid: ctx.courier.dispatch(
            Shipment(
                id=parcel.request_id,
                iccid=parcel.iccid,
                recipient=parcel.recipient,
                address=parcel.address,
                brand_id=parcel.brand_id,
            )
        ),
    )
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, parcel.request_id, lock=True)
        if req.state != State.PROVISIONING or req.dispatched_at is not None:
            uow.commit()  # cancelled meanwhile: the card is out; it can never be activated
            return
        req.dispatch(shipment_ref=receipt.tracking_ref, at=now)
        notify_customer(ctx, uow, kind="card_dispatched", request=req)
        uow.commit()


def _reserve(ctx: ServiceContext, request_id: str) -> _Parcel | None:
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if req.delivery != DeliveryMode.COURIER:
            return None
        if req.state == State.APPROVED:
            if req.cooling_off_until is not None and now < req.cooling_off_until:
                # Due early (a clock step): try again when the cooling-off ends.
                uow.enqueue(
                    "courier.dispatch", at=now, request_id=req.id, run_after=req.cooling_off_until
                )
                uow.commit()
                return None
            sim = _card_from_stock(uow, req)
            sim.set_state(SimState.RESERVED, line_id=req.line_id)
            req.order_card(iccid=sim.iccid, at=now)
        elif req.state != State.PROVISIONING or req.dispatched_at is not None:
            return None
        assert req.new_iccid is not None
        subscriber = repo.get_subscriber(uow, req.subscriber_id)
        parcel = _Parcel(
            request_id=req.id,
            iccid=req.new_iccid,
            recipient=subscriber.name,
            address=subscriber.postal_address or "",
            brand_id=req.brand_id,
        )
        uow.commit()
    if not parcel.address:
        raise Refused("no postal address on file any more", code="NO_POSTAL_ADDRESS")
    return parcel


def _card_from_stock(uow: UnitOfWork, req: ReplacementRequest) -> Sim:
    card = uow.stock.free_card(brand_id=req.brand_id)
    if card is None:
        raise ResimError("no physical SIM card of this brand in stock", code="NO_CARD_IN_STOCK")
    return card


def activate_delivered(
    ctx: ServiceContext, *, request_id: str, iccid: str, source_ip: str | None = None
) -> State:
    """The customer typed the ICCID of the delivered card: start the cut-over.

    The caller has checked that the customer's verified session belongs to
    this request. Refusals: ICCID_INVALID (format or check digit; not counted),
    NOT_AWAITING_ACTIVATION (not a dispatched courier card waiting, or already
    activated), ICCID_MISMATCH (not the card sent; counted on the request, the
    account and the address, with back-off and a cap of the policy's
    ``otp_max_attempts`` per request), BACKING_OFF / ATTEMPTS_CAPPED.
    Audited as ``sim.activated``; one transaction.
    """
    number = clean_iccid(iccid)
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if (
            req.delivery != DeliveryMode.COURIER
            or req.state != State.READY
            or req.installed_at is not None
            or req.new_iccid is None
        ):
            raise Conflict(
                "this request is not waiting for a delivered card",
                code="NOT_AWAITING_ACTIVATION",
            )
        policy = repo.get_brand(uow, req.brand_id).policy
        base = attempts.Limits.from_policy(policy, ip_max_failures=ctx.ip_max_failures)
        limits = dataclasses.replace(base, caps={**base.caps, "activate": policy.otp_max_attempts})
        keys = [f"activate:{req.id}", f"account:{req.subscriber_id}"]
        if source_ip:
            keys.append(f"ip:{source_ip}")
        attempts.guard(uow, keys, now, limits)
        if number != req.new_iccid:
            attempts.record_failure(uow, keys, now, limits, actor="customer")
            uow.audit(
                at=now,
                actor="customer",
                action="sim.activation_failed",
                object_type="request",
                object_id=req.id,
                source=source_ip,
            )
            uow.commit()
            raise Refused("that is not the ICCID of the card we sent", code="ICCID_MISMATCH")
        attempts.clear(uow, [f"activate:{req.id}"])
        # Installed: audited as sim.activated; enqueues core.cutover
        req.install(how="activated", actor="customer", at=now, source=source_ip)
        uow.commit()
        return req.state
