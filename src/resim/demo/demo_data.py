"""The demo's fictional brands (Denmark, Norway, Italy, France) and their lines.

Numbers are valid mobile numbers of each country (checked with
libphonenumber); ICCIDs carry correct Luhn digits; IMSIs use test MCC/MNC
pairs. No real operator is named.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from resim.demo import demo_identity
from resim.domain.policy import BrandPolicy, FeeRule
from resim.domain.verification import email_code_alone
from resim.services.context import ServiceContext
from resim.services.onboarding import seed

# SEC-07 in the demo: its customers have no TOTP (the step-up method a portal
# customer could use) and 127.0.0.1 has no country, so a new device or an unknown
# country is recorded and shown to staff but does not hold the request. A real
# brand keeps the defaults (a step-up); see docs/security.md.
DEMO_RISK_RULES: dict[str, dict[str, object]] = {
    "new_device": {"outcome": "allow"},
    "new_country": {"outcome": "allow"},
}
DEMO_MISSING_SIGNAL = {r: {"self_service": "allow"} for r in ("new_device", "new_country")}


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
            BrandPolicy(
                verification=email_code_alone(),
                fee=FeeRule(amount_minor=9900),
                identity=demo_identity.NORDLYS,
                risk_rules=DEMO_RISK_RULES,
                missing_signal=DEMO_MISSING_SIGNAL,
            ),
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
                identity=demo_identity.FJORDNETT,
                risk_rules=DEMO_RISK_RULES,
                missing_signal=DEMO_MISSING_SIGNAL,
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
                identity=demo_identity.LAGO,
                # Shows the other hand-over and the two-person unfreeze (issue 12).
                agent_esim_handoff="email",
                unfreeze_reviewers=2,
                risk_rules=DEMO_RISK_RULES,
                missing_signal=DEMO_MISSING_SIGNAL,
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
            BrandPolicy(
                verification=email_code_alone(),
                fee=FeeRule(amount_minor=1000),
                identity=demo_identity.ONDE,
                risk_rules=DEMO_RISK_RULES,
                missing_signal=DEMO_MISSING_SIGNAL,
            ),
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
    # Issue 14: what the customer's ID document shows, for the console's ID check.
    name: str = ""
    birth_date: str | None = None  # ISO 8601
    document_number: str | None = None


@dataclass
class DemoData:
    """What ``resim demo`` seeded (``demo/demo_seed.py`` states the contract)."""

    lines: list[DemoLine]
    stock: dict[str, list[str]]  # brand id -> ICCIDs of eSIM profile stock
    # numbers that have no SIM yet (reserved, or ported in and not activated)
    numbers_without_sim: list[str] = field(default_factory=list)


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
    from resim.services.access.api_clients import create_client
    from resim.services.access.staff import create_staff

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
