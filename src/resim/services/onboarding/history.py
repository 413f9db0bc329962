"""sim_changes.csv (the SIM-change history CAMARA answers from) and locks.csv.

A SIM change is keyed by (msisdn, changed_at, new_iccid); it is stored as a
``sim_change`` row with ``request_id`` NULL (not made by a resim request).
Its ICCIDs are checked by shape only: history may name SIMs never imported.
A lock sets ``line.sim_change_locked`` and ``lock_changed_at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from resim.adapters.db import bulk, orm
from resim.services import formats
from resim.services.context import ServiceContext
from resim.services.onboarding import fields
from resim.services.onboarding.base import (
    NEW,
    UNCHANGED,
    Cells,
    Env,
    Kind,
    Pending,
    Rec,
    Verdict,
    conflict,
    unresolved,
)
from resim.services.unit_of_work import UnitOfWork, new_ids

_line, _change = orm.line, orm.sim_change


def _line_ids(uow: UnitOfWork, msisdns: Sequence[str]) -> dict[str, str]:
    conn = uow.session.connection()
    return dict(bulk.select_in(conn, _line, ("msisdn", "id"), "msisdn", msisdns))


class SimChanges(Kind):
    name = "sim_changes"
    columns = formats.COLUMNS["sim_changes"]
    required = ("msisdn", "changed_at", "new_iccid")

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        rec: Rec = {
            "_line": cells.line,
            "msisdn": cells.get("msisdn", fields.msisdn, required=True),
            "changed_at": cells.get("changed_at", fields.aware_time, required=True),
            "old_iccid": cells.get("old_iccid", fields.iccid),
            "new_iccid": cells.get("new_iccid", fields.iccid, required=True),
        }
        if rec["old_iccid"] is not None and rec["old_iccid"] == rec["new_iccid"]:
            cells.fail("new_iccid", "same as old_iccid")
        return None if cells.errors else rec

    def keys(self, rec: Rec) -> list[tuple[str, str]]:
        at: dt.datetime = rec["changed_at"]  # UTC: one text per instant
        return [("changed_at", f"{rec['msisdn']}|{at.isoformat()}|{rec['new_iccid']}")]

    def classify(self, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        msisdns = [r["msisdn"] for r in recs]
        lines = _line_ids(uow, msisdns)
        have: dict[tuple[str, dt.datetime, str], str | None] = {}
        cols = ("msisdn", "changed_at", "new_iccid", "old_iccid")
        if _change.name not in env.empty:  # else a first load: nothing to compare with
            for msisdn, at, new, old in bulk.select_in(
                uow.session.connection(), _change, cols, "msisdn", msisdns
            ):
                have[(msisdn, at, new)] = old
        pending = env.pending or Pending()
        out: list[Verdict] = []
        for rec in recs:
            key = (rec["msisdn"], rec["changed_at"], rec["new_iccid"])
            if rec["msisdn"] not in lines and rec["msisdn"] not in pending.lines:
                out.append(unresolved(rec, "msisdn", "no such line (import lines first)"))
            elif key not in have:
                out.append(NEW)
            elif have[key] != rec["old_iccid"]:
                out.append(conflict(rec, "old_iccid", "change exists with another old SIM"))
            else:
                out.append(UNCHANGED)
        return out

    def write(self, ctx: ServiceContext, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> None:
        conn = uow.session.connection()
        lines = _line_ids(uow, [r["msisdn"] for r in recs])
        bulk.insert_rows(
            conn,
            _change,
            ("id", "msisdn", "line_id", "changed_at", "new_iccid", "old_iccid"),
            [
                (change_id, r["msisdn"], lines[r["msisdn"]], r["changed_at"], r["new_iccid"],
                 r["old_iccid"])
                for change_id, r in zip(new_ids(len(recs)), recs, strict=True)
            ],
        )  # fmt: skip


class _LockHave(NamedTuple):
    msisdn: str
    sim_change_locked: bool
    lock_changed_at: dt.datetime | None


class Locks(Kind):
    name = "locks"
    columns = formats.COLUMNS["locks"]
    required = ("msisdn", "locked_at")
    unique = ("msisdn",)

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        rec: Rec = {
            "_line": cells.line,
            "msisdn": cells.get("msisdn", fields.msisdn, required=True),
            "locked_at": cells.get("locked_at", fields.aware_time, required=True),
        }
        return None if cells.errors else rec

    def keys(self, rec: Rec) -> list[tuple[str, str]]:
        return [("msisdn", rec["msisdn"])]

    def classify(self, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        cols = ("msisdn", "sim_change_locked", "lock_changed_at")
        lines = {
            r[0]: _LockHave(*r)
            for r in bulk.select_in(
                uow.session.connection(), _line, cols, "msisdn", [r["msisdn"] for r in recs]
            )
        }
        pending = env.pending or Pending()
        out: list[Verdict] = []
        for rec in recs:
            line = lines.get(rec["msisdn"])
            if line is None:
                if rec["msisdn"] in pending.lines:
                    out.append(NEW)
                else:
                    out.append(unresolved(rec, "msisdn", "no such line (import lines first)"))
            elif not line.sim_change_locked:
                out.append(NEW)
            elif line.lock_changed_at == rec["locked_at"]:
                out.append(UNCHANGED)
            else:
                out.append(conflict(rec, "locked_at", "line is locked since another time"))
        return out

    def write(self, ctx: ServiceContext, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> None:
        bulk.update_rows(
            uow.session.connection(),
            _line,
            "msisdn",
            ("sim_change_locked", "lock_changed_at"),
            [(True, r["locked_at"], r["msisdn"]) for r in recs],
        )
