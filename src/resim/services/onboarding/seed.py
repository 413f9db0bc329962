"""Creating brands, subscribers, lines and SIM stock: one path for import, demo and tests.

``add_line`` also binds the line's current SIM in the core network, so resim
and the core agree from the first day (invariant 1 holds in both).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.adapters.crypto import hash_secret
from resim.domain.identifiers import normalize_iccid, normalize_imsi, normalize_msisdn
from resim.domain.model import Brand, Line, Sim, SimForm, SimState, Subscriber
from resim.domain.policy import BrandPolicy
from resim.errors import Conflict, InvalidInput
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.unit_of_work import new_id


@dataclass(frozen=True)
class BrandSpec:
    id: str
    name: str
    country: str
    currency: str
    language: str
    timezone: str
    policy: BrandPolicy


def upsert_brand(ctx: ServiceContext, spec: BrandSpec) -> None:
    with ctx.uow() as uow:
        brand = uow.brands.get(spec.id)
        if brand is None:
            uow.brands.add(
                Brand(
                    id=spec.id,
                    name=spec.name,
                    country=spec.country,
                    currency=spec.currency,
                    language=spec.language,
                    timezone=spec.timezone,
                    policy=spec.policy.to_dict(),
                )
            )
        else:
            brand.name, brand.country, brand.currency = spec.name, spec.country, spec.currency
            brand.language, brand.timezone = spec.language, spec.timezone
            brand.policy_data = spec.policy.to_dict()
        uow.commit()


@dataclass(frozen=True)
class LineSpec:
    brand_id: str
    msisdn: str
    name: str
    email: str
    iccid: str
    imsi: str
    language: str | None = None
    form: SimForm = SimForm.ESIM
    pin: str | None = None
    pin_hash: str | None = None  # already hashed (argon2id); wins over ``pin``
    subscriber_id: str | None = None
    email_changed_at: dt.datetime | None = None
    locked: bool = False
    postal_address: str | None = None  # a courier sends replacement cards here
    # Issue 14: what an agent compares the customer's ID document with (encrypted).
    birth_date: str | None = None  # ISO 8601
    id_document_number: str | None = None


def add_line(ctx: ServiceContext, spec: LineSpec) -> str:
    """Create subscriber (unless given), line and its active SIM; bind it in the core."""
    msisdn = normalize_msisdn(spec.msisdn)
    iccid = normalize_iccid(spec.iccid)
    imsi = normalize_imsi(spec.imsi)
    if "@" not in spec.email:
        raise InvalidInput("email address is not valid", code="INVALID_EMAIL")
    now = ctx.now()
    with ctx.uow() as uow:
        brand = repo.get_brand(uow, spec.brand_id)
        if uow.sims.get(iccid) is not None:
            raise Conflict(f"SIM {iccid} already exists", code="SIM_EXISTS")
        sub_id = spec.subscriber_id or new_id()
        if uow.subscribers.get(sub_id) is None:
            added = Subscriber(
                id=sub_id,
                brand_id=brand.id,
                name=spec.name,
                email=spec.email,
                language=spec.language or brand.language,
                created_at=now,
                email_changed_at=spec.email_changed_at,
                pin_hash=spec.pin_hash
                or (hash_secret(spec.pin, hasher=ctx.password_hasher) if spec.pin else None),
                postal_address=spec.postal_address,
            )
            added.birth_date = spec.birth_date
            added.id_document_number = spec.id_document_number
            uow.subscribers.add(added)
            uow.flush()  # no ORM relationships: insert the parent first
        line_id = new_id()
        uow.lines.add(
            Line(
                id=line_id,
                msisdn=msisdn,
                subscriber_id=sub_id,
                brand_id=brand.id,
                created_at=now,
                sim_change_locked=spec.locked,
            )
        )
        uow.flush()
        uow.sims.add(
            Sim(
                iccid=iccid,
                imsi=imsi,
                form=spec.form,
                state=SimState.ACTIVE,
                brand_id=brand.id,
                line_id=line_id,
            )
        )
        uow.commit()
    ctx.core.provision_imsi(imsi=imsi)
    ctx.core.move_msisdn(msisdn=msisdn, new_imsi=imsi, old_imsi=None)
    return line_id


def add_stock(
    ctx: ServiceContext,
    *,
    brand_id: str,
    profile_type: str,
    profiles: list[tuple[str, str]],
    keys: dict[str, tuple[str | None, str | None]] | None = None,
    form: SimForm = SimForm.ESIM,
) -> int:
    """Add eSIM profiles (or, with ``form``, physical cards) (ICCID, IMSI) to stock;
    existing ICCIDs are skipped. Returns added.

    ``keys`` maps a normalised ICCID to its (Ki, OPc), validated hex; they are
    stored in encrypted columns.
    """
    added = 0
    with ctx.uow() as uow:
        repo.get_brand(uow, brand_id)
        for raw_iccid, raw_imsi in profiles:
            iccid, imsi = normalize_iccid(raw_iccid), normalize_imsi(raw_imsi)
            if uow.sims.get(iccid) is not None:
                continue
            ki, opc = (keys or {}).get(iccid, (None, None))
            uow.sims.add(
                Sim(
                    iccid=iccid,
                    imsi=imsi,
                    form=form,
                    state=SimState.IN_STOCK,
                    brand_id=brand_id,
                    profile_type=profile_type,
                    ki=ki,
                    opc=opc,
                )
            )
            added += 1
        uow.commit()
    return added


def add_number_without_sim(
    ctx: ServiceContext, *, brand_id: str, subscriber_id: str, msisdn: str, actor: str = "seed"
) -> str:
    """A number of ``subscriber_id`` that has no SIM yet (reserved, or ported in and
    not activated): ``line.awaiting_sim``. Nothing goes to the core network (there is
    no IMSI to bind). Returns the line id; audited as ``line.reserved``."""
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        subscriber = repo.get_subscriber(uow, subscriber_id)
        if subscriber.brand_id != brand_id:
            raise InvalidInput("the subscriber is of another brand", code="BRAND_MISMATCH")
        if uow.lines.by_msisdn(number) is not None:
            raise Conflict("a line with that number already exists", code="LINE_EXISTS")
        line_id = new_id()
        uow.lines.add(
            Line(
                id=line_id,
                msisdn=number,
                subscriber_id=subscriber_id,
                brand_id=brand_id,
                created_at=now,
                awaiting_sim=True,
            )
        )
        uow.audit(
            at=now,
            actor=actor,
            action="line.reserved",
            object_type="line",
            object_id=line_id,
            detail={"awaiting_sim": True},
        )
        uow.commit()
    return line_id
