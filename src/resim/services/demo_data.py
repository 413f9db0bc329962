"""The demo's fictional brands (Denmark, Norway, Italy, France) and their lines.

Numbers are valid mobile numbers of each country (checked with
libphonenumber); ICCIDs carry correct Luhn digits; IMSIs use test MCC/MNC
pairs. No real operator is named.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection
from dataclasses import dataclass

from resim.adapters.crypto import hash_secret
from resim.domain.identifiers import iccid_with_check_digit, normalize_msisdn
from resim.domain.model import SimForm
from resim.domain.policy import BrandPolicy, FeeRule
from resim.domain.verification import email_code_alone
from resim.services import seed
from resim.services.context import ServiceContext


@dataclass(frozen=True)
class DemoBrand:
    spec: seed.BrandSpec
    number_prefix: str  # E.164 prefix of a mobile range
    digits: int  # digits after the prefix
    mcc_mnc: str
    iccid_issuer: str  # 89 + country code + issuer digits
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    mail_domain: str


DEMO_BRANDS = (
    DemoBrand(
        seed.BrandSpec(
            "nordlys-dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone(), fee=FeeRule(amount_minor=9900)),
        ),
        "+452",
        7,
        "23899",
        "894599",
        ("Mette", "Lars", "Sofie", "Jens", "Freja"),
        ("Jensen", "Nielsen", "Hansen", "Pedersen"),
        "nordlys.example",
    ),
    DemoBrand(
        seed.BrandSpec(
            "fjordnett-no",
            "Fjordnett",
            "NO",
            "NOK",
            "nb",
            "Europe/Oslo",
            # No courier in this brand: cards only over the counter.
            BrandPolicy(
                require_pin=True,
                fee=FeeRule(amount_minor=14900),
                delivery_modes=["esim", "pickup"],
            ),
        ),
        "+474",
        7,
        "24299",
        "894799",
        ("Ingrid", "Ola", "Nora", "Henrik", "Sigrid"),
        ("Hansen", "Johansen", "Olsen", "Larsen"),
        "fjordnett.example",
    ),
    DemoBrand(
        seed.BrandSpec(
            "lago-it",
            "Lago Mobile",
            "IT",
            "EUR",
            "it",
            "Europe/Rome",
            # Shows the CAMARA legal limit: 30 days of SIM-change history.
            BrandPolicy(
                verification=email_code_alone(),
                fee=FeeRule(amount_minor=1000),
                camara_monitored_days=30,
                courier_fee_minor=500,
            ),
        ),
        "+3933",
        8,
        "22299",
        "893999",
        ("Giulia", "Marco", "Chiara", "Luca", "Sofia"),
        ("Rossi", "Russo", "Ferrari", "Esposito"),
        "lago.example",
    ),
    DemoBrand(
        seed.BrandSpec(
            "onde-fr",
            "Onde Mobile",
            "FR",
            "EUR",
            "fr",
            "Europe/Paris",
            BrandPolicy(verification=email_code_alone(), fee=FeeRule(amount_minor=1000)),
        ),
        "+336",
        8,
        "20899",
        "893399",
        ("Camille", "Louis", "Chloé", "Hugo", "Léa"),
        ("Martin", "Bernard", "Dubois", "Moreau"),
        "onde.example",
    ),
)


@dataclass(frozen=True)
class DemoLine:
    brand_id: str
    msisdn: str
    email: str
    pin: str | None


@dataclass
class DemoData:
    lines: list[DemoLine]
    stock: dict[str, list[str]]  # brand id -> ICCIDs of eSIM profile stock


def make_msisdn(brand: DemoBrand, rng: random.Random) -> str:
    for _ in range(100):
        candidate = brand.number_prefix + "".join(
            str(rng.randrange(10)) for _ in range(brand.digits)
        )
        try:
            return normalize_msisdn(candidate)
        except Exception:  # noqa: S112 - draw again until the number is valid for the country
            continue
    raise RuntimeError(f"could not draw a valid number for {brand.spec.id}")


# A street and a town per country for the demo's postal addresses (courier).
_DEMO_ADDRESS = {
    "DK": ("Vestergade {n}", "1050 København K"),
    "NO": ("Storgata {n}", "0150 Oslo"),
    "IT": ("Via Roma {n}", "00184 Roma"),
    "FR": ("{n} rue de la Paix", "75011 Paris"),
}


def demo_address(country: str, n: int) -> str:
    street, town = _DEMO_ADDRESS[country]
    return f"{street.format(n=n + 1)}, {town}"


def seed_demo(
    ctx: ServiceContext,
    *,
    lines_per_brand: int = 75,
    stock_per_brand: int = 100,
    seed_value: int = 7,
) -> DemoData:
    rng = random.Random(seed_value)
    data = DemoData(lines=[], stock={})
    demo_pin = "2468"  # one PIN for every demo line whose brand asks for one
    demo_pin_hash = hash_secret(demo_pin)  # argon2 is slow on purpose: hash it once
    for b_index, brand in enumerate(DEMO_BRANDS):
        seed.upsert_brand(ctx, brand.spec)
        used: set[str] = set()
        for n in range(lines_per_brand):
            msisdn = make_msisdn(brand, rng)
            while msisdn in used:
                msisdn = make_msisdn(brand, rng)
            used.add(msisdn)
            first, last = rng.choice(brand.first_names), rng.choice(brand.last_names)
            email = f"{first.lower()}.{last.lower()}{n}@{brand.mail_domain}".replace("é", "e")
            pin = demo_pin if brand.spec.policy.require_pin else None
            seed.add_line(
                ctx,
                seed.LineSpec(
                    brand_id=brand.spec.id,
                    msisdn=msisdn,
                    name=f"{first} {last}",
                    email=email,
                    iccid=iccid_with_check_digit(f"{brand.iccid_issuer}1{b_index}{n:011d}"),
                    imsi=f"{brand.mcc_mnc}1{n:09d}",
                    form=SimForm.ESIM,
                    pin_hash=demo_pin_hash if pin else None,
                    # the first line of each brand changed its e-mail lately: held for review
                    email_changed_at=ctx.now() - dt.timedelta(days=3) if n == 0 else None,
                    # every tenth line has no address on file: courier is refused for it
                    postal_address=None if n % 10 == 9 else demo_address(brand.spec.country, n),
                ),
            )
            data.lines.append(DemoLine(brand.spec.id, msisdn, email, pin))
        profiles = [
            (
                iccid_with_check_digit(f"{brand.iccid_issuer}2{b_index}{n:011d}"),
                f"{brand.mcc_mnc}2{n:09d}",
            )
            for n in range(stock_per_brand)
        ]
        seed.add_stock(ctx, brand_id=brand.spec.id, profile_type="default", profiles=profiles)
        data.stock[brand.spec.id] = [i for i, _ in profiles]
        cards = [
            (
                iccid_with_check_digit(f"{brand.iccid_issuer}3{b_index}{n:011d}"),
                f"{brand.mcc_mnc}3{n:09d}",
            )
            for n in range(stock_per_brand // 4)
        ]
        seed.add_stock(
            ctx, brand_id=brand.spec.id, profile_type="card", profiles=cards, form=SimForm.PHYSICAL
        )
    return data


# ---------------------------------------------------------------- demo identities

# Dev-only credentials, printed by `resim demo`: never use them outside a demo.
DEMO_STAFF = (
    # (username, role, display name, password, fixed TOTP seed in base32)
    ("demo-agent", "agent", "Demo Agent", "demo-agent-password", "RESIMDEMOAGENT" + "A" * 18),
    (
        "demo-reviewer",
        "reviewer",
        "Demo Reviewer",
        "demo-reviewer-pass",
        "RESIMDEMOREVIEW" + "A" * 17,
    ),
    ("demo-admin", "admin", "Demo Admin", "demo-admin-password", "RESIMDEMOADMIN" + "A" * 18),
)


@dataclass(frozen=True)
class DemoStaff:
    username: str
    role: str
    password: str
    totp_seed: str


@dataclass(frozen=True)
class DemoCredentials:
    client_key: str  # the demo BSS: every scope
    staff: dict[str, DemoStaff]  # by role


def seed_demo_identities(ctx: ServiceContext, *, scopes: Collection[str]) -> DemoCredentials:
    """One machine client with ``scopes`` and one agent, reviewer and admin (dev secrets)."""
    from resim.services.api_clients import create_client
    from resim.services.staff import create_staff

    client = create_client(ctx, name="demo BSS", scopes=scopes, known_scopes=scopes, actor="demo")
    staff: dict[str, DemoStaff] = {}
    for username, role, display_name, password, seed_b32 in DEMO_STAFF:
        create_staff(
            ctx,
            username=username,
            role=role,
            display_name=display_name,
            password=password,
            actor="demo",
            totp_secret=seed_b32,
        )
        staff[role] = DemoStaff(username, role, password, seed_b32)
    return DemoCredentials(client.key, staff)
