"""sims.csv (SIMs of every form and state) and stock.csv (eSIM profiles in stock).

``ki`` / ``opc`` go to encrypted columns (the unit of work's keys) and are
never printed; a bad key is reported by line and column only. A SIM bound to
a line takes its state from the line (lines.csv), so a re-import of sims.csv
compares the state only of SIMs that no line holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from resim.domain.model import SimForm, SimState
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
)
from resim.services.onboarding.ports import SIM, ImportReads, ImportWrites, NewSim


class Sims(Kind):
    name = "sims"
    columns: ClassVar[tuple[str, ...]] = formats.COLUMNS["sims"]
    required: ClassVar[tuple[str, ...]] = ("iccid", "imsi", "form", "state", "brand_id")
    unique = ("iccid", "imsi")
    secret = frozenset({"ki", "opc"})
    # stock moves on (reserved, active) after import: its state is not compared
    compare_state = True

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        cells.brand(env)
        rec: Rec = {
            "_line": cells.line,
            "iccid": cells.get("iccid", fields.iccid, required=True),
            "imsi": cells.get("imsi", fields.imsi, required=True),
            "form": cells.get("form", lambda v: fields.enum(SimForm, v), required=True),
            "state": cells.get("state", lambda v: fields.enum(SimState, v), required=True),
            "brand_id": cells.cells.get("brand_id"),
            "profile_type": cells.get("profile_type", fields.profile_type),
            "ki": cells.get("ki", fields.sim_key),
            "opc": cells.get("opc", fields.sim_key),
        }
        return None if cells.errors else rec

    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        if SIM in env.empty:  # a first load: nothing to compare with
            return [NEW] * len(recs)
        have = {r.iccid: r for r in reads.sims([r["iccid"] for r in recs])}
        imsi_owner = reads.imsi_holders([r["imsi"] for r in recs])
        keyed = [r["iccid"] for r in recs if (r["ki"] or r["opc"]) and r["iccid"] in have]
        # decrypt only when a re-import must compare keys
        keys = reads.sim_keys(keyed) if keyed else {}
        out: list[Verdict] = []
        for rec in recs:
            row = have.get(rec["iccid"])
            owner = imsi_owner.get(rec["imsi"])
            if row is None:
                if owner is not None:
                    out.append(conflict(rec, "imsi", "IMSI belongs to another SIM"))
                else:
                    out.append(NEW)
                continue
            out.append(_compare(rec, row, keys.get(rec["iccid"]), self.compare_state))
        return out

    def remember(self, recs: Sequence[Rec], pending: Pending) -> None:
        for rec in recs:
            pending.sims[rec["iccid"]] = rec["brand_id"]

    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        """One bulk INSERT; the store encrypts ki/opc."""
        writes.add_sims([
            NewSim(r["iccid"], r["imsi"], r["form"], r["state"], r["brand_id"], r["profile_type"],
                   r["ki"], r["opc"])
            for r in recs
        ])  # fmt: skip


def _compare(
    rec: Rec,
    row: Any,
    keys: tuple[str | None, str | None] | None,
    compare_state: bool,
) -> Verdict:
    for name in ("imsi", "form", "brand_id"):
        if getattr(row, name) != rec[name]:
            return conflict(rec, name, "SIM exists with a different value")
    if rec["profile_type"] is not None and row.profile_type != rec["profile_type"]:
        return conflict(rec, "profile_type", "SIM exists with a different value")
    if compare_state and row.line_id is None and row.state != rec["state"]:
        return conflict(rec, "state", "SIM exists with a different value")
    if keys is not None:
        for name, stored in zip(("ki", "opc"), keys, strict=True):
            if rec[name] is not None and (stored or "").upper() != rec[name]:
                return conflict(rec, name, "SIM exists with a different key")
    return UNCHANGED


class Stock(Sims):
    """eSIM profiles the SM-DP+ holds for the operator: form esim, state in_stock.

    ``smdp`` (optional) must be the SM-DP+ this resim is configured for
    (RESIM_SMDP_ADDRESS): resim orders profiles from one SM-DP+.
    """

    name = "stock"
    compare_state = False
    columns = formats.COLUMNS["stock"]
    required = ("iccid", "imsi", "brand_id", "profile_type")

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        cells.brand(env)
        smdp = cells.get("smdp", fields.hostname)
        if smdp is not None and smdp != env.smdp_address.lower():
            cells.fail("smdp", "not the SM-DP+ this resim uses (RESIM_SMDP_ADDRESS)")
        rec: Rec = {
            "_line": cells.line,
            "iccid": cells.get("iccid", fields.iccid, required=True),
            "imsi": cells.get("imsi", fields.imsi, required=True),
            "form": SimForm.ESIM,
            "state": SimState.IN_STOCK,
            "brand_id": cells.cells.get("brand_id"),
            "profile_type": cells.get("profile_type", fields.profile_type, required=True),
            "ki": cells.get("ki", fields.sim_key),
            "opc": cells.get("opc", fields.sim_key),
        }
        return None if cells.errors else rec
