"""``resim export ...`` and ``resim demo-data ...``. Thin: parse, call one service, print.

Exit codes: 0 ok; 1 refused (unknown brand, kind or format); 2 bad usage.
Nothing printed here ever contains a SIM key: keys go only into the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from resim.errors import ResimError


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("demo-data")(demo_data)


def export(
    kind: Annotated[
        str, typer.Argument(help="brands, subscribers, sims, lines, sim-changes, locks, stock, all")
    ],
    target: Annotated[Path, typer.Argument(help="FILE (.csv/.jsonl, brands .toml/.yaml) or DIR")],
    brand: Annotated[str | None, typer.Option(help="Only this brand's rows")] = None,
    include_keys: Annotated[
        bool, typer.Option(help="Write SIM keys (Ki, OPc) in clear to the file")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="all: csv or jsonl")] = "csv",
) -> None:
    """Write resim's data in the import formats (`resim export all DIR` for every kind)."""
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _fail, _settings
    from resim.services.onboarding.onboarding_export import export_all, export_kind

    ctx = build_context(_settings())
    started = time.monotonic()
    try:
        if kind == "all":
            report = export_all(ctx, target, brand_id=brand, include_keys=include_keys, fmt=fmt)
            typer.echo(report.summary())
        else:
            count = export_kind(ctx, kind, target, brand_id=brand, include_keys=include_keys)
            typer.echo(f"{kind}: {count} rows -> {target}")
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(f"done in {time.monotonic() - started:.1f} s")


def demo_data(
    lines: Annotated[int, typer.Option(help="How many lines")],
    out: Annotated[Path, typer.Option(help="Directory for the files")],
    brands: Annotated[str | None, typer.Option(help="Countries, e.g. dk,no,it,fr")] = None,
    seed: int = 1,
    sim_changes: Annotated[
        int | None, typer.Option(help="SIM-change records (default 30% of lines)")
    ] = None,
    locks_percent: float = 2.0,
    stock_per_brand: int = 100,
    keys: Annotated[bool, typer.Option(help="Also write random Ki/OPc per SIM")] = False,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
) -> None:
    """Synthetic import files (fictional brands, valid numbers and ICCIDs, SIM-change history)."""
    from resim.demo.demo_generator import generate
    from resim.entrypoints.cli import _fail

    started = time.monotonic()
    try:
        report = generate(
            out,
            lines=lines,
            brands=brands,
            seed=seed,
            sim_changes=sim_changes,
            locks_percent=locks_percent,
            stock_per_brand=stock_per_brand,
            with_keys=keys,
            fmt=fmt,
        )
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(report.summary())
    # Demo secrets, like the demo's staff passwords: the data set's only PIN and password.
    typer.echo(f"every subscriber's PIN: {report.pin}; 30% have password {report.password}")
    typer.echo(f"done in {time.monotonic() - started:.1f} s")
