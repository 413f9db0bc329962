"""sim_changes.csv (the SIM-change history CAMARA answers from) and locks.csv.

A SIM change is keyed by (msisdn, changed_at, new_iccid); it is stored as a
``sim_change`` row with ``request_id`` NULL (not made by a resim request).
Its ICCIDs are checked by shape only: history may name SIMs never imported.
A lock sets ``line.sim_change_locked`` and ``lock_changed_at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from resim.services.context import ServiceContext
from resim.services.onboarding import fields, formats
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
from resim.services.onboarding.ids import ordered_ids
from resim.services.onboarding.ports import (
    SIM_CHANGE,
    ImportReads,
    ImportStore,
    ImportWrites,
    NewSimChange,
)


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

    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        """Also notes each record's line id (``rec["line_id"]``) when the line exists."""
        msisdns = [r["msisdn"] for r in recs]
        lines = reads.line_ids(msisdns)
        have: dict[tuple[str, dt.datetime, str], str | None] = {}
        if SIM_CHANGE not in env.empty:  # else a first load: nothing to compare with
            for row in reads.sim_changes(msisdns):
                have[(row.msisdn, row.changed_at, row.new_iccid)] = row.old_iccid
        pending = env.pending or Pending()
        out: list[Verdict] = []
        for rec in recs:
            key = (rec["msisdn"], rec["changed_at"], rec["new_iccid"])
            rec["line_id"] = lines.get(rec["msisdn"])
            if rec["msisdn"] not in lines and rec["msisdn"] not in pending.lines:
                out.append(unresolved(rec, "msisdn", "no such line (import lines first)"))
            elif key not in have:
                out.append(NEW)
            elif have[key] != rec["old_iccid"]:
                out.append(conflict(rec, "old_iccid", "change exists with another old SIM"))
            else:
                out.append(UNCHANGED)
        return out

    def before_write(
        self, ctx: ServiceContext, store: ImportStore, recs: Sequence[Rec], env: Env
    ) -> None:
        """Line ids of lines that pass 1 found only pending (``import all --strict``)."""
        missing = [r["msisdn"] for r in recs if r.get("line_id") is None]
        if missing:
            with store.reading() as reads:
                lines = reads.line_ids(missing)
            for r in recs:
                if r.get("line_id") is None:
                    r["line_id"] = lines[r["msisdn"]]

    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        writes.add_sim_changes([
            NewSimChange(change_id, r["msisdn"], r["line_id"], r["changed_at"], r["new_iccid"],
                         r["old_iccid"])
            for change_id, r in zip(ordered_ids(len(recs)), recs, strict=True)
        ])  # fmt: skip


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

    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        lines = {r.msisdn: r for r in reads.locks([r["msisdn"] for r in recs])}
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

    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        writes.lock_lines([(r["msisdn"], r["locked_at"]) for r in recs])
