"""Bearer credentials read in one statement, outside any transaction (issue 16).

Implements :class:`resim.services.access.credentials.CredentialReader` on an
engine from :func:`resim.adapters.db.engine.create_read_engine`: SQLite in
autocommit (its own WAL snapshot, never the write lock), PostgreSQL with
``AUTOCOMMIT`` (one round trip, no BEGIN/COMMIT). Core statements built once;
SQLAlchemy's result processing turns stored values into Python ones (times as
aware UTC through ``UtcDateTime``, enums, JSON, booleans) exactly as the ORM
does. No encrypted column is read, so no key is needed.
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.security import SessionKind
from resim.services.access.credentials import ClientCredential, SessionCredential

_c, _s, _st = orm.api_client.c, orm.auth_session.c, orm.staff_user.c

_CLIENT = sa.select(
    _c.id, _c.secret_hash, _c.scopes, _c.brand_id, _c.active, _c.last_used_at
).where(_c.id == sa.bindparam("client_id"))

_SESSION = (
    sa.select(
        _s.id,
        _s.kind,
        _s.expires_at,
        _s.revoked_at,
        _s.line_id,
        _s.request_id,
        _s.staff_id,
        _st.role,
        _st.brand_id,
        _st.active,
    )
    .select_from(orm.auth_session.outerjoin(orm.staff_user, _st.id == _s.staff_id))
    .where(_s.token_hash == sa.bindparam("token_hash"))
)


class SqlCredentialReader:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def client(self, client_id: str) -> ClientCredential | None:
        with self._engine.connect() as conn:
            row = conn.execute(_CLIENT, {"client_id": client_id}).first()
        if row is None:
            return None
        return ClientCredential(
            id=row.id,
            secret_hash=row.secret_hash,
            scopes=tuple(row.scopes or ()),
            brand_id=row.brand_id,
            active=bool(row.active),
            last_used_at=row.last_used_at,
        )

    def session(self, token_hash: str) -> SessionCredential | None:
        with self._engine.connect() as conn:
            row = conn.execute(_SESSION, {"token_hash": token_hash}).first()
        if row is None:
            return None
        id_, kind, expires_at, revoked_at, line_id, request_id, staff_id, role, brand, active = row
        return SessionCredential(
            id=id_,
            kind=SessionKind(kind),
            expires_at=expires_at,
            revoked_at=revoked_at,
            line_id=line_id,
            request_id=request_id,
            staff_id=staff_id,
            staff_role=None if role is None else str(getattr(role, "value", role)),
            staff_brand_id=brand,
            staff_active=None if active is None else bool(active),
        )
