"""Synthetic onboarding files at any size: ``resim demo-data --lines N --out DIR``.

Writes the import files (``resim.services.onboarding.formats``) for the demo's fictional
brands (``demo_data.DEMO_BRANDS``): brands.toml, subscribers, sims, lines,
sim_changes, locks and stock. Contracts:

- Streaming: every file is open at once and each subscriber's rows are written
  as they are drawn; nothing grows with N (numbers, ICCIDs and IMSIs are
  functions of counters, unique by construction: ``demo_catalog``).
- Deterministic: one ``random.Random(seed)`` drawn in a fixed order; the same
  arguments give the same bytes.
- History: a line with k changes went through SIMs s0 -> s1 -> ... -> sk, sk
  being its current SIM (lines.iccid, state active or suspended like the
  line); s0..s(k-1) are retired SIMs in sims. Change times increase, fall
  after the line was created and before ``now``, in day time, written in the
  brand's time zone. No "first binding" rows (old_iccid empty) are written.
- Secrets: every subscriber gets the same argon2id hash of one per-dataset PIN
  (and 30% the hash of one per-dataset password), hashed once with a salt
  derived from the seed: hashing a million PINs would take hours. The clear
  values are in the report for the demo to print.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from resim.demo.demo_catalog import (
    COUNTRIES,
    ascii_mail,
    iccid_for,
    imsi_for,
    msisdn_for,
    select_brands,
)
from resim.demo.demo_data import DemoBrand
from resim.errors import InvalidInput
from resim.services.onboarding import formats

DAY = 86_400
# The digit after the issuer prefix (ICCID) or MCC+MNC (IMSI): one range per
# kind of SIM, so they never collide. (1 and 2 were the hand-seeded demo's
# before it was generated too; SIMs an operator adds by hand may use them.)
CURRENT, STOCK, RETIRED = 4, 5, 6


@dataclass
class GenerationReport:
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    pin: str = ""  # demo secrets: every subscriber's PIN, 30%'s password
    password: str = ""

    def summary(self) -> str:
        return "\n".join(f"{k}: {n} rows -> {self.files[k]}" for k, n in self.counts.items())


def _demo_hash(secret: str, seed: int) -> str:
    salt = hashlib.sha256(f"resim-demo-data:{seed}".encode()).digest()[:16]
    return PasswordHasher().hash(secret, salt=salt)


class _Budget:
    """Hands out exactly ``total`` SIM changes over ``lines`` lines, 1-3 per changed line."""

    def __init__(self, total: int, lines: int) -> None:
        if not 0 <= total <= 3 * lines:
            raise InvalidInput("between 0 and 3 SIM changes per line", code="DEMO_SIZE")
        self.left, self.lines_left = total, lines

    def draw(self, r: int) -> int:
        """``r``: 24 random bits (16 decide whether, 8 how many)."""
        mean = self.left / self.lines_left if self.lines_left else 0.0
        k = (r >> 16 & 0xFF) % 3 + 1 if (r & 0xFFFF) < mean / 2 * 65536 else 0
        k = min(k, self.left)
        k = max(k, self.left - 3 * (self.lines_left - 1))  # the rest must still fit
        self.left -= k
        self.lines_left -= 1
        return k


class _LocalClock:
    """Unix seconds -> ISO 8601 local time with offset, as ``datetime.isoformat`` writes it.

    Caches the zone's offset per UTC day and the date text per local day (a
    few thousand entries for ten years of history, whatever the size of the
    data set); a day on which the offset changes takes the slow path.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, tuple[int, str] | None] = {}
        self._dates: dict[int, str] = {}

    def _offset(self, day: int) -> tuple[int, str] | None:
        start = dt.datetime.fromtimestamp(day * DAY, tz=self.zone).utcoffset()
        end = dt.datetime.fromtimestamp(day * DAY + DAY - 1, tz=self.zone).utcoffset()
        if start is None or start != end:
            return None
        seconds = int(start.total_seconds())
        sign, minutes = "+" if seconds >= 0 else "-", abs(seconds) // 60
        return seconds, f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    def format(self, ts: int) -> str:
        day = ts // DAY
        if day not in self._offsets:
            self._offsets[day] = self._offset(day)
        offset = self._offsets[day]
        if offset is None:
            return dt.datetime.fromtimestamp(ts, tz=self.zone).isoformat()
        local = ts + offset[0]
        local_day, sec = divmod(local, DAY)
        date = self._dates.get(local_day)
        if date is None:
            date = self._dates[local_day] = dt.date.fromordinal(719163 + local_day).isoformat()
        return f"{date}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}{offset[1]}"


