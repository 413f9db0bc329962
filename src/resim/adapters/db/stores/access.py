"""SQL stores of staff accounts, machine clients and bearer sessions."""

from __future__ import annotations

import datetime as dt
import functools

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.domain.security import ApiClient, AuthSession, Role, StaffUser
from resim.errors import Conflict

_st = orm.staff_user.c
_DISPLAY_NAME = sa.select(_st.display_name).where(_st.id == sa.bindparam("staff_id"))


class _Entities:
    """Statements that select mapped classes: built on first use, once the mappers
    are started (``orm.start_mappers``), then reused."""

    def __init__(self) -> None:
        by_username = sa.select(StaffUser).where(_st.username == sa.bindparam("username"))
        self.staff_by_username = by_username
        self.staff_by_username_locked = by_username.with_for_update()
        self.all_staff = sa.select(StaffUser).order_by(_st.username)
        self.reviewers = (
            sa.select(StaffUser)
            .where(_st.role == Role.REVIEWER, _st.active.is_(True))
            .order_by(_st.username)
        )
        self.all_clients = sa.select(ApiClient).order_by(orm.api_client.c.created_at)
        self.session_by_token = sa.select(AuthSession).where(
            orm.auth_session.c.token_hash == sa.bindparam("token_hash")
        )


@functools.cache
def _q() -> _Entities:
    return _Entities()


_as = orm.auth_session
_REVOKE_OF_STAFF = (
    sa.update(_as)
    .where(
        _as.c.staff_id == sa.bindparam("of_staff"),
        _as.c.revoked_at.is_(None),
        _as.c.expires_at > sa.bindparam("now"),
    )
    .values(revoked_at=sa.bindparam("at_now"))
)


class SqlStaffStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def add(self, staff: StaffUser) -> None:
        session = self._uow.session
        session.add(staff)
        try:
            session.flush()
        except IntegrityError:  # a concurrent create with the same username
            raise Conflict("that username is taken", code="USERNAME_TAKEN") from None

    def get(self, staff_id: str) -> StaffUser | None:
        return self._uow.session.get(StaffUser, staff_id)

    def by_username(self, username: str, *, lock: bool = False) -> StaffUser | None:
        stmt = _q().staff_by_username_locked if lock else _q().staff_by_username
        return self._uow.session.scalars(stmt, {"username": username}).one_or_none()

    def all(self) -> list[StaffUser]:
        return list(self._uow.session.scalars(_q().all_staff))

    def active_reviewers(self) -> list[StaffUser]:
        return list(self._uow.session.scalars(_q().reviewers))

    def display_name(self, staff_id: str) -> str | None:
        return self._uow.session.scalar(_DISPLAY_NAME, {"staff_id": staff_id})


class SqlApiClientStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def add(self, client: ApiClient) -> None:
        self._uow.session.add(client)

    def get(self, client_id: str, *, lock: bool = False) -> ApiClient | None:
        return self._uow.session.get(ApiClient, client_id, with_for_update=lock or None)

    def all(self) -> list[ApiClient]:
        return list(self._uow.session.scalars(_q().all_clients))


class SqlAuthSessionStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def add(self, session: AuthSession) -> None:
        self._uow.session.add(session)

    def get(self, session_id: str, *, lock: bool = False) -> AuthSession | None:
        return self._uow.session.get(AuthSession, session_id, with_for_update=lock or None)

    def by_token_hash(self, token_hash: str) -> AuthSession | None:
        return self._uow.session.scalars(
            _q().session_by_token, {"token_hash": token_hash}
        ).one_or_none()

    def revoke_live_of_staff(self, staff_id: str, now: dt.datetime) -> int:
        result = self._uow.session.execute(
            _REVOKE_OF_STAFF, {"of_staff": staff_id, "now": now, "at_now": now}
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
