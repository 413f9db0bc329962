"""Loading an onboarding directory into a database, for the export round-trip tests.

``import_dataset`` is the one function the round trip calls. Until the new
importer (``resim import all DIR``) is merged it writes the rows with plain
Core inserts, following the documented semantics (lines bind their SIM; locks
set the line's lock; stock is eSIM in stock); at the merge it becomes a call
to the real importer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.model import LineStatus, SimForm, SimState
from resim.services import formats
from resim.services.context import ServiceContext
from resim.services.importer import import_brands
from resim.services.unit_of_work import new_id

BOUND = {SimState.ACTIVE, SimState.SUSPENDED}


def import_dataset(ctx: ServiceContext, directory: Path) -> None:
    """Import every kind found in ``directory`` (brands.toml, <kind>.csv or .jsonl)."""
    load_with_core_inserts(ctx, directory)


def _file(directory: Path, kind: str) -> Path | None:
    for ext in ("csv", "jsonl"):
        if (directory / f"{kind}.{ext}").exists():
            return directory / f"{kind}.{ext}"
    return None


def _rows(directory: Path, kind: str) -> list[dict[str, Any]]:
    path = _file(directory, kind)
    if path is None:
        return []
    out = []
    for _, row in formats.read_rows(path):
        out.append({k: (v or None) for k, v in row.items()})
    return out


def _time(value: str | None) -> dt.datetime | None:
    return formats.parse_time(value) if value else None


def load_with_core_inserts(ctx: ServiceContext, directory: Path) -> None:
    report = import_brands(ctx, directory / "brands.toml")
    assert not report.errors, report.errors
    with ctx.uow() as uow:
        run = uow.session.execute
        subs = [
            {
                "id": r["subscriber_id"],
                "brand_id": r["brand_id"],
                "name": r["name"],
                "email": r["email"],
                "language": r["language"],
                "alt_msisdn": r.get("alt_msisdn"),
                "postal_address": r.get("postal_address"),
                "pin_hash": r.get("pin_hash"),
                "password_hash": r.get("password_hash"),
                "created_at": _time(r["created_at"]),
            }
            for r in _rows(directory, "subscribers")
        ]
        if subs:
            run(sa.insert(orm.subscriber), subs)
        sims = [
            {
                "iccid": r["iccid"],
                "imsi": r["imsi"],
                "form": SimForm(r.get("form") or "esim"),
                "state": SimState(r.get("state") or "in_stock"),
                "brand_id": r["brand_id"],
                "profile_type": r.get("profile_type"),
                "ki": r.get("ki"),
                "opc": r.get("opc"),
            }
            for kind in ("sims", "stock")
            for r in _rows(directory, kind)
        ]
        if sims:
            run(sa.insert(orm.sim), sims)
        line_ids: dict[str, str] = {}
        for r in _rows(directory, "lines"):
            line_id = line_ids[r["msisdn"]] = new_id()
            status = LineStatus(r["status"])
            run(
                sa.insert(orm.line).values(
                    id=line_id,
                    msisdn=r["msisdn"],
                    subscriber_id=r["subscriber_id"],
                    brand_id=r["brand_id"],
                    status=status,
                    created_at=_time(r["created_at"]),
                    sim_change_locked=False,
                )
            )
            if r.get("iccid"):
                state = SimState.SUSPENDED if status == LineStatus.SUSPENDED else SimState.ACTIVE
                run(
                    sa.update(orm.sim)
                    .where(orm.sim.c.iccid == r["iccid"])
                    .values(line_id=line_id, bound_line_id=line_id, state=state)
                )
        changes = [
            {
                "id": new_id(),
                "msisdn": r["msisdn"],
                "line_id": line_ids[r["msisdn"]],
                "changed_at": _time(r["changed_at"]),
                "old_iccid": r.get("old_iccid"),
                "new_iccid": r["new_iccid"],
                "request_id": None,
            }
            for r in _rows(directory, "sim_changes")
        ]
        if changes:
            run(sa.insert(orm.sim_change), changes)
        for r in _rows(directory, "locks"):
            run(
                sa.update(orm.line)
                .where(orm.line.c.msisdn == r["msisdn"])
                .values(sim_change_locked=True, lock_changed_at=_time(r["locked_at"]))
            )
        uow.commit()