@dataclass
class _Run:
    """One generation: its writers, draws and counters (per brand: lines, retired SIMs)."""

    w: dict[str, formats.RowWriter]
    rng: random.Random
    seed: int
    now_ts: int
    locks_percent: float
    with_keys: bool
    pin_hash: str
    password_hash: str
    budget: _Budget
    lines: dict[str, int] = field(default_factory=dict)
    retired: dict[str, int] = field(default_factory=dict)
    clocks: dict[str, _LocalClock] = field(default_factory=dict)
    subscribers: int = 0
    csv: bool = True

    def cell(self, text: str) -> str:
        """``text`` as a CSV cell (quoted: it may hold commas) or as itself for JSON Lines."""
        return f'"{text}"' if self.csv else text

    def row(self, kind: str, values: tuple[str | None, ...]) -> None:
        # CSV: every value is plain (digits, names, e-mails, ISO times) or went
        # through cell(); the tests read the files back with the csv module.
        if self.csv:
            self.w[kind].write_csv_cells(values)
        else:
            self.w[kind].write_values(values)

    def keys(self) -> tuple[str, ...]:
        if not self.with_keys:
            return ()
        bits = self.rng.getrandbits
        return f"{bits(128):032X}", f"{bits(128):032X}"

    def local(self, ts: int, brand_id: str) -> str:
        return self.clocks[brand_id].format(ts)

    def daytime(self, ts: int) -> int:
        """The same day, between 07:00 and 19:00 UTC (day time in Europe)."""
        return ts - ts % DAY + 7 * 3600 + self.rng.getrandbits(16) % (12 * 3600)


