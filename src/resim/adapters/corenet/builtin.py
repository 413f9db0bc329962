"""resim's own core network: a table of IMSI, MSISDN and access flags.

The embedded default and what the demo shows. Semantics and error codes are
those of :mod:`resim.adapters.corenet.rules`; the tables are in
:mod:`resim.adapters.corenet.schema` (``CORENET_METADATA``, re-exported here).

Transactions and locks (:mod:`resim.adapters.corenet.tables`): every write runs
in its own transaction on ``engine``
(never inside a caller's unit of work; the core network is an external system
to resim's services). On PostgreSQL the rows an operation touches are locked
with ``SELECT ... FOR UPDATE`` in IMSI order, so two operations on shared rows
cannot deadlock each other; on SQLite the transaction is opened with
``BEGIN IMMEDIATE`` (unless the engine already does so), which serialises
writers. ``move_msisdn`` clears the number on the old IMSI and sets it on the
new one inside that single transaction, so no reader ever sees the number on
none or on two IMSIs.

Races the locks cannot cover on PostgreSQL (a free number bound concurrently
by someone else: there is no row to lock) are caught by the UNIQUE index; the
transaction is then retried from the start and sees the new state. Lock
contention that does not clear within ``max_attempts`` raises a retryable
``CORE_BUSY``; a database that cannot be reached raises ``CORE_UNAVAILABLE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from resim.adapters.corenet import rules
from resim.adapters.corenet.rules import CoreEvent, CoreSubscriber
from resim.adapters.corenet.schema import (
    CORENET_METADATA,
    corenet_event,
    corenet_subscriber,
)
from resim.adapters.corenet.tables import CoreTables
from resim.adapters.db import bulk

__all__ = ["CORENET_METADATA", "BuiltinCoreNetwork"]

_sub = corenet_subscriber
_ev = corenet_event
_SUB_INSERTED = ("imsi", "msisdn", "enabled", "retired", "updated_at")
_EV_INSERTED = ("imsi", "msisdn", "operation", "at")


def _bound_events(
    bindings: Sequence[tuple[str, str, bool]], now: dt.datetime
) -> list[tuple[Any, ...]]:
    """``msisdn.bound`` for each binding made, then ``imsi.suspended`` for a suspended one."""
    events: list[tuple[Any, ...]] = []
    for imsi, msisdn, enabled in bindings:
        events.append((imsi, msisdn, rules.EV_BOUND, now))
        if not enabled:
            events.append((imsi, msisdn, rules.EV_SUSPENDED, now))
    return events


class BuiltinCoreNetwork(CoreTables):
    """The CoreNetwork port on resim's own tables (SQLite or PostgreSQL).

    Thread-safe: share one instance, or make many on one engine or on engines
    pointing at the same database. Transactions: :class:`CoreTables`.
    """

    # ------------------------------------------------------------ the port

    def provision_imsi(self, *, imsi: str) -> None:
        rules.check_imsi(imsi)

        def work(conn: sa.Connection) -> None:
            now = self._now()
            values = {"imsi": imsi, "enabled": True, "retired": False, "updated_at": now}
            if self._insert_new is not None:
                # RETURNING, not rowcount: drivers may report -1 for this INSERT.
                created = conn.execute(self._insert_new, values).first() is not None
            else:  # other back ends: read, then insert; a race ends in IntegrityError
                created = self._read(conn, [imsi]).get(imsi) is None
                if created:
                    conn.execute(_sub.insert().values(values))
            if created:
                self._log(conn, imsi, None, rules.EV_PROVISIONED, now)

        self._write(work)

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None:
        """Move ``msisdn`` onto ``new_imsi``, off ``old_imsi``, in one transaction."""
        rules.check_msisdn(msisdn)
        rules.check_imsi(new_imsi)
        if old_imsi is not None:
            rules.check_imsi(old_imsi)

        def work(conn: sa.Connection) -> None:
            # Lock new and old first, then look up the holder. A holder that is
            # one of them cannot change under our lock; a third holder means a
            # conflict whatever happens next; a free number that someone else
            # binds meanwhile makes our UPDATE hit the UNIQUE index (-> retry).
            subs = self._read(conn, [new_imsi, old_imsi], lock=True)
            holder = self._holder(conn, msisdn)
            plan = rules.plan_move(
                msisdn=msisdn,
                new=subs.get(new_imsi),
                new_imsi=new_imsi,
                old=subs.get(old_imsi) if old_imsi else None,
                old_imsi=old_imsi,
                holder=holder,
            )
            if not plan.bind:
                return
            now = self._now()
            if plan.clear_imsi is not None:
                # A unique MSISDN column: clear the old record first (as on a real HLR).
                self._update(conn, plan.clear_imsi, now, msisdn=None)
                self._log(conn, plan.clear_imsi, msisdn, rules.EV_UNBOUND, now)
            self._update(conn, new_imsi, now, msisdn=msisdn)
            self._log(conn, new_imsi, msisdn, rules.EV_BOUND, now)

        self._write(work)

    def suspend_imsi(self, *, imsi: str) -> None:
        def work(conn: sa.Connection) -> None:
            sub = self._locked(conn, imsi)
            if rules.needs_suspend(sub):
                now = self._now()
                self._update(conn, imsi, now, enabled=False)
                self._log(conn, imsi, sub.msisdn, rules.EV_SUSPENDED, now)
                if rules.detaches(sub):  # the network side reads this (rules.detaches)
                    self._log(conn, imsi, sub.msisdn, rules.EV_DETACHED, now)

        self._write(work)

    def resume_imsi(self, *, imsi: str) -> None:
        def work(conn: sa.Connection) -> None:
            sub = self._locked(conn, imsi)
            if rules.needs_resume(sub):
                now = self._now()
                self._update(conn, imsi, now, enabled=True)
                self._log(conn, imsi, sub.msisdn, rules.EV_RESUMED, now)

        self._write(work)

    def retire_imsi(self, *, imsi: str) -> None:
        """Disable ``imsi`` for good; refused while it still holds its MSISDN."""

        def work(conn: sa.Connection) -> None:
            sub = self._locked(conn, imsi)
            if rules.needs_retire(sub):
                now = self._now()
                self._update(conn, imsi, now, enabled=False, retired=True)
                self._log(conn, imsi, None, rules.EV_RETIRED, now)
                if rules.detaches(sub):
                    self._log(conn, imsi, None, rules.EV_DETACHED, now)

        self._write(work)

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """Set the SMS hold and the port-out block of ``imsi`` to exactly these values."""
        sms = rules.check_aware(sms_hold_until, "sms_hold_until")
        port = rules.check_aware(port_out_block_until, "port_out_block_until")

        def work(conn: sa.Connection) -> None:
            sub = self._locked(conn, imsi)
            if rules.needs_holds(sub, sms, port):
                now = self._now()
                self._update(conn, imsi, now, sms_hold_until=sms, port_out_block_until=port)
                self._log(conn, imsi, sub.msisdn, rules.EV_HOLDS, now)

        self._write(work)

    def bind_many(self, bindings: Sequence[tuple[str, str, bool]]) -> None:
        """Onboarding in bulk: each (imsi, msisdn, enabled) provisioned and bound.

        One transaction for the whole batch; idempotent (an IMSI that already
        holds its number is left alone, so a re-run after a crash only adds
        what is missing). A number held by another IMSI, or an IMSI holding
        another number, raises MSISDN_CONFLICT / IMSI_HAS_OTHER_MSISDN and
        writes nothing: onboarding never moves a number. A new IMSI gets one
        ``msisdn.bound`` event (no separate ``imsi.provisioned``: a million
        lines would write a million more event rows), a suspended one a
        ``imsi.suspended`` after it.
        """
        for imsi, msisdn, _ in bindings:
            rules.check_imsi(imsi)
            rules.check_msisdn(msisdn)

        def work(conn: sa.Connection) -> None:
            # Bulk statements through the driver (resim.adapters.db.bulk): a
            # batch is thousands of rows and SQLAlchemy's per-row parameter
            # handling would cost more than the database.
            now = self._now()
            # The usual batch (a first load): no IMSI and no number there yet.
            # The primary key and the UNIQUE number say so as the rows go in,
            # with no look-up first; else nothing is written and the rules below
            # decide row by row (a re-run, a conflict).
            new = [(imsi, msisdn, enabled, False, now) for imsi, msisdn, enabled in bindings]
            if bulk.insert_if_all_new(conn, _sub, _SUB_INSERTED, new):
                bulk.insert_rows(conn, _ev, _EV_INSERTED, _bound_events(bindings, now))
                return
            subs = {
                r[0]: CoreSubscriber(imsi=r[0], msisdn=r[1], enabled=r[2], retired=r[3])
                for r in bulk.select_in(
                    conn, _sub, ("imsi", "msisdn", "enabled", "retired"), "imsi",
                    [b[0] for b in bindings],
                )
            }  # fmt: skip
            holders = dict(
                bulk.select_in(conn, _sub, ("msisdn", "imsi"), "msisdn", [b[1] for b in bindings])
            )
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            bound: list[tuple[str, str, bool]] = []
            for imsi, msisdn, enabled in bindings:
                holder = holders.get(msisdn)
                sub = subs.get(imsi)
                if sub is None and holder is not None:
                    raise rules.msisdn_conflict(msisdn, holder)
                if sub is not None:  # the same rules as a move with no old IMSI
                    rules.plan_move(
                        msisdn=msisdn, new=sub, new_imsi=imsi, old=None, old_imsi=None,
                        holder=holder,
                    )  # fmt: skip
                if holder == imsi:
                    continue  # already bound: a re-run
                if sub is not None:
                    updates.append((msisdn, enabled, now, imsi))
                else:  # one event for both: provisioned with its number bound at once
                    inserts.append((imsi, msisdn, enabled, False, now))
                bound.append((imsi, msisdn, enabled))
            bulk.insert_rows(conn, _sub, _SUB_INSERTED, inserts)
            bulk.update_rows(conn, _sub, "imsi", ("msisdn", "enabled", "updated_at"), updates)
            bulk.insert_rows(conn, _ev, _EV_INSERTED, _bound_events(bound, now))

        self._write(work)

    def msisdn_of(self, *, imsi: str) -> str | None:
        return self._require(imsi).msisdn

    def imsi_of(self, *, msisdn: str) -> str | None:
        rules.check_msisdn(msisdn)
        return self._read_only(lambda conn: self._holder(conn, msisdn))

    def is_enabled(self, *, imsi: str) -> bool:
        """True while the IMSI may use the network: enabled and not retired."""
        return self._require(imsi).in_service

    def attached(self, *, imsi: str) -> bool:
        rules.check_imsi(imsi)
        sub = self.subscriber(imsi=imsi)
        return sub is not None and sub.attached_at is not None

    def cancel_location(self, *, imsi: str) -> bool:
        """A network refresh (ports.CoreNetwork): an ``imsi.refreshed`` event, which
        a network integration turns into a Cancel-Location; False if never attached."""

        def work(conn: sa.Connection) -> bool:
            sub = self._locked(conn, imsi)
            if not rules.refreshes(sub):
                return False
            self._log(conn, imsi, sub.msisdn, rules.EV_REFRESHED, self._now())
            return True

        return self._write(work)

    # ------------------------------------------------------------ the network side

    def record_attach(self, *, imsi: str) -> None:
        """A device with ``imsi`` registered (what an MSC/VLR's location update tells an
        HLR). The first one is kept; an IMSI without access is refused, as a real HLR
        refuses the update (CORE_REJECTED). This table has no radio network of its
        own: a network integration, the demo or a test calls this."""

        def work(conn: sa.Connection) -> None:
            sub = self._locked(conn, imsi)
            if not sub.in_service:
                raise rules.rejected(f"{imsi} has no network access; location update refused")
            if sub.attached_at is None:
                now = self._now()
                self._update(conn, imsi, now, attached_at=now)
                self._log(conn, imsi, sub.msisdn, rules.EV_ATTACHED, now)

        self._write(work)

    # ------------------------------------------------------------ read helpers

    def subscriber(self, *, imsi: str) -> CoreSubscriber | None:
        rules.check_imsi(imsi)
        return self._read_only(lambda conn: self._read(conn, [imsi]).get(imsi))

    def events(self, *, imsi: str | None = None, msisdn: str | None = None) -> list[CoreEvent]:
        """The history, oldest first, optionally only for one IMSI and/or MSISDN."""
        stmt = sa.select(_ev).order_by(_ev.c.id)
        if imsi is not None:
            stmt = stmt.where(_ev.c.imsi == imsi)
        if msisdn is not None:
            stmt = stmt.where(_ev.c.msisdn == msisdn)

        def read(conn: sa.Connection) -> list[CoreEvent]:
            return [
                CoreEvent(imsi=r.imsi, msisdn=r.msisdn, operation=r.operation, at=r.at)
                for r in conn.execute(stmt)
            ]

        return self._read_only(read)

    # ------------------------------------------------------------ internals

    def _require(self, imsi: str) -> CoreSubscriber:
        return rules.require(self.subscriber(imsi=imsi), imsi)

    def _locked(self, conn: sa.Connection, imsi: str) -> CoreSubscriber:
        rules.check_imsi(imsi)
        return rules.require(self._read(conn, [imsi], lock=True).get(imsi), imsi)


if TYPE_CHECKING:
    from resim.services.ports import CoreNetwork

    def _conforms(adapter: BuiltinCoreNetwork) -> CoreNetwork:
        return adapter
