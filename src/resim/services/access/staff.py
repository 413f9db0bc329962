"""Staff accounts and staff sign-in: password (argon2id) plus a TOTP code (issue 3).

Roles are agent, reviewer and admin (:class:`resim.domain.security.Role`),
checked as given: an admin is not implicitly a reviewer.

* :func:`create_staff` enrols a TOTP seed (RFC 6238, 30 s, 6 digits) and
  returns its ``otpauth://`` provisioning URI once; the seed is kept only in
  the encrypted ``staff_user.totp_secret`` column.
* :func:`login` checks username, password and the current TOTP code and, on
  success, issues a staff session (:mod:`resim.services.access.sessions`). Every
  failure is the same :class:`~resim.errors.Unauthenticated` (LOGIN_FAILED), is
  audited with a reason category (never the password or code) and costs one
  argon2 verification even for an unknown username, so neither the message
  nor the timing tells which part was wrong. A TOTP code is accepted once: a
  login must use a later time step than the previous successful one.
* Throttling (SEC-03 "staff-login:<username>", and "signin-ip:<address>" as an
  alerting ceiling apart from the customers' keys) plugs into :func:`login` at the
  two marked lines: ``attempts.guard`` before any check, ``attempts.record_failure``
  in :func:`_fail`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import pyotp
from argon2 import PasswordHasher

from resim.adapters.crypto import hash_secret, verify_secret
from resim.domain.policy import BrandPolicy
from resim.domain.security import Role, SessionKind, StaffUser
from resim.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from resim.services import repo
from resim.services.access.sessions import IssuedSession, create_session, revoke_sessions_of_staff
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork, new_id
from resim.services.verification import attempts

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
MIN_PASSWORD_LENGTH = 12  # staff accounts are privileged (NIST 800-63B allows >= 8)
MAX_PASSWORD_LENGTH = 256
TOTP_ISSUER = "resim"
TOTP_STEP_SECONDS = 30
LOGIN_FAILED = "username, password or code is not correct"


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """An argon2id hash of a random value at the configured cost: checked when
    the username is unknown, so an unknown user costs as much time as a wrong
    password."""
    return hash_secret(pyotp.random_base32(), hasher=hasher)


@dataclass(frozen=True)
class Enrolment:
    """A new staff account. ``totp_uri`` holds the seed: show it once, store it nowhere."""

    staff_id: str
    username: str
    role: Role
    totp_uri: str


@dataclass(frozen=True)
class StaffLogin:
    session: IssuedSession
    staff_id: str
    role: Role
    display_name: str


def create_staff(
    ctx: ServiceContext,
    *,
    username: str,
    role: str,
    display_name: str,
    password: str,
    email: str | None = None,
    brand_id: str | None = None,
    actor: str = "system",
    totp_secret: str | None = None,
) -> Enrolment:
    """Create a staff account with a fresh TOTP seed (``totp_secret``: demo/tests only).

    Refuses a malformed username, an unknown role or brand, a short password
    (InvalidInput) and a taken username (Conflict USERNAME_TAKEN). Audited
    without the password or the seed.
    """
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput(
            "username: 2-80 characters, lower-case letters, digits, '.', '_' or '-'",
            code="INVALID_USERNAME",
        )
    try:
        staff_role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of: {allowed}", code="INVALID_ROLE") from None
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            code="WEAK_PASSWORD",
        )
    if not display_name.strip() or len(display_name) > 120:
        raise InvalidInput("display name: 1-120 characters", code="INVALID_DISPLAY_NAME")
    seed = totp_secret or pyotp.random_base32()
    now = ctx.now()
    with ctx.uow() as uow:
        if brand_id is not None:
            repo.get_brand(uow, brand_id)
        if _by_username(uow, name) is not None:
            raise Conflict("that username is taken", code="USERNAME_TAKEN")
        staff = StaffUser(
            id=new_id(),
            username=name,
            display_name=display_name.strip(),
            role=staff_role,
            password_hash=hash_secret(password, hasher=ctx.password_hasher),
            created_at=now,
            email=email,
            totp_secret=seed,
            brand_id=brand_id,
        )
        uow.staff.add(staff)  # Conflict USERNAME_TAKEN if a concurrent create won
        uow.audit(
            at=now,
            actor=actor,
            action="staff.created",
            object_type="staff",
            object_id=staff.id,
            detail={"username": name, "role": staff_role.value, "brand_id": brand_id},
        )
        uow.commit()
        uri = pyotp.TOTP(seed).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)
        return Enrolment(staff.id, name, staff_role, uri)


def disable_staff(ctx: ServiceContext, *, username: str, actor: str = "system") -> None:
    """Disable an account and end its sessions at once. Idempotent; audited."""
    now = ctx.now()
    with ctx.uow() as uow:
        staff = _by_username(uow, username.strip().lower(), lock=True)
        if staff is None:
            raise NotFound("no staff member with that username", code="STAFF_NOT_FOUND")
        revoked = revoke_sessions_of_staff(uow, staff.id, now)
        if staff.active or revoked:
            staff.active = False
            uow.audit(
                at=now,
                actor=actor,
                action="staff.disabled",
                object_type="staff",
                object_id=staff.id,
                detail={"username": staff.username, "sessions_revoked": revoked},
            )
        uow.commit()


def list_staff(ctx: ServiceContext) -> list[dict[str, Any]]:
    """Every account, by username; no hash, no seed."""
    with ctx.uow() as uow:
        rows = uow.staff.all()
        return [
            {
                "id": s.id,
                "username": s.username,
                "display_name": s.display_name,
                "role": s.role.value,
                "brand_id": s.brand_id,
                "active": s.active,
                "last_login_at": s.last_login_at.isoformat() if s.last_login_at else None,
            }
            for s in rows
        ]


def login(
    ctx: ServiceContext,
    *,
    username: str,
    password: str,
    totp_code: str,
    source_ip: str | None = None,
) -> StaffLogin:
    """A staff session for username + password + current TOTP code, or LOGIN_FAILED."""
    now = ctx.now()
    name = username.strip().lower()
    with ctx.uow() as uow:
        # SEC-03: back-off and a hard cap per username; the source address is a
        # ceiling that alerts (never a block), counted apart from customers' codes.
        keys = _login_keys(name, source_ip)
        attempts.guard(uow, keys, now, _login_limits(ctx))
        staff = _by_username(uow, name, lock=True) if USERNAME.match(name) else None
        if staff is None:
            verify_secret(
                password, _dummy_hash(ctx.password_hasher)
            )  # same cost as a wrong password
            _fail(ctx, uow, name, "unknown_user", source_ip)
        if not verify_secret(password, staff.password_hash):
            _fail(ctx, uow, name, "wrong_password", source_ip, staff_id=staff.id)
        step = _totp_step(staff.totp_secret, totp_code, now)
        if step is None:
            _fail(ctx, uow, name, "wrong_totp", source_ip, staff_id=staff.id)
        if staff.last_login_at is not None and step <= _step_of(staff.last_login_at):
            _fail(ctx, uow, name, "totp_reused", source_ip, staff_id=staff.id)
        if not staff.active:
            _fail(ctx, uow, name, "disabled", source_ip, staff_id=staff.id)
        staff.last_login_at = now
        attempts.clear(uow, [f"staff-login:{name}"])
        issued = create_session(
            uow,
            kind=SessionKind.STAFF,
            now=now,
            ttl=ctx.staff_session_ttl,
            staff_id=staff.id,
            methods=["password", "totp"],
            source_ip=source_ip,
        )
        uow.audit(
            at=now,
            actor=f"staff:{staff.id}",
            action="staff.login",
            object_type="staff",
            object_id=staff.id,
            detail={"session_id": issued.id, "source_ip": source_ip},
        )
        uow.commit()
        return StaffLogin(issued, staff.id, staff.role, staff.display_name)


def _login_keys(username: str, source_ip: str | None) -> list[str]:
    return [f"staff-login:{username[:80]}"] + ([f"signin-ip:{source_ip}"] if source_ip else [])


def _login_limits(ctx: ServiceContext) -> attempts.Limits:
    return attempts.Limits.from_policy(BrandPolicy(), ip_max_failures=ctx.ip_max_failures)


def _fail(
    ctx: ServiceContext,
    uow: UnitOfWork,
    username: str,
    why: str,
    source_ip: str | None,
    *,
    staff_id: str | None = None,
) -> NoReturn:
    """Audit a failed login, commit, raise the one generic error (never returns)."""
    attempts.record_failure(
        uow, _login_keys(username, source_ip), ctx.now(), _login_limits(ctx), actor="anonymous"
    )
    uow.audit(
        at=ctx.now(),
        actor="anonymous",
        action="staff.login_failed",
        object_type="staff",
        object_id=staff_id or "-",
        detail={"username": username[:80], "reason": why, "source_ip": source_ip},
    )
    uow.commit()
    raise Unauthenticated(LOGIN_FAILED, code="LOGIN_FAILED")


def _totp_step(seed: str | None, code: str, now: dt.datetime) -> int | None:
    """The time step (now, or one either side for clock drift) whose code matches."""
    given = code.strip()
    if seed is None or not given.isdigit() or len(given) != 6:
        return None
    totp = pyotp.TOTP(seed)
    current = _step_of(now)
    for step in (current, current - 1, current + 1):
        expected = totp.at(step * TOTP_STEP_SECONDS)
        if hmac.compare_digest(expected.encode(), given.encode()):
            return step
    return None


def _step_of(at: dt.datetime) -> int:
    return int(at.timestamp()) // TOTP_STEP_SECONDS


def _by_username(uow: UnitOfWork, username: str, *, lock: bool = False) -> StaffUser | None:
    return uow.staff.by_username(username, lock=lock)