def generate(
    out: Path,
    *,
    lines: int,
    brands: str | None = None,
    seed: int = 1,
    sim_changes: int | None = None,
    locks_percent: float = 2.0,
    stock_per_brand: int = 100,
    with_keys: bool = False,
    now: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    fmt: str = "csv",
) -> GenerationReport:
    """Write the import files for ``lines`` lines into ``out``; see the module contract.

    ``sim_changes`` (default 30% of ``lines``) is the exact number of change
    records; ``now`` is the dataset's present (every time is before it).
    """
    if lines < 0 or stock_per_brand < 0 or not 0 <= locks_percent <= 100:
        raise InvalidInput("sizes cannot be negative; locks are a percentage", code="DEMO_SIZE")
    chosen = select_brands(brands)
    rng = random.Random(seed)
    report = GenerationReport(
        pin=f"{rng.randrange(10**4):04d}", password=f"demo-{rng.randrange(10**8):08d}"
    )
    budget = _Budget(lines * 3 // 10 if sim_changes is None else sim_changes, lines)
    out.mkdir(parents=True, exist_ok=True)
    brands_file = out / "brands.toml"
    brands_file.write_text(
        formats.brands_toml(
            [
                {**vars(b.spec), "policy": b.spec.policy.to_dict()}
                for b in sorted(chosen, key=lambda b: b.spec.id)  # as export writes them
            ]
        ),
        encoding="utf-8",
    )
    report.counts["brands"], report.files["brands"] = len(chosen), brands_file
    with ExitStack() as stack:
        writers = {
            kind: stack.enter_context(
                formats.RowWriter(
                    out / f"{kind}.{fmt}", formats.export_columns(kind, include_keys=with_keys)
                )
            )
            for kind in formats.TABULAR_KINDS
        }
        run = _Run(
            w=writers,
            rng=rng,
            seed=seed,
            now_ts=int(now.timestamp()),
            locks_percent=locks_percent,
            with_keys=with_keys,
            pin_hash=_demo_hash(report.pin, seed),
            password_hash=_demo_hash(report.password, seed + 1),
            csv=fmt == "csv",
            budget=budget,
            lines={b.spec.id: 0 for b in chosen},
            retired={b.spec.id: 0 for b in chosen},
            clocks={b.spec.id: _LocalClock(ZoneInfo(b.spec.timezone)) for b in chosen},
        )
        run.pin_hash, run.password_hash = run.cell(run.pin_hash), run.cell(run.password_hash)
        for brand_ix, n_lines in _subscribers(rng, lines, len(chosen)):
            _subscriber(run, chosen[brand_ix], n_lines)
        for brand in chosen:
            for n in range(stock_per_brand):
                run.row(
                    "stock",
                    (
                        iccid_for(brand, STOCK, n),
                        imsi_for(brand, STOCK, n),
                        brand.spec.id,
                        brand.spec.policy.profile_type,
                        None,  # smdp: the installation's SM-DP+
                        *run.keys(),
                    ),
                )
        for kind, writer in writers.items():
            report.counts[kind], report.files[kind] = writer.count, writer.path
    return report


def _subscribers(rng: random.Random, lines: int, brands: int) -> Iterator[tuple[int, int]]:
    """(brand index, number of lines) per subscriber until ``lines`` are handed out."""
    left, i = lines, 0
    while left > 0:
        n = 2 if left >= 2 and rng.random() < 0.08 else 1
        yield i % brands, n
        left -= n
        i += 1


# Each subscriber and each line takes one 64-bit draw and slices it into its
# decisions (a few random.Random calls a row instead of a dozen: 1M lines in
# well under a minute). Shares are per 256 or per 1024 of the slice.


def _subscriber(run: _Run, brand: DemoBrand, n_lines: int) -> None:
    bits, bid, country = run.rng.getrandbits, brand.spec.id, brand.spec.country
    c = COUNTRIES[country]
    sub_no = run.subscribers
    run.subscribers += 1
    r = bits(64)
    first = c.first_names[(r & 0xFF) % len(c.first_names)]
    last = c.last_names[(r >> 8 & 0xFF) % len(c.last_names)]
    created_ts = run.now_ts - 60 * DAY - bits(32) % (3590 * DAY)  # 2 months to 10 years ago
    sub_id = f"{country}-{sub_no:09d}"
    address = None
    if (r >> 16 & 0xFF) < 154:  # 60%
        postcode, city = c.cities[(r >> 24 & 0xF) % len(c.cities)]
        street, no = c.streets[(r >> 28 & 0xF) % len(c.streets)], (r >> 32 & 0x7F) % 120 + 1
        address = f"{no} {street}" if c.number_first else f"{street} {no}"
        address = run.cell(f"{address}, {postcode} {city}")
    alt = None
    if (r >> 39 & 0xFF) < 38:  # 15%
        alt = msisdn_for(country, bits(17) % 10**5, seed=run.seed + sub_no, alternate=True)
    run.row(
        "subscribers",
        (
            sub_id,
            bid,
            f"{first} {last}",
            f"{ascii_mail(first, last)}.{sub_no}@{brand.mail_domain}",
            brand.spec.language if (r >> 47 & 0xFF) < 230 else "en",  # 90%
            alt,
            address,
            run.pin_hash,
            run.password_hash if (r >> 55 & 0xFF) < 77 else None,  # 30%
            run.local(created_ts, bid),
        ),
    )
    line_ts = created_ts
    for _ in range(n_lines):
        _line(run, brand, sub_id, line_ts)
        line_ts += DAY + bits(32) % (29 * DAY)


def _line(run: _Run, brand: DemoBrand, sub_id: str, line_ts: int) -> None:
    bits, bid = run.rng.getrandbits, brand.spec.id
    line_no = run.lines[bid]
    run.lines[bid] += 1
    msisdn = msisdn_for(brand.spec.country, line_no, seed=run.seed)
    r = bits(64)
    status = "suspended" if (r & 0x3FF) < 31 else "active"  # 3%
    chain = []
    for i in range(run.budget.draw(r >> 32)):  # the SIMs this line had before its current one
        n = run.retired[bid]
        run.retired[bid] += 1
        chain.append(iccid_for(brand, RETIRED, n))
        esim = bool(r >> (56 + i) & 1)
        run.row(
            "sims",
            (
                chain[-1],
                imsi_for(brand, RETIRED, n),
                "esim" if esim else "physical",
                "retired",
                bid,
                "default" if esim else None,
                *run.keys(),
            ),
        )
    current = iccid_for(brand, CURRENT, line_no)
    esim = (r >> 10 & 0xFF) < 154  # 60%
    run.row(
        "sims",
        (
            current,
            imsi_for(brand, CURRENT, line_no),
            "esim" if esim else "physical",
            status,
            bid,
            "default" if esim else None,
            *run.keys(),
        ),
    )
    run.row("lines", (msisdn, sub_id, bid, status, current, run.local(line_ts, bid)))
    last_ts = line_ts
    if chain:
        chain.append(current)
        span = max(run.now_ts - 2 * DAY - line_ts, 1)
        times = sorted(run.daytime(line_ts + DAY + bits(32) % span) for _ in chain[1:])
        for k, ts in enumerate(times):
            run.row("sim_changes", (msisdn, run.local(ts, bid), chain[k], chain[k + 1]))
        last_ts = times[-1]
    if (r >> 18 & 0x3FFF) < run.locks_percent * 163.84:  # per 16384
        locked_ts = last_ts + bits(32) % max(run.now_ts - last_ts - 60, 1)
        run.row("locks", (msisdn, run.local(locked_ts, bid)))
