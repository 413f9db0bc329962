"""Credentials for tests that call the API: machine clients and signed-in staff.

Made through the real services (argon2id, TOTP, SHA-256 key hashes), never
by writing rows by hand, so the tests exercise what production does.
"""

from __future__ import annotations

import itertools

import pyotp

from resim.entrypoints.api.access import SCOPES
from resim.services.access import api_clients, staff
from resim.services.context import ServiceContext

_numbers = itertools.count(1)
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_key(ctx: ServiceContext, *scopes: str, brand_id: str | None = None) -> str:
    """A new machine client's API key; every scope when none is named."""
    issued = api_clients.create_client(
        ctx,
        name=f"test client {next(_numbers)}",
        scopes=scopes or tuple(SCOPES),
        known_scopes=SCOPES,
        brand_id=brand_id,
    )
    return issued.key


def enrol(ctx: ServiceContext, role: str, *, brand_id: str | None = None) -> tuple[str, str]:
    """A new staff member with ``role``: (username, TOTP seed); password is PASSWORD."""
    username = f"{role}-{next(_numbers)}"
    seed = pyotp.random_base32()
    staff.create_staff(
        ctx,
        username=username,
        role=role,
        display_name=f"Test {role}",
        password=PASSWORD,
        brand_id=brand_id,
        totp_secret=seed,
    )
    return username, seed


def signed_in(ctx: ServiceContext, role: str, *, brand_id: str | None = None) -> tuple[str, str]:
    """A new staff member with ``role``, signed in: (session token, staff id)."""
    username, seed = enrol(ctx, role, brand_id=brand_id)
    login = staff.login(
        ctx,
        username=username,
        password=PASSWORD,
        totp_code=pyotp.TOTP(seed).at(ctx.now()),
    )
    return login.session.token, login.staff_id


def staff_session(ctx: ServiceContext, role: str, *, brand_id: str | None = None) -> str:
    """A signed-in staff member's session token (new account, password + TOTP)."""
    return signed_in(ctx, role, brand_id=brand_id)[0]
