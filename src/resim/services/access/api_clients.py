"""Machine clients (BSS, billing, a bank's CAMARA client) and their API keys (issue 3).

A key is ``rsk_<client id>_<secret>``: the client id says which row to read,
the secret proves possession. The secret is 32 random bytes (url-safe), so
SHA-256 of it is stored, not argon2: a high-entropy value cannot be guessed
from its hash, and a fast hash keeps each API call cheap. Keys are compared
with ``hmac.compare_digest`` (see :func:`resim.services.access.sessions.resolve_bearer`).
The key is returned once by :func:`create_client` and never again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from resim.domain.security import ApiClient
from resim.errors import InvalidInput, NotFound
from resim.services import repo
from resim.services.access.sessions import CLIENT_KEY_PREFIX, sha256_hex
from resim.services.context import ServiceContext
from resim.services.unit_of_work import new_id

NAME = re.compile(r"^[\w .:/-]{1,120}$")


@dataclass(frozen=True)
class IssuedClient:
    """A new client. ``key`` is the whole credential: show it once, store it nowhere."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    key: str


def create_client(
    ctx: ServiceContext,
    *,
    name: str,
    scopes: Iterable[str],
    known_scopes: Collection[str],
    brand_id: str | None = None,
    actor: str = "system",
) -> IssuedClient:
    """Create a client with the given scopes (each one of ``known_scopes``). Audited."""
    wanted = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    if not wanted:
        raise InvalidInput("a client needs at least one scope", code="INVALID_SCOPE")
    unknown = [s for s in wanted if s not in known_scopes]
    if unknown:
        raise InvalidInput(
            f"unknown scope {unknown[0]!r}; known: {', '.join(sorted(known_scopes))}",
            code="INVALID_SCOPE",
        )
    if not NAME.match(name.strip()):
        raise InvalidInput("name: 1-120 letters, digits, spaces or .:/-_", code="INVALID_NAME")
    secret = secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.uow() as uow:
        if brand_id is not None:
            repo.get_brand(uow, brand_id)
        client = ApiClient(
            id=new_id(),
            name=name.strip(),
            secret_hash=sha256_hex(secret),
            scopes=list(wanted),
            created_at=now,
            brand_id=brand_id,
        )
        uow.api_clients.add(client)
        uow.audit(
            at=now,
            actor=actor,
            action="client.created",
            object_type="client",
            object_id=client.id,
            detail={"name": client.name, "scopes": list(wanted), "brand_id": brand_id},
        )
        uow.commit()
        return IssuedClient(
            client.id, client.name, wanted, f"{CLIENT_KEY_PREFIX}{client.id}_{secret}"
        )


def revoke_client(ctx: ServiceContext, *, client_id: str, actor: str = "system") -> None:
    """The client's key stops working at once. Idempotent; audited."""
    now = ctx.now()
    with ctx.uow() as uow:
        client = uow.api_clients.get(client_id, lock=True)
        if client is None:
            raise NotFound("no API client with that id", code="CLIENT_NOT_FOUND")
        if client.active:
            client.active = False
            uow.audit(
                at=now,
                actor=actor,
                action="client.revoked",
                object_type="client",
                object_id=client.id,
                detail={"name": client.name},
            )
        uow.commit()


def list_clients(ctx: ServiceContext) -> list[dict[str, Any]]:
    """Every client, oldest first; never the key or its hash."""
    with ctx.uow() as uow:
        rows = uow.api_clients.all()
        return [
            {
                "id": c.id,
                "name": c.name,
                "scopes": list(c.scopes),
                "brand_id": c.brand_id,
                "active": c.active,
                "last_used_at": c.last_used_at.isoformat() if c.last_used_at else None,
            }
            for c in rows
        ]
