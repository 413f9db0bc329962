"""SQL of the stored secrets key rotation walks (:mod:`resim.services.stores.sealed`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.adapters.db.types import EncryptedText
from resim.services.stores.sealed import Place


@dataclass(frozen=True)
class Target:
    table: sa.Table
    column: sa.Column[Any]
    json_key: str | None = None  # the value is payload[json_key] of a JSON column

    @property
    def name(self) -> str:
        suffix = f"[{self.json_key}]" if self.json_key else ""
        return f"{self.table.name}.{self.column.name}{suffix}"


def targets() -> list[Target]:
    """Every place a secret is stored encrypted."""
    found = [
        Target(table, col)
        for table in orm.metadata.sorted_tables
        for col in table.columns
        if isinstance(col.type, EncryptedText)
    ]
    found.append(Target(orm.replacement_request, orm.replacement_request.c.activation_code_enc))
    found.append(Target(orm.job, orm.job.c.payload, json_key="sealed"))
    found.append(Target(orm.job, orm.job.c.payload, json_key="secret_context"))
    return found


def _target(place: Place) -> Target:
    if not isinstance(place, Target):
        raise TypeError(f"not a place of this store: {place!r}")
    return place


class SqlSealedValueStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def places(self) -> Sequence[Place]:
        return targets()

    def batch(
        self, place: Place, *, after: tuple[Any, ...] | None, limit: int
    ) -> Sequence[tuple[tuple[Any, ...], Any]]:
        self._uow.write_jobs()  # job payloads are among the places
        target = _target(place)
        pk = list(target.table.primary_key.columns)
        raw = sa.type_coerce(target.column, sa.JSON if target.json_key else sa.Text).label("raw")
        query = sa.select(*pk, raw).where(target.column.is_not(None))
        if after is not None:
            query = query.where(sa.tuple_(*pk) > sa.tuple_(*after))
        rows = self._uow.session.execute(query.order_by(*pk).limit(limit)).all()
        return [(tuple(row[: len(pk)]), row.raw) for row in rows]

    def rewrite(self, place: Place, values: Sequence[tuple[tuple[Any, ...], Any]]) -> None:
        if not values:
            return
        target = _target(place)
        pk = list(target.table.primary_key.columns)
        stmt = (
            sa.update(target.table)
            .where(*(c == sa.bindparam(f"k_{c.name}") for c in pk))
            .values(
                {
                    target.column.name: sa.bindparam(
                        "v", type_=sa.JSON if target.json_key else sa.Text
                    )
                }
            )
        )
        updates = [
            {**{f"k_{c.name}": key[i] for i, c in enumerate(pk)}, "v": value}
            for key, value in values
        ]
        self._uow.session.execute(stmt, updates)
