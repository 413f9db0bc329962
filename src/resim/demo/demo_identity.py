"""How the demo's fictional brands present themselves: logos, colours, contact points.

All invented: the logos are simple shapes drawn here, the web addresses are
under ``.example`` (reserved, RFC 2606) and the phone numbers belong to no
real customer service. The after-swap notes show what a brand writes there.
"""

from __future__ import annotations

from resim.domain.brand_identity import BrandIdentity


def _logo(name: str, colour: str, mark: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="48" height="48"'
        f' role="img" aria-label="{name}"><title>{name}</title>'
        f'<rect width="48" height="48" rx="10" fill="{colour}"/>{mark}</svg>'
    )


NORDLYS = BrandIdentity(
    display_name="Nordlys Mobil",
    logo_svg=_logo(
        "Nordlys Mobil",
        "#0f6b5c",
        '<path d="M7 33 C17 12 29 40 41 16" stroke="#9be7c4" stroke-width="5"'
        ' fill="none" stroke-linecap="round"/>',
    ),
    colour="#0f6b5c",
    phone="+45 70 10 20 30",
    web_url="https://nordlys.example/kundeservice",
    stores_url="https://nordlys.example/butikker",
    after_swap_note={
        "da": "Bruger du MitID-appen, så åbn den på den nye telefon og tjek, at den stadig virker.",
        "en": "If you use the MitID app, open it on the new phone and check that it still works.",
    },
)

FJORDNETT = BrandIdentity(
    display_name="Fjordnett",
    logo_svg=_logo(
        "Fjordnett",
        "#1d4e89",
        '<path d="M6 36 L18 14 L26 28 L32 20 L42 36 Z" fill="#cfe3ff"/>',
    ),
    colour="#1d4e89",
    phone="+47 800 12 345",
    web_url="https://fjordnett.example/kundeservice",
    stores_url="https://fjordnett.example/butikker",
    after_swap_note={
        "nb": "SIM-basert BankID (BankID på mobil) må aktiveres på nytt for det nye SIM-kortet,"
        " i nettbanken din.",
        "en": "SIM-based BankID (BankID on mobile) must be activated again for the new SIM,"
        " in your online bank.",
    },
)

LAGO = BrandIdentity(
    display_name="Lago Mobile",
    logo_svg=_logo(
        "Lago Mobile",
        "#00607a",
        '<ellipse cx="24" cy="28" rx="17" ry="8" fill="#bdeefa"/>'
        '<circle cx="33" cy="14" r="5" fill="#ffd166"/>',
    ),
    colour="#00607a",
    phone="+39 06 1234 5678",
    web_url="https://lago.example/assistenza",
    stores_url="https://lago.example/negozi",
    after_swap_note={
        "it": "Se la tua banca ti invia i codici via SMS, potrebbe chiederti di confermare"
        " di nuovo il numero prima di autorizzare i pagamenti.",
        "en": "If your bank sends you codes by SMS, it may ask you to confirm your number again"
        " before it approves payments.",
    },
)

ONDE = BrandIdentity(
    display_name="Onde Mobile",
    logo_svg=_logo(
        "Onde Mobile",
        "#a3214a",
        '<path d="M6 22 Q12 14 18 22 T30 22 T42 22 M6 32 Q12 24 18 32 T30 32 T42 32"'
        ' stroke="#ffd6e2" stroke-width="4" fill="none"/>',
    ),
    colour="#a3214a",
    phone="+33 1 23 45 67 89",
    web_url="https://onde.example/assistance",
    stores_url="https://onde.example/boutiques",
    after_swap_note={
        "fr": "Si votre banque vous envoie des codes par SMS, elle peut vous demander de"
        " confirmer à nouveau votre numéro avant d'accepter un paiement.",
        "en": "If your bank sends you codes by SMS, it may ask you to confirm your number again"
        " before it approves payments.",
    },
)
