"""Bearer credentials: who is calling (issue 3, point 1).

Two kinds of bearer credential reach the API:

* an API key of a machine client, ``rsk_<client id>_<secret>`` (see
  :mod:`resim.services.access.api_clients`);
* a session token: 32 random bytes, url-safe base64, issued to a staff member
  after password + TOTP (:mod:`resim.services.access.staff`) or to a customer after
  verifying a request (:func:`issue_customer_session`).

Only SHA-256 of a token is stored. A token has 256 bits of entropy, so a fast
unsalted hash is enough (nobody can guess a preimage) and lets the lookup be
one indexed equality on ``auth_session.token_hash``; argon2 would only slow
every API call. :func:`resolve_bearer` answers with a :class:`Caller` or raises
:class:`~resim.errors.Unauthenticated` with one generic message, whatever was
wrong (unknown, expired, revoked, disabled), so a probe learns nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from resim.domain.model import ReplacementRequest
from resim.domain.security import AuthSession, SessionKind
from resim.domain.workflow import State
from resim.errors import Conflict, Unauthenticated
from resim.services import repo
from resim.services.access.credentials import CredentialReader
from resim.services.context import ServiceContext
from resim.services.transient import retry_transient
from resim.services.unit_of_work import UnitOfWork, new_id

CLIENT_KEY_PREFIX = "rsk_"
# last_used_at is a hint for operators (which keys are dead?), not an audit
# record: write it at most once a minute so every API call is not a write.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)
INVALID_CREDENTIALS = "the credentials are not valid or have expired"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller, as the services see it (the API maps it to a Principal)."""

    kind: str  # "staff" | "customer" | "client"
    id: str  # staff id, client id, or the customer session's id
    session_id: str | None = None
    role: str | None = None
    scopes: frozenset[str] = frozenset()
    line_id: str | None = None
    request_id: str | None = None
    brand_id: str | None = None
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class IssuedSession:
    """A new session. ``token`` is shown to its holder once and never stored."""

    id: str
    token: str
    expires_at: dt.datetime


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_session_token() -> str:
    """32 random bytes, url-safe; never one that looks like an API key."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith(CLIENT_KEY_PREFIX):
            return token


def create_session(
    uow: UnitOfWork,
    *,
    kind: SessionKind,
    now: dt.datetime,
    ttl: dt.timedelta,
    staff_id: str | None = None,
    line_id: str | None = None,
    request_id: str | None = None,
    methods: list[str] | None = None,
    source_ip: str | None = None,
) -> IssuedSession:
    """Add a session row in the caller's transaction; the caller commits."""
    token = new_session_token()
    session = AuthSession(
        id=new_id(),
        token_hash=sha256_hex(token),
        kind=kind,
        created_at=now,
        expires_at=now + ttl,
        staff_id=staff_id,
        line_id=line_id,
        request_id=request_id,
        methods=methods,
        source_ip=source_ip,
    )
    uow.auth_sessions.add(session)
    return IssuedSession(session.id, token, session.expires_at)


