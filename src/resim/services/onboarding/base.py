"""What every kind of onboarding file provides to the two-pass runner.

Pass 1 (``parse`` then ``classify``) only reads the database; pass 2
(``write``) gets the rows pass 1 found new, in batches, each batch inside one
transaction of the import store (``ports.ImportStore.writing``) that commits
when ``write`` returns. ``classify`` runs on a batch with the store's
read-only view: one query per batch and table, never one per row. Pass 1 may
run in a second process while pass 2 writes earlier batches (``pipeline``):
``parse`` and ``classify`` must not depend on what this import wrote.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from resim.services.context import ServiceContext
from resim.services.onboarding.fields import FieldError
from resim.services.onboarding.ports import ImportReads, ImportStore, ImportWrites
from resim.services.onboarding.report import CONFLICT, REJECTED, RowError

Rec = dict[str, Any]  # a parsed row; "_line" is its line number
NEW = True
UNCHANGED = False
Verdict = bool | RowError


@dataclass(frozen=True)
class BrandInfo:
    country: str
    language: str


@dataclass
class Pending:
    """Keys that earlier kinds of one ``import all`` will write (dry run, --strict).

    Lets pass 1 of ``lines`` resolve a subscriber that pass 1 of
    ``subscribers`` accepted but nobody has written yet.
    """

    brands: dict[str, BrandInfo] = field(default_factory=dict)
    subscribers: dict[str, str] = field(default_factory=dict)  # id -> brand
    sims: dict[str, str] = field(default_factory=dict)  # iccid -> brand
    lines: set[str] = field(default_factory=set)  # msisdn


@dataclass
class Env:
    brands: dict[str, BrandInfo]
    now: dt.datetime
    smdp_address: str
    pending: Pending | None = None
    # Tables that held no row when pass 1 began (a first load). Pass 1 only
    # reads and pass 2 starts after it, so a kind's look-up of its own keys in
    # such a table would find nothing: classify skips it. (Two imports into one
    # database at once are not supported; pass 2 would then fail on the
    # database's unique constraints, as it could before.)
    empty: frozenset[str] = frozenset()


def load_env(ctx: ServiceContext, store: ImportStore, pending: Pending | None = None) -> Env:
    with store.reading() as reads:
        brands = {r.id: BrandInfo(r.country, r.language) for r in reads.brands()}
        empty = reads.empty_tables()
    if pending is not None:
        brands.update(pending.brands)
    return Env(
        brands=brands, now=ctx.now(), smdp_address=ctx.smdp_address, pending=pending, empty=empty
    )


class Cells:
    """One row's cells, read field by field; failures are collected, not raised."""

    def __init__(self, line: int, cells: dict[str, str]) -> None:
        self.line = line
        self.cells = cells
        self.errors: list[RowError] = []

    def get(
        self, name: str, check: Callable[[str], Any] | None = None, *, required: bool = False
    ) -> Any:
        value = self.cells.get(name)
        if value is None:
            if required:
                self.errors.append(RowError(self.line, name, "missing"))
            return None
        if check is None:
            return value
        try:
            return check(value)
        except FieldError as exc:
            self.errors.append(RowError(self.line, name, exc.reason))
            return None

    def fail(self, name: str, reason: str, *, unresolved: bool = False) -> None:
        self.errors.append(RowError(self.line, name, reason, unresolved=unresolved))

    def brand(self, env: Env) -> BrandInfo | None:
        brand_id = self.get("brand_id", required=True)
        if brand_id is None:
            return None
        info = env.brands.get(brand_id)
        if info is None:
            self.fail("brand_id", "unknown brand (import brands first)", unresolved=True)
        return info


def conflict(rec: Rec, name: str, reason: str) -> RowError:
    return RowError(rec["_line"], name, reason, CONFLICT)


def rejected(rec: Rec, name: str, reason: str) -> RowError:
    return RowError(rec["_line"], name, reason, REJECTED)


def unresolved(rec: Rec, name: str, reason: str) -> RowError:
    """Rejected: the row refers to a row that is neither in the database nor pending."""
    return RowError(rec["_line"], name, reason, REJECTED, unresolved=True)


class Kind(ABC):
    """One kind of onboarding file (subscribers, sims, lines, ...)."""

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    required: ClassVar[tuple[str, ...]]
    unique: ClassVar[tuple[str, ...]] = ()  # each must not repeat inside the file
    secret: ClassVar[frozenset[str]] = frozenset()  # never echoed (they never are)
    # True when ``before_write`` neither changes the records nor makes anything
    # ``write`` needs: the two may then run at the same time (``passes.write_batch``).
    effects_apart: ClassVar[bool] = False

    @abstractmethod
    def parse(self, cells: Cells, env: Env) -> Rec | None:
        """Pure: the normalised record, or None with ``cells.errors`` filled."""

    def keys(self, rec: Rec) -> list[tuple[str, str]]:
        """(name, key text) of the row's unique keys (normalised values: equal means same)."""
        return [(f, str(rec[f])) for f in self.unique if rec.get(f) is not None]

    @abstractmethod
    def classify(self, reads: ImportReads, recs: Sequence[Rec], env: Env) -> list[Verdict]:
        """NEW, UNCHANGED or an error for each record (same order), from batched reads."""

    def remember(self, recs: Sequence[Rec], pending: Pending) -> None:  # noqa: B027
        """Note new records' keys for later kinds of the same ``import all``."""

    def before_write(  # noqa: B027
        self, ctx: ServiceContext, store: ImportStore, recs: Sequence[Rec], env: Env
    ) -> None:
        """Idempotent effects outside resim's database (the core network), per batch.

        Done before the batch commits. With ``effects_apart`` it may run on
        another thread while ``write`` runs (:func:`.passes.write_batch`).
        """

    @abstractmethod
    def write(
        self, ctx: ServiceContext, writes: ImportWrites, recs: Sequence[Rec], env: Env
    ) -> None:
        """Store a batch of new records (bulk statements); the caller commits."""
