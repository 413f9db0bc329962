"""Read models for the customer portal's pages. Never a secret.

The portal's use cases are the existing ones (open, verify, step up, resend,
reissue, cancel, "this was not me"); this module only gathers what a page
shows about one request: where it is, what the customer can do next, the fee
and the verification combinations the brand's policy offers on the portal
channel (SEC-02: never an SMS to the number being replaced). It shows the
number masked: a request id in a link is not proof of identity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.identifiers import mask_msisdn, mask_postal_address, normalize_msisdn
from resim.domain.model import Channel, DeliveryMode
from resim.domain.policy import DELIVERY_MODES
from resim.domain.verification import offered
from resim.domain.workflow import State
from resim.errors import ResimError
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import holds
from resim.services.notifications.brand_look import BrandLook, look_of
from resim.services.notifications.notify import request_ref
from resim.services.verification.attempts_left import request_standing
from resim.services.verification.verification import channel_combos, facts_of


@dataclass(frozen=True)
class PortalRequest:
    id: str
    ref: str
    state: State
    reason: str
    msisdn_masked: str
    brand_name: str
    brand_id: str
    brand: BrandLook
    timezone: str
    currency: str
    fee_minor: int
    combos: tuple[tuple[str, ...], ...]  # what verifies on this request's channel
    attempts_left: int
    code_expires_at: dt.datetime | None
    cooling_off_until: dt.datetime | None
    step_up_methods: tuple[str, ...]
    activation_expires_at: dt.datetime | None
    install_failed_at: dt.datetime | None
    installed_at: dt.datetime | None
    completed_at: dt.datetime | None
    old_sim_suspended: bool
    failure_code: str | None
    updated_at: dt.datetime
    delivery_mode: str  # esim | pickup | courier
    address_masked: str | None  # courier: where the card goes, masked
    dispatched_at: dt.datetime | None
    created_at: dt.datetime
    # Issue 12: attempts_left is honest (request and account caps, services.attempts_left);
    # retry_in_seconds is the back-off still to wait (0: try now).
    attempts_max: int = 0
    retry_in_seconds: int = 0
    code_valid_seconds: int | None = None  # the e-mailed code's time left (None: no code)
    # Set while a loss report keeps this request's old SIM blocked (issue 12): the
    # line's loss page, where "I found my phone" lifts it. Ending the request never does.
    loss_line_id: str | None = None
    code_pending: bool = False  # an e-mailed code is out and not used yet (never the code)
    # What confirms on the portal (confirming again: services.reconfirm), whoever opened it
    online_combos: tuple[tuple[str, ...], ...] = ()

    @property
    def uses_email_code(self) -> bool:
        return any("email_otp" in combo for combo in self.combos)

    @property
    def version(self) -> str:
        """Changes whenever what the status page shows changes (for polling)."""
        return f"{self.state.value}:{self.updated_at.isoformat()}:{self.install_failed_at}"


def portal_request(ctx: ServiceContext, request_id: str) -> PortalRequest:
    """One request as the portal shows it; NotFound (REQUEST_NOT_FOUND) if unknown."""
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id)
        brand = repo.get_brand(uow, req.brand_id)
        subscriber = repo.get_subscriber(uow, req.subscriber_id)
        policy = brand.policy
        combos = offered(channel_combos(policy, req.channel.value), facts_of(subscriber))
        standing = request_standing(ctx, uow, req, policy, ctx.now())
        return PortalRequest(
            id=req.id,
            ref=request_ref(req.id),
            state=State(req.state),
            reason=req.reason.value,
            msisdn_masked=mask_msisdn(req.msisdn),
            brand_name=brand.name,
            brand_id=brand.id,
            brand=look_of(brand),
            timezone=brand.timezone,
            currency=req.fee_currency or brand.currency,
            fee_minor=req.fee_minor,
            combos=tuple(tuple(c) for c in combos),
            attempts_left=standing.left,
            code_expires_at=req.otp_expires_at,
            cooling_off_until=req.cooling_off_until,
            step_up_methods=tuple(req.step_up_methods or ()),
            activation_expires_at=req.activation_expires_at,
            install_failed_at=req.install_failed_at,
            installed_at=req.installed_at,
            completed_at=req.completed_at,
            old_sim_suspended=req.old_sim_suspended,
            failure_code=req.failure_code,
            updated_at=req.updated_at,
            delivery_mode=req.delivery.value,
            address_masked=(
                mask_postal_address(subscriber.postal_address)
                if req.delivery == DeliveryMode.COURIER and subscriber.postal_address
                else None
            ),
            dispatched_at=req.dispatched_at,
            attempts_max=policy.otp_max_attempts,
            retry_in_seconds=standing.wait_seconds,
            code_valid_seconds=(
                max(int((req.otp_expires_at - ctx.now()).total_seconds()), 0)
                if req.otp_expires_at is not None and req.otp_hash is not None
                else None
            ),
            loss_line_id=req.line_id if holds(uow, req.old_iccid) else None,
            created_at=req.created_at,
            code_pending=req.otp_hash is not None,
            online_combos=tuple(
                tuple(c)
                for c in offered(channel_combos(policy, Channel.PORTAL.value), facts_of(subscriber))
            ),
        )


@dataclass(frozen=True)
class DeliveryOptions:
    modes: tuple[str, ...]  # in the order of DELIVERY_MODES
    courier_fee_minor: int
    currency: str | None
    # The brand's fee schedule (not this line's fee: whether it had a replacement
    # recently is not for whoever types the number to learn).
    fee_minor: int = 0
    free_per_window: int = 0
    window_days: int = 0
    brand_id: str | None = None


def delivery_options(ctx: ServiceContext, msisdn: str) -> DeliveryOptions:
    """The delivery modes the number's brand offers, for the choose page.

    An unknown or invalid number gets every mode and no surcharge, and the
    page looks the same as for a known one; opening the request then says the
    number is unknown, as it did before modes existed.
    """
    fallback = DeliveryOptions(DELIVERY_MODES, 0, None)
    try:
        number = normalize_msisdn(msisdn)
        with ctx.uow() as uow:
            line = repo.get_line_by_msisdn(uow, number)
            brand = repo.get_brand(uow, line.brand_id)
            policy = brand.policy
            modes = tuple(m for m in DELIVERY_MODES if m in policy.delivery_modes)
            return DeliveryOptions(
                modes,
                policy.courier_fee_minor,
                brand.currency,
                fee_minor=policy.fee.amount_minor,
                free_per_window=policy.fee.free_per_window,
                window_days=policy.fee.window_days,
                brand_id=brand.id,
            )
    except ResimError:
        return fallback
