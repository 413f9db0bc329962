"""The brand a customer deals with, as pages and messages show it; and which
brand's number a customer typed, in whatever format their country writes it.

Read models only, never a secret. :func:`find_number` is what the portal's
number form calls: it accepts E.164 (``+4520123456``), the ``00``
international prefix (``0045 20 12 34 56``) and the national format of every
brand's country (``20 12 34 56`` for a Danish brand, ``333 123 4567`` for an
Italian one), parsed by libphonenumber with that country as the region.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import phonenumbers

from resim.domain.brand_identity import BrandIdentity
from resim.domain.model import Brand
from resim.errors import InvalidInput, NotFound, ResimError
from resim.services import repo
from resim.services.context import ServiceContext


@dataclass(frozen=True)
class BrandLook:
    """What a page or a message shows of a brand."""

    id: str
    name: str
    language: str
    colour: str
    text_colour: str
    has_logo: bool
    phone: str
    phone_uri: str
    web_url: str
    stores_url: str
    notes: tuple[tuple[str, str], ...]
    version: str  # changes when the logo or colours change (cache busting)

    @property
    def has_contact(self) -> bool:
        return bool(self.phone or self.web_url or self.stores_url)

    def note(self, language: str) -> str:
        """The brand's after-swap note in ``language`` (or its own, or English), or ""."""
        return BrandIdentity(after_swap_note=dict(self.notes)).note_in(language, self.language)


def look_of(brand: Brand) -> BrandLook:
    ident = brand.policy.identity
    digest = hashlib.sha256(
        f"{ident.colour}{ident.text_colour}{ident.logo_svg}".encode()
    ).hexdigest()[:12]
    return BrandLook(
        id=brand.id,
        name=ident.display_name or brand.name,
        language=brand.language,
        colour=ident.colour,
        text_colour=ident.text_colour,
        has_logo=bool(ident.logo_svg),
        phone=ident.phone,
        phone_uri=ident.phone_uri,
        web_url=ident.web_url,
        stores_url=ident.stores_url,
        notes=tuple(sorted(ident.after_swap_note.items())),
        version=digest,
    )


def brand_look(ctx: ServiceContext, brand_id: str) -> BrandLook | None:
    """The brand's look, or None when there is no such brand (or its policy is bad)."""
    try:
        with ctx.uow() as uow:
            return look_of(repo.get_brand(uow, brand_id))
    except ResimError:
        return None


def brand_logo(ctx: ServiceContext, brand_id: str) -> str | None:
    """The brand's SVG logo (validated when the policy was stored), or None."""
    try:
        with ctx.uow() as uow:
            svg = repo.get_brand(uow, brand_id).policy.identity.logo_svg
    except ResimError:
        return None
    return svg or None


def contact_values(brand: Brand) -> dict[str, str | None]:
    """The brand's name and contact points for a message's context (None if none)."""
    ident = brand.policy.identity
    return {
        "brand_name": ident.display_name or brand.name,
        "brand_phone": ident.phone or None,
        "brand_web": ident.web_url or None,
    }


# ------------------------------------------------------------- the typed number

_SEPARATORS = re.compile(r"[\s().\-/]")


@dataclass(frozen=True)
class FoundNumber:
    msisdn: str  # E.164
    brand_id: str


def candidates(raw: str, regions: list[str]) -> dict[str, set[str]]:
    """E.164 numbers ``raw`` can mean -> the regions it was read with ("" for +/00).

    Pure: ``+`` and ``00`` numbers are international wherever typed (every demo
    country dials out with 00); anything else is read as a national number of
    each region in turn. Invalid readings are dropped.
    """
    text = raw.strip()
    compact = _SEPARATORS.sub("", text)
    found: dict[str, set[str]] = {}
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    readings = [("", compact)] if compact.startswith("+") else [(r, compact) for r in regions]
    for region, value in readings:
        try:
            parsed = phonenumbers.parse(value, region or None)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        found.setdefault(e164, set()).add(region)
    return found


def find_number(ctx: ServiceContext, raw: str) -> FoundNumber:
    """The line's number and brand for what a customer typed.

    InvalidInput ``NUMBER_REQUIRED`` (empty), ``INVALID_MSISDN`` (no valid
    reading), ``AMBIGUOUS_MSISDN`` (national digits that are a line of two
    brands in different countries: the customer must add the country code);
    NotFound ``LINE_NOT_FOUND`` when no brand here has the number.
    A national reading counts only for a brand of the region it was read in.
    """
    if not raw.strip():
        raise InvalidInput("no number", code="NUMBER_REQUIRED")
    if len(raw) > 40:
        raise InvalidInput("phone number is too long", code="INVALID_MSISDN")
    with ctx.uow() as uow:
        regions = uow.lookups.brand_countries()
        readings = candidates(raw, regions)
        if not readings:
            raise InvalidInput("phone number could not be read", code="INVALID_MSISDN")
        rows = uow.lookups.numbers(readings)
    matches = {
        (msisdn, brand_id)
        for msisdn, brand_id, country in rows
        if "" in readings[msisdn] or country in readings[msisdn]
    }
    if not matches:
        raise NotFound("no line with that phone number", code="LINE_NOT_FOUND")
    if len(matches) > 1:
        raise InvalidInput(
            "the number is ambiguous without a country code", code="AMBIGUOUS_MSISDN"
        )
    msisdn, brand_id = matches.pop()
    return FoundNumber(msisdn=msisdn, brand_id=brand_id)
