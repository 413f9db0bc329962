"""sims.csv (SIMs of every form and state) and stock.csv (eSIM profiles in stock).

``ki`` / ``opc`` go to encrypted columns (the unit of work's keys) and are
never printed; a bad key is reported by line and column only. A SIM bound to
a line takes its state from the line (lines.csv), so a re-import of sims.csv
compares the state only of SIMs that no line holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import sqlalchemy as sa

from resim.adapters.crypto import bound_secrets
from resim.adapters.db import bulk, orm
from resim.domain.model import SimForm, SimState
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
)
from resim.services.unit_of_work import UnitOfWork

_sim = orm.sim
_WRITTEN = ("iccid", "imsi", "form", "state", "brand_id", "profile_type", "ki", "opc")


class _Have(NamedTuple):
    iccid: str
    imsi: str
    form: str
    state: str
    brand_id: str
    profile_type: str | None
    line_id: str | None


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

    def classify(self, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        if _sim.name in env.empty:  # a first load: nothing to compare with
            return [NEW] * len(recs)
        conn = uow.session.connection()
        have = {
            r[0]: _Have(*r)
            for r in bulk.select_in(conn, _sim, _Have._fields, "iccid", [r["iccid"] for r in recs])
        }
        imsi_owner = dict(
            bulk.select_in(conn, _sim, ("imsi", "iccid"), "imsi", [r["imsi"] for r in recs])
        )
        keyed = [r["iccid"] for r in recs if (r["ki"] or r["opc"]) and r["iccid"] in have]
        keys = {}
        if keyed:  # decrypt only when a re-import must compare keys
            q = sa.select(_sim.c.iccid, _sim.c.ki, _sim.c.opc).where(_sim.c.iccid.in_(keyed))
            keys = {r.iccid: (r.ki, r.opc) for r in uow.session.execute(q)}
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

    def write(self, ctx: ServiceContext, uow: UnitOfWork, recs: Sequence[Rec], env: Env) -> None:
        """One bulk INSERT; ki/opc encrypted in bulk (``SecretBox.encrypt_many``)."""
        box = bound_secrets()
        ki = box.encrypt_many([r["ki"] for r in recs])
        opc = box.encrypt_many([r["opc"] for r in recs])
        rows = [
            (r["iccid"], r["imsi"], r["form"], r["state"], r["brand_id"], r["profile_type"], k, o)
            for r, k, o in zip(recs, ki, opc, strict=True)
        ]
        bulk.insert_rows(uow.session.connection(), _sim, _WRITTEN, rows, raw=("ki", "opc"))


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
