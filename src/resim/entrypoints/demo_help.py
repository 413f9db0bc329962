"""The demo's help beyond the sign-in: cards for a hand-over, the emulated phone,
and the walkthrough's own reviewer (so the printed accounts' TOTP codes stay unused).

A staff login burns its TOTP code: a second login within the same 30-second
step is refused as a replay (``services/access/staff.py``). The walkthrough that
``resim demo`` runs at start therefore signs in as ``demo-walkthrough``, a
reviewer whose password and seed are random and never printed, and the
person who reads the welcome can sign in as ``demo-reviewer`` at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyotp

from resim.demo.demo_data import DemoStaff
from resim.demo.demo_stock import cards_in_stock
from resim.services.context import ServiceContext

if TYPE_CHECKING:
    from resim.entrypoints.demo import DemoStack

WALKTHROUGH_REVIEWER = "demo-walkthrough"


def add_walkthrough_reviewer(ctx: ServiceContext) -> DemoStaff:
    """A reviewer for the start-up walkthrough only (random secrets, kept in memory)."""
    from resim.services.access.staff import create_staff

    password, seed = secrets.token_urlsafe(18), pyotp.random_base32()
    create_staff(
        ctx,
        username=WALKTHROUGH_REVIEWER,
        role="reviewer",
        display_name="Demo Walkthrough",
        password=password,
        actor="demo",
        totp_secret=seed,
    )
    return DemoStaff(WALKTHROUGH_REVIEWER, "reviewer", password, seed)


def print_demo_help(stack: DemoStack, say: Callable[[str], None] = print) -> None:
    """Cards in stock per brand, and how to make the emulated phone install an eSIM."""
    if stack.ctx is not None:
        say("Cards in stock for a hand-over at the counter (console: a line, then hand over):")
        for brand_id, iccids in sorted(cards_in_stock(stack.ctx).items()):
            say(f"  {brand_id:<14} {', '.join(iccids)}")
    emulator = stack.emulator.url
    say("No phone to scan the QR code? The SM-DP+ emulator plays one:")
    say(
        "  portal: on the request's page once the eSIM is ready, press "
        '"Simulate the phone installing this eSIM" (demo only)'
    )
    say(
        f"  API: curl -s -X POST {emulator}/emulator/phone/install "
        "-H 'content-type: application/json' "
        '-d \'{"activation_code": "<qr_payload>"}\''
    )
    say(
        "       <qr_payload> is the QR code's text (LPA:1$...), from GET "
        "/v1/requests/<id>/activation; the emulator downloads and installs the profile, "
        "sends the SM-DP+ callbacks, and the request completes"
    )
