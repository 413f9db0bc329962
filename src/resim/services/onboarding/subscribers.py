"""subscribers.csv: account holders, keyed by the operator's own account reference.

Secrets: ``pin_hash`` / ``password_hash`` are argon2id PHC strings stored as
given; ``pin`` / ``password`` are clear values hashed here with argon2id (slow
on purpose, about 50 ms each on one core; hashed on a thread pool, which runs
in parallel because argon2-cffi releases the GIL). Giving both is an error.
Clear values are never stored, printed or exported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher

from resim.adapters.crypto import hash_secret, verify_secret
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
from resim.services.onboarding.ports import SUBSCRIBER, ImportReads, ImportWrites, NewSubscriber

_COMPARED = ("brand_id", "name", "email", "language", "alt_msisdn", "postal_address")


class Subscribers(Kind):
    name = "subscribers"
    columns = formats.COLUMNS["subscribers"]
    required = ("subscriber_id", "brand_id", "name", "email")
    unique = ("subscriber_id",)
    secret = frozenset({"pin", "password", "pin_hash", "password_hash"})

    def parse(self, cells: Cells, env: Env) -> Rec | None:
        brand = cells.brand(env)
        region = brand.country if brand else None
        rec: Rec = {
            "_line": cells.line,
            "subscriber_id": cells.get("subscriber_id", fields.account_id, required=True),
            "brand_id": cells.cells.get("brand_id"),
            "name": cells.get("name", fields.text, required=True),
            "email": cells.get("email", fields.email, required=True),
            "language": cells.get("language", fields.language),
            "alt_msisdn": cells.get("alt_msisdn", lambda v: fields.msisdn(v, region)),
            "postal_address": cells.get("postal_address", fields.text),
            "pin_hash": cells.get("pin_hash", fields.argon2id_hash),
            "password_hash": cells.get("password_hash", fields.argon2id_hash),
            "pin": cells.get("pin", lambda v: fields.text(v, 128)),
            "password": cells.get("password", lambda v: fields.text(v, 128)),
            "created_at": cells.get("created_at", fields.aware_time),
        }
        for secret in ("pin", "password"):
            if cells.cells.get(secret) and cells.cells.get(f"{secret}_hash"):
                cells.fail(secret, f"give {secret} or {secret}_hash, not both")
        if cells.errors:
            return None
        if rec["language"] is None and brand is not None:
            rec["language"] = brand.language
        return rec

    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        if SUBSCRIBER in env.empty:  # a first load: nothing to compare with
            return [NEW] * len(recs)
        have = {r.id: r for r in reads.subscribers([r["subscriber_id"] for r in recs])}
        out: list[Verdict] = []
        for rec in recs:
            row = have.get(rec["subscriber_id"])
            if row is None:
                out.append(NEW)
                continue
            out.append(_compare(rec, row))
        return out

    def remember(self, recs: Sequence[Rec], pending: Pending) -> None:
        for rec in recs:
            pending.subscribers[rec["subscriber_id"]] = rec["brand_id"]

    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        """One bulk INSERT; the store encrypts the personal fields."""
        hashes = _hash_clear_values(recs, ctx.password_hasher)
        rows = []
        for i, rec in enumerate(recs):
            pin_hash, password_hash = hashes.get(i, (None, None))
            rows.append(
                NewSubscriber(
                    rec["subscriber_id"],
                    rec["brand_id"],
                    rec["language"],
                    rec["created_at"] or env.now,
                    rec["pin_hash"] or pin_hash,
                    rec["password_hash"] or password_hash,
                    rec["name"],
                    rec["email"],
                    rec["alt_msisdn"],
                    rec["postal_address"],
                )
            )
        writes.add_subscribers(rows)


def _compare(rec: Rec, row: Any) -> Verdict:
    for name in _COMPARED:
        if rec[name] is not None and getattr(row, name) != rec[name]:
            return conflict(rec, name, "account exists with a different value")
    if rec["created_at"] is not None and row.created_at != rec["created_at"]:
        return conflict(rec, "created_at", "account exists with a different value")
    for secret in ("pin", "password"):
        stored = getattr(row, f"{secret}_hash")
        given_hash = rec[f"{secret}_hash"]
        if given_hash is not None and given_hash != stored:
            return conflict(rec, f"{secret}_hash", "account exists with a different value")
        clear = rec[secret]
        if clear is not None and (stored is None or not verify_secret(clear, stored)):
            return conflict(rec, secret, "account exists with a different value")
    return UNCHANGED


def _hash_clear_values(
    recs: Sequence[Rec], hasher: PasswordHasher
) -> dict[int, tuple[str | None, str | None]]:
    """argon2id hashes of clear PINs/passwords at ``hasher``'s cost, computed on all cores."""
    todo = [i for i, r in enumerate(recs) if r["pin"] or r["password"]]
    if not todo:
        return {}

    def one(i: int) -> tuple[int, tuple[str | None, str | None]]:
        rec = recs[i]
        pin = hash_secret(rec["pin"], hasher=hasher) if rec["pin"] else None
        password = hash_secret(rec["password"], hasher=hasher) if rec["password"] else None
        return i, (pin, password)

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return dict(pool.map(one, todo))
