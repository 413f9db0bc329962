"""Seeding the demo: generated files (``resim demo-data``) loaded through the importer.

The demo's database is what an operator's first day looks like: subscribers,
lines, SIMs, SIM-change history, locks and eSIM stock made by
:mod:`resim.demo.demo_generator` and loaded with
:func:`resim.services.onboarding.import_dir`, the same path as a real
onboarding (validation, bulk writes, core-network binding).

Contract of the returned :class:`DemoData` (the walkthrough, the printed
examples and the end-to-end tests rely on it):

- ``lines`` are the demo's *customers*: active lines on an eSIM, with no
  SIM-change history and no SIM-change lock, so a replacement for any of them
  runs the whole way. Lines with history, locks or physical SIMs are in the
  database too (CAMARA answers, the console) but not listed.
- They come brand by brand in the demo's order (Denmark first), and the first
  customer of each brand changed their e-mail three days ago, so a request for
  it is held for a reviewer: ``lines[0]`` is the walkthrough's Danish line.
- Each line names its holder and what their ID document shows (``name``,
  ``birth_date``, ``document_number``): the console's ID check compares them.
- ``pin`` is the clear PIN (one per data set) for a brand whose policy asks
  for one, else None. ``stock`` lists each brand's eSIM profiles in stock.
- ``numbers_without_sim``: two numbers per brand that have no SIM yet (one
  reserved, one "ported in, not yet activated": the same state to resim), held
  by the brand's second customer. CAMARA retrieve-date answers
  ``latestSimChange: null`` for them; a replacement is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from resim.demo.demo_catalog import iccid_for, imsi_for, msisdn_for
from resim.demo.demo_data import DEMO_BRANDS, DemoData, DemoLine
from resim.demo.demo_generator import CURRENT, RETIRED, STOCK, generate
from resim.domain.model import LineStatus, SimForm
from resim.services.context import ServiceContext
from resim.services.onboarding import import_dir, seed

CARD = 7  # ICCID/IMSI kind digit of the demo's blank physical cards
assert CARD not in (CURRENT, STOCK, RETIRED)


class DemoSeedError(RuntimeError):
    """The generated demo files did not import cleanly (a bug, never user input)."""


@dataclass(frozen=True)
class _Row:
    msisdn: str
    brand_id: str
    subscriber_id: str


def seed_demo(
    ctx: ServiceContext,
    *,
    lines_per_brand: int = 75,
    stock_per_brand: int = 100,
    seed_value: int = 7,
) -> DemoData:
    """Generate and import the demo data set into an empty database; see the module contract.

    About ``lines_per_brand`` customers per brand: twice as many lines are
    generated (about half have history, a lock or a physical SIM).
    """
    with tempfile.TemporaryDirectory(prefix="resim-demo-") as tmp:
        out = Path(tmp)
        report = generate(
            out,
            lines=2 * lines_per_brand * len(DEMO_BRANDS),
            seed=seed_value,
            stock_per_brand=stock_per_brand,
            now=ctx.now(),
        )
        for imported in import_dir(ctx, out):
            if imported.bad:
                raise DemoSeedError(
                    f"demo {imported.kind}: {imported.bad} rows did not import (generator bug)"
                )
        customers, emails = _customers(out)
        names = {r["subscriber_id"]: r["name"] for r in _read(out / "subscribers.csv")}
        stock = _stock(out)
        generated = _lines_per_brand(out)
    _add_cards(ctx, stock_per_brand // 4)
    without_sim = _numbers_without_sim(ctx, customers, generated, seed_value)
    pins = {b.spec.id: report.pin if b.spec.policy.require_pin else None for b in DEMO_BRANDS}
    documents = _identity_documents(ctx, customers, seed_value)
    lines: list[DemoLine] = []
    first_of_brand: list[str] = []
    for brand in DEMO_BRANDS:
        mine = [row for row in customers if row.brand_id == brand.spec.id]
        if mine:
            first_of_brand.append(mine[0].subscriber_id)
        lines.extend(
            DemoLine(
                row.brand_id,
                row.msisdn,
                emails[row.subscriber_id],
                pins[row.brand_id],
                names[row.subscriber_id],
                *documents.get(row.subscriber_id, (None, None)),
            )
            for row in mine
        )
    _email_changed_lately(ctx, first_of_brand)
    return DemoData(lines=lines, stock=stock, numbers_without_sim=without_sim)


def _add_cards(ctx: ServiceContext, per_brand: int) -> None:
    """Blank physical cards per brand for store pick-up and courier (the stock
    file holds eSIM profiles only); kind digit 7, apart from the generator's."""
    for brand in DEMO_BRANDS:
        cards = [(iccid_for(brand, CARD, n), imsi_for(brand, CARD, n)) for n in range(per_brand)]
        seed.add_stock(
            ctx, brand_id=brand.spec.id, profile_type="card", profiles=cards, form=SimForm.PHYSICAL
        )


