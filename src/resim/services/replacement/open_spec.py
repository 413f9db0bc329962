"""What a caller asks to open, checked before anything is looked up.

:func:`parse_open` fails (InvalidInput) only on the input itself, so its
errors say nothing about the number's account; the delivery rules that need
the brand's policy (:func:`check_delivery`) run inside ``open_parsed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from resim.domain.identifiers import normalize_eid, normalize_msisdn
from resim.domain.model import Channel, DeliveryMode, Reason, SimForm
from resim.errors import InvalidInput, Refused
from resim.services.risk.risk_facts import hash_device, normalize_country


@dataclass(frozen=True)
class OpenSpec:
    """What the caller asked for, checked without looking anything up."""

    msisdn: str
    reason: Reason
    channel: Channel
    mode: DeliveryMode
    eid: str | None
    device_hash: str | None
    country: str | None
    # The portal page's language: the request's messages go out in it.
    language: str | None = None


def parse_open(
    *,
    msisdn: str,
    reason: str,
    channel: str = Channel.API.value,
    eid: str | None = None,
    device_id: str | None = None,
    country: str | None = None,
    target_form: str | None = None,
    delivery_mode: str | None = None,
    language: str | None = None,
) -> OpenSpec:
    """Check the input of :func:`open_request` (InvalidInput) without touching the
    database: what fails here says nothing about the number's account."""
    number = normalize_msisdn(msisdn)
    try:
        why = Reason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in Reason)
        raise InvalidInput(f"reason must be one of: {allowed}", code="INVALID_REASON") from None
    try:
        via = Channel(channel)
    except ValueError:
        raise InvalidInput("unknown channel", code="INVALID_CHANNEL") from None
    return OpenSpec(
        msisdn=number,
        reason=why,
        channel=via,
        mode=resolve_delivery(target_form, delivery_mode),
        eid=normalize_eid(eid) if eid else None,
        device_hash=hash_device(device_id),
        country=normalize_country(country),
        language=_language(language),
    )


def _language(tag: str | None) -> str | None:
    """One of resim's message languages, or None (then the customer's on file)."""
    if not tag:
        return None
    from resim.locale import LANGUAGES, normalize_language

    lang = normalize_language(tag)
    return lang if lang in LANGUAGES else None


def resolve_delivery(target_form: str | None, delivery_mode: str | None) -> DeliveryMode:
    """The delivery mode from the caller's form and/or mode (InvalidInput if unknown or
    contradictory): a form alone gives "esim" or "pickup"."""
    form: SimForm | None = None
    if target_form is not None:
        try:
            form = SimForm(target_form)
        except ValueError:
            raise InvalidInput(
                "target_form must be esim or physical", code="INVALID_FORM"
            ) from None
    if delivery_mode is None:
        return DeliveryMode.PICKUP if form == SimForm.PHYSICAL else DeliveryMode.ESIM
    try:
        mode = DeliveryMode(delivery_mode)
    except ValueError:
        allowed = ", ".join(m.value for m in DeliveryMode)
        raise InvalidInput(
            f"delivery_mode must be one of: {allowed}", code="INVALID_DELIVERY_MODE"
        ) from None
    if form is not None and form != mode.form:
        raise InvalidInput(
            f"delivery mode {mode.value} does not deliver a {form.value} SIM",
            code="FORM_MISMATCH",
        )
    return mode


def check_delivery(offered_modes: list[str], mode: DeliveryMode, *, has_address: bool) -> None:
    """Refuse a mode the brand does not offer, and courier without an address on file."""
    if mode.value not in offered_modes:
        raise Refused(
            f"this brand does not offer delivery by {mode.value}",
            code="DELIVERY_MODE_NOT_OFFERED",
        )
    if mode == DeliveryMode.COURIER and not has_address:
        raise Refused(
            "there is no postal address on file to send a card to",
            code="NO_POSTAL_ADDRESS",
        )