@retry_transient
def issue_customer_session(
    ctx: ServiceContext, *, request_id: str, source_ip: str | None = None
) -> IssuedSession:
    """A customer session bound to the request's line and to the request itself.

    Precondition: the caller has just proved identity for ``request_id``
    (``submit_verification`` returned without raising). Refuses a request that
    was never verified (VERIFICATION_REQUIRED), so a bug in a route cannot hand
    out a session for nothing. One transaction; audited without the token.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id)
        issued = add_customer_session(ctx, uow, request, now=now, source_ip=source_ip)
        uow.commit()
        return issued


def add_customer_session(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request: ReplacementRequest,
    *,
    now: dt.datetime,
    source_ip: str | None = None,
) -> IssuedSession:
    """:func:`issue_customer_session` in the caller's transaction (the caller commits):
    the verification that proved identity can issue the session in its own unit of
    work. The same refusal (VERIFICATION_REQUIRED) and the same audit event."""
    if request.verified_at is None or request.state == State.REQUESTED:
        raise Conflict("the request has not been verified", code="VERIFICATION_REQUIRED")
    issued = create_session(
        uow,
        kind=SessionKind.CUSTOMER,
        now=now,
        ttl=ctx.customer_session_ttl,
        line_id=request.line_id,
        request_id=request.id,
        methods=list(request.verification_methods or []),
        source_ip=source_ip,
    )
    uow.audit(
        at=now,
        actor="customer",
        action="session.customer.issued",
        object_type="request",
        object_id=request.id,
        detail={"session_id": issued.id, "expires_at": issued.expires_at.isoformat()},
    )
    return issued


def resolve_bearer(
    ctx: ServiceContext, token: str, *, reader: CredentialReader | None = None
) -> Caller:
    """The caller a bearer credential belongs to, or Unauthenticated (generic message).

    With ``reader`` the credential is read in one statement outside any
    transaction (:mod:`resim.services.access.credentials`); the checks are the
    same. Only a client's ``last_used_at``, when due, is then written, in a
    transaction of its own (at most once a minute per client).
    """
    now = ctx.now()
    if reader is not None:
        if token.startswith(CLIENT_KEY_PREFIX):
            return _resolve_client_read(ctx, reader, token, now)
        return _resolve_session_read(reader, token, now)
    with ctx.uow() as uow:
        if token.startswith(CLIENT_KEY_PREFIX):
            caller = _resolve_client(uow, token, now)
        else:
            caller = _resolve_session(uow, token, now)
        uow.commit()  # last_used_at, when due
        return caller


def _resolve_client(uow: UnitOfWork, key: str, now: dt.datetime) -> Caller:
    client_id, secret = _client_key_parts(key)
    client = uow.api_clients.get(client_id)
    # Compare even when the client is unknown, so timing does not tell ids apart.
    stored = client.secret_hash if client is not None else sha256_hex("")
    matches = hmac.compare_digest(sha256_hex(secret), stored)
    if client is None or not matches or not client.active:
        raise Unauthenticated(INVALID_CREDENTIALS)
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_GRANULARITY:
        client.last_used_at = now
    return Caller(
        kind="client",
        id=client.id,
        scopes=frozenset(client.scopes),
        brand_id=client.brand_id,
    )


def _resolve_session(uow: UnitOfWork, token: str, now: dt.datetime) -> Caller:
    if not token or len(token) > 200:
        raise Unauthenticated(INVALID_CREDENTIALS)
    session = uow.auth_sessions.by_token_hash(sha256_hex(token))
    if session is None or not session.is_live(now):
        raise Unauthenticated(INVALID_CREDENTIALS)
    if session.kind == SessionKind.STAFF:
        staff = uow.staff.get(session.staff_id) if session.staff_id else None
        if staff is None or not staff.active:
            raise Unauthenticated(INVALID_CREDENTIALS)
        return Caller(
            kind="staff",
            id=staff.id,
            session_id=session.id,
            role=staff.role.value,
            brand_id=staff.brand_id,
            expires_at=session.expires_at,
        )
    return Caller(
        kind="customer",
        id=session.id,
        session_id=session.id,
        line_id=session.line_id,
        request_id=session.request_id,
        expires_at=session.expires_at,
    )


def _client_key_parts(key: str) -> tuple[str, str]:
    client_id, sep, secret = key.removeprefix(CLIENT_KEY_PREFIX).partition("_")
    if not sep or not client_id or not secret or len(client_id) > 40:
        raise Unauthenticated(INVALID_CREDENTIALS)
    return client_id, secret


def _resolve_client_read(
    ctx: ServiceContext, reader: CredentialReader, key: str, now: dt.datetime
) -> Caller:
    client_id, secret = _client_key_parts(key)
    client = reader.client(client_id)
    # Compare even when the client is unknown, so timing does not tell ids apart.
    stored = client.secret_hash if client is not None else sha256_hex("")
    matches = hmac.compare_digest(sha256_hex(secret), stored)
    if client is None or not matches or not client.active:
        raise Unauthenticated(INVALID_CREDENTIALS)
    due = client.last_used_at is None or now - client.last_used_at >= LAST_USED_GRANULARITY
    if due and ctx.client_use.claim(client.id, now, LAST_USED_GRANULARITY):
        _touch_client(ctx, client.id, now)
    return Caller(
        kind="client",
        id=client.id,
        scopes=frozenset(client.scopes),
        brand_id=client.brand_id,
    )


def _touch_client(ctx: ServiceContext, client_id: str, now: dt.datetime) -> None:
    """Set ``last_used_at`` (a hint for operators, see LAST_USED_GRANULARITY)."""
    with ctx.uow() as uow:
        client = uow.api_clients.get(client_id)
        if client is not None and (
            client.last_used_at is None or now - client.last_used_at >= LAST_USED_GRANULARITY
        ):
            client.last_used_at = now
            uow.commit()


def _resolve_session_read(reader: CredentialReader, token: str, now: dt.datetime) -> Caller:
    if not token or len(token) > 200:
        raise Unauthenticated(INVALID_CREDENTIALS)
    session = reader.session(sha256_hex(token))
    if session is None or not session.is_live(now):
        raise Unauthenticated(INVALID_CREDENTIALS)
    if session.kind == SessionKind.STAFF:
        if session.staff_id is None or not session.staff_active or session.staff_role is None:
            raise Unauthenticated(INVALID_CREDENTIALS)
        return Caller(
            kind="staff",
            id=session.staff_id,
            session_id=session.id,
            role=session.staff_role,
            brand_id=session.staff_brand_id,
            expires_at=session.expires_at,
        )
    return Caller(
        kind="customer",
        id=session.id,
        session_id=session.id,
        line_id=session.line_id,
        request_id=session.request_id,
        expires_at=session.expires_at,
    )


def revoke_session(ctx: ServiceContext, *, session_id: str, actor: str) -> None:
    """Log out: the session stops working at once. Idempotent; audited."""
    now = ctx.now()
    with ctx.uow() as uow:
        session = uow.auth_sessions.get(session_id, lock=True)
        if session is None:
            return
        if session.revoked_at is None:
            session.revoked_at = now
            uow.audit(
                at=now,
                actor=actor,
                action="session.revoked",
                object_type="session",
                object_id=session.id,
                detail={"kind": session.kind.value},
            )
        uow.commit()


def revoke_sessions_of_staff(uow: UnitOfWork, staff_id: str, now: dt.datetime) -> int:
    """Revoke every live session of a staff member in the caller's transaction."""
    return uow.auth_sessions.revoke_live_of_staff(staff_id, now)
