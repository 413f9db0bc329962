"""lines.csv: numbers, their subscriber, status and current SIM.

The current SIM (``iccid``) must be a SIM of the same brand, imported before
(sims.csv / stock.csv) and held by no other line. Importing the line binds it:
SIM state ``active`` (``suspended`` for a suspended line), ``line_id`` and
``bound_line_id`` set; the core network gets the IMSI with the number (see
:mod:`resim.services.onboarding.corebind`). A ceased line keeps its last SIM
for history: state ``retired``, ``line_id`` set, not bound, not in the core.

An active line with an empty ``iccid`` is a number that has never had a SIM
(reserved, or ported in and not yet activated: ``line.awaiting_sim``); it is
not put in the core network. Suspended and ceased lines must name their SIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resim.domain.model import BOUND_SIM_STATES, LineStatus, SimState
from resim.services.context import ServiceContext
from resim.services.onboarding import corebind, fields, formats
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
    rejected,
    unresolved,
)
from resim.services.onboarding.ids import ordered_ids
from resim.services.onboarding.ports import (
    LINE,
    ImportReads,
    ImportStore,
    ImportWrites,
    NewLine,
    SimBinding,
)

SIM_STATE_OF = {
    LineStatus.ACTIVE: SimState.ACTIVE,
    LineStatus.SUSPENDED: SimState.SUSPENDED,
    LineStatus.CEASED: SimState.RETIRED,
}


class Lines(Kind):
    name = "lines"
    columns = formats.COLUMNS["lines"]
    required = ("msisdn", "subscriber_id", "brand_id", "iccid")  # columns; a cell may be empty
    unique = ("msisdn", "iccid")
    effects_apart = True  # the core binding reads the records, ``write`` does not need it

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        brand = cells.brand(env)
        region = brand.country if brand else None
        status = cells.get("status", lambda v: fields.enum(LineStatus, v)) or LineStatus.ACTIVE
        rec: Rec = {
            "_line": cells.line,
            "msisdn": cells.get("msisdn", lambda v: fields.msisdn(v, region), required=True),
            "subscriber_id": cells.get("subscriber_id", fields.account_id, required=True),
            "brand_id": cells.cells.get("brand_id"),
            "status": status,
            "iccid": cells.get("iccid", fields.iccid, required=status != LineStatus.ACTIVE),
            "created_at": cells.get("created_at", fields.aware_time),
        }
        return None if cells.errors else rec

    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        """Also notes each record's SIM's IMSI and state (``imsi``, ``sim_state``), if
        the SIM is in the database: the core network needs the IMSI, and a SIM
        already in the line's state is not updated again."""
        lines = (
            {r.msisdn: r for r in reads.lines([r["msisdn"] for r in recs])}
            if LINE not in env.empty
            else {}
        )
        subs = reads.subscriber_brands([r["subscriber_id"] for r in recs])
        sims = {r.iccid: r for r in reads.sims([r["iccid"] for r in recs if r["iccid"]])}
        pending = env.pending or Pending()
        out: list[Verdict] = []
        for rec in recs:
            line = lines.get(rec["msisdn"])
            sim = sims.get(rec["iccid"]) if rec["iccid"] else None
            rec["imsi"] = sim.imsi if sim is not None else None
            rec["sim_state"] = sim.state if sim is not None else None
            if line is not None:
                out.append(_compare(rec, line, sim))
                continue
            sub_brand = subs.get(rec["subscriber_id"]) or pending.subscribers.get(
                rec["subscriber_id"]
            )
            sim_brand = sim.brand_id if sim is not None else pending.sims.get(rec["iccid"])
            if sub_brand is None:
                out.append(
                    unresolved(
                        rec, "subscriber_id", "no such subscriber (import subscribers first)"
                    )
                )
            elif sub_brand != rec["brand_id"]:
                out.append(rejected(rec, "subscriber_id", "subscriber is of another brand"))
            elif rec["iccid"] is None:
                out.append(NEW)  # a number without a SIM
            elif sim_brand is None:
                out.append(unresolved(rec, "iccid", "no such SIM (import sims first)"))
            elif sim_brand != rec["brand_id"]:
                out.append(rejected(rec, "iccid", "SIM is of another brand"))
            elif sim is not None and sim.line_id is not None:
                out.append(conflict(rec, "iccid", "SIM belongs to another line"))
            elif sim is not None and sim.state in (SimState.RESERVED, SimState.RETIRED):
                out.append(conflict(rec, "iccid", f"SIM is {sim.state}"))
            else:
                out.append(NEW)
        return out

    def remember(self, recs: Sequence[Rec], pending: Pending) -> None:
        pending.lines.update(r["msisdn"] for r in recs)

    def before_write(
        self, ctx: ServiceContext, store: ImportStore, recs: Sequence[Rec], env: Env
    ) -> None:
        """Bind the batch's SIMs in the core network, idempotently, before resim's commit.

        Outside resim's transaction (on SQLite two writers would wait for each
        other), in the core's own, which commits before the batch does (on
        PostgreSQL while ``write`` runs, on another thread: see
        ``passes.write_batch``): a crash after this and before the batch
        commits leaves bindings that the re-run finds already made (a no-op). The IMSIs come
        from pass 1; only SIMs that were not in the database then (``import
        all --strict``: written by the sims kind since) are looked up.
        """
        bound = [r for r in recs if r["status"] != LineStatus.CEASED and r["iccid"]]
        imsis = {r["iccid"]: r["imsi"] for r in bound if r.get("imsi")}
        missing = [r["iccid"] for r in bound if r["iccid"] not in imsis]
        if missing:
            with store.reading() as reads:
                imsis.update(reads.sim_imsis(missing))
        bound.sort(key=_by_msisdn)
        active = LineStatus.ACTIVE
        binding = corebind.Binding
        corebind.bind(
            ctx.core,
            [binding(imsis[r["iccid"]], r["msisdn"], r["status"] == active) for r in bound],
        )

    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        """Lines, and their SIMs bound to them (state, line_id, bound_line_id); bulk statements.

        In number order, so that each page of the number's index is visited
        once per batch; the ids ascend in the same order.
        """
        recs = sorted(recs, key=_by_msisdn)
        ids = ordered_ids(len(recs))
        writes.add_lines([
            NewLine(line_id, r["msisdn"], r["subscriber_id"], r["brand_id"], r["status"],
                    r["created_at"] or env.now, not r["iccid"])
            for line_id, r in zip(ids, recs, strict=True)
        ])  # fmt: skip
        writes.bind_sims([
            SimBinding(
                r["iccid"],
                None if r.get("sim_state") == (state := SIM_STATE_OF[r["status"]]) else state,
                line_id,
                None if r["status"] == LineStatus.CEASED else line_id,
            )
            for line_id, r in zip(ids, recs, strict=True)
            if r["iccid"]
        ])  # fmt: skip


def _by_msisdn(rec: Rec) -> str:
    return str(rec["msisdn"])


def _compare(rec: Rec, line: Any, sim: Any) -> Verdict:
    for name in ("subscriber_id", "brand_id", "status"):
        if getattr(line, name) != rec[name]:
            return conflict(rec, name, "line exists with a different value")
    if rec["created_at"] is not None and line.created_at != rec["created_at"]:
        return conflict(rec, "created_at", "line exists with a different value")
    if rec["iccid"] is None:
        if line.awaiting_sim:
            return UNCHANGED
        return conflict(rec, "iccid", "line exists with a current SIM")
    if sim is None or sim.line_id != line.id:
        return conflict(rec, "iccid", "line exists with another current SIM")
    if rec["status"] != LineStatus.CEASED and sim.state not in BOUND_SIM_STATES:
        return conflict(rec, "iccid", "line exists with another current SIM")
    return UNCHANGED