def _lines_per_brand(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in _read(out / "lines.csv"):
        counts[r["brand_id"]] = counts.get(r["brand_id"], 0) + 1
    return counts


def _numbers_without_sim(
    ctx: ServiceContext, customers: list[_Row], generated: dict[str, int], seed_value: int
) -> list[str]:
    """Two numbers per brand with no SIM yet, after the generated ones (distinct indexes
    of the brand's number blocks, so never a generated line's number)."""
    numbers: list[str] = []
    for brand in DEMO_BRANDS:
        mine = [row for row in customers if row.brand_id == brand.spec.id]
        if len(mine) < 2:
            continue
        first = generated.get(brand.spec.id, 0)
        for k in range(2):
            msisdn = msisdn_for(brand.spec.country, first + k, seed=seed_value)
            seed.add_number_without_sim(
                ctx,
                brand_id=brand.spec.id,
                subscriber_id=mine[1].subscriber_id,
                msisdn=msisdn,
                actor="demo",
            )
            numbers.append(msisdn)
    return numbers


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _customers(out: Path) -> tuple[list[_Row], dict[str, str]]:
    """Active eSIM lines with no history and no lock, in file order; subscriber e-mails."""
    esim = {r["iccid"] for r in _read(out / "sims.csv") if r["form"] == SimForm.ESIM}
    changed = {r["msisdn"] for r in _read(out / "sim_changes.csv")}
    locked = {r["msisdn"] for r in _read(out / "locks.csv")}
    rows = [
        _Row(r["msisdn"], r["brand_id"], r["subscriber_id"])
        for r in _read(out / "lines.csv")
        if r["status"] == LineStatus.ACTIVE
        and r["iccid"] in esim
        and r["msisdn"] not in changed
        and r["msisdn"] not in locked
    ]
    emails = {r["subscriber_id"]: r["email"] for r in _read(out / "subscribers.csv")}
    return rows, emails


def _stock(out: Path) -> dict[str, list[str]]:
    stock: dict[str, list[str]] = {b.spec.id: [] for b in DEMO_BRANDS}
    for r in _read(out / "stock.csv"):
        stock[r["brand_id"]].append(r["iccid"])
    return stock


def _identity_documents(
    ctx: ServiceContext, customers: list[_Row], seed_value: int
) -> dict[str, tuple[str, str]]:
    """A birth date and an ID-document number on file for each demo customer (issue
    14: the console compares them with what the agent reads off the document).
    Made up and deterministic; stored encrypted like the rest of the subscriber."""
    made: dict[str, tuple[str, str]] = {}
    with ctx.uow() as uow:
        for k, row in enumerate(customers):
            if row.subscriber_id in made:
                continue
            born = dt.date(1950 + (k * 7 + seed_value) % 50, 1 + k % 12, 1 + (k * 5) % 28)
            number = f"{row.brand_id[:2].upper()}{(seed_value * 7919 + k * 104729) % 10**7:07d}"
            subscriber = uow.subscribers.get(row.subscriber_id)
            if subscriber is None:
                continue
            subscriber.birth_date = born.isoformat()
            subscriber.id_document_number = number
            made[row.subscriber_id] = (born.isoformat(), number)
        uow.commit()
    return made


def _email_changed_lately(ctx: ServiceContext, subscriber_ids: list[str]) -> None:
    """The demo's review case: these customers changed their e-mail three days ago."""
    if not subscriber_ids:
        return
    changed_at = ctx.now() - dt.timedelta(days=3)
    with ctx.uow() as uow:
        for subscriber_id in subscriber_ids:
            subscriber = uow.subscribers.get(subscriber_id)
            if subscriber is not None:
                subscriber.email_changed_at = changed_at
        uow.commit()
