"""Who may act: staff accounts, machine clients, sessions, identity checks, alerts.

Plain classes like ``resim.domain.model``; ``resim.adapters.db.orm`` maps them.
Secrets are held only as hashes (passwords: argon2id; API keys and session
tokens: SHA-256 of a high-entropy random value) or, where resim must read them
back (TOTP seeds), in encrypted columns.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Staff roles. An admin is not implicitly a reviewer: roles are checked as given."""

    AGENT = "agent"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class SessionKind(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"


class StaffUser:
    def __init__(
        self,
        *,
        id: str,
        username: str,
        display_name: str,
        role: Role,
        password_hash: str,
        created_at: dt.datetime,
        email: str | None = None,
        totp_secret: str | None = None,
        brand_id: str | None = None,
        active: bool = True,
    ) -> None:
        self.id = id
        self.username = username
        self.display_name = display_name
        self.role = role
        self.password_hash = password_hash
        self.created_at = created_at
        self.email = email
        self.totp_secret = totp_secret  # encrypted column; never shown after enrolment
        self.brand_id = brand_id  # None: staff of every brand
        self.active = active
        self.last_login_at: dt.datetime | None = None


class ApiClient:
    """A machine caller (BSS, billing, a bank's CAMARA client) with scoped credentials."""

    def __init__(
        self,
        *,
        id: str,
        name: str,
        secret_hash: str,
        scopes: list[str],
        created_at: dt.datetime,
        brand_id: str | None = None,
        active: bool = True,
    ) -> None:
        self.id = id
        self.name = name
        self.secret_hash = secret_hash
        self.scopes: list[str] = list(scopes)
        self.created_at = created_at
        self.brand_id = brand_id
        self.active = active
        self.last_used_at: dt.datetime | None = None


class AuthSession:
    """A bearer session: a staff member after password + TOTP, or a customer bound to a line."""

    def __init__(
        self,
        *,
        id: str,
        token_hash: str,
        kind: SessionKind,
        created_at: dt.datetime,
        expires_at: dt.datetime,
        staff_id: str | None = None,
        line_id: str | None = None,
        request_id: str | None = None,
        methods: list[str] | None = None,
        source_ip: str | None = None,
    ) -> None:
        self.id = id
        self.token_hash = token_hash
        self.kind = kind
        self.created_at = created_at
        self.expires_at = expires_at
        self.staff_id = staff_id
        self.line_id = line_id
        self.request_id = request_id
        self.methods: list[str] = list(methods or [])
        self.source_ip = source_ip
        self.revoked_at: dt.datetime | None = None

    def is_live(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class IdentityCheck:
    """An agent verified a caller or visitor (SEC-08): opens the unredacted view for a while.

    ``method`` is ``id_document`` (document type and the last digits of its
    number, never an image) or a customer-proved method (``email_otp``, ``pin``).
    """

    def __init__(
        self,
        *,
        id: str,
        staff_id: str,
        line_id: str,
        method: str,
        verified_at: dt.datetime,
        expires_at: dt.datetime,
        document_type: str | None = None,
        document_last_digits: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.id = id
        self.staff_id = staff_id
        self.line_id = line_id
        self.method = method
        self.verified_at = verified_at
        self.expires_at = expires_at
        self.document_type = document_type
        self.document_last_digits = document_last_digits
        self.request_id = request_id


class Alert:
    """Something reviewers must look at: a frozen account, a "not me" report, an insider."""

    def __init__(
        self,
        *,
        id: str,
        at: dt.datetime,
        kind: str,
        subject_type: str,
        subject_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.at = at
        self.kind = kind
        self.subject_type = subject_type
        self.subject_id = subject_id
        self.detail: dict[str, Any] = dict(detail or {})
        self.acknowledged_by: str | None = None
        self.acknowledged_at: dt.datetime | None = None
