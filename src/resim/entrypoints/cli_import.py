"""``resim import <kind> FILE`` and ``resim import all DIR``: onboarding an operator.

Thin: parse options, call :mod:`resim.services.onboarding`, print the report.
Exit codes: 0 every row written or unchanged, 1 some row rejected or in
conflict, 2 usage error (unknown kind or format, missing file or columns).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resim.errors import InvalidInput, ResimError

import_app = typer.Typer(
    help="Import an operator's brands, subscribers, SIMs, lines, history, locks and stock.",
    no_args_is_help=True,
)
SHOWN = 50  # rejected rows printed; all of them are in the CSV report

DryRun = Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")]
Strict = Annotated[bool, typer.Option("--strict", help="Write nothing if any row is bad.")]
Batch = Annotated[int, typer.Option("--batch-size", help="Rows per transaction.", min=1)]
Report = Annotated[
    Path | None, typer.Option("--report", help="CSV report (default: FILE.report.csv)")
]


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")


def _run_file(
    kind: str, file: Path, dry_run: bool, strict: bool, report: Path | None, batch: int
) -> None:
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _settings
    from resim.services.onboarding import import_file
    from resim.services.onboarding.progress import for_terminal

    ctx = build_context(_settings())
    target = report or file.with_name(file.name + ".report.csv")
    try:
        result = import_file(
            ctx, kind, file, dry_run=dry_run, strict=strict, report_path=target,
            progress=for_terminal(), batch_size=batch,
        )  # fmt: skip
    except InvalidInput as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    _print(result)
    hint = result.reference_hint()
    if hint is not None:
        typer.echo(hint)
    typer.echo(f"report: {target}")
    if result.bad:
        raise typer.Exit(1)


def _print(result: object) -> None:
    from resim.services.onboarding import ImportReport

    assert isinstance(result, ImportReport)
    for err in result.errors[:SHOWN]:
        typer.echo(f"  line {err.line}: {err.field}: {err.outcome}: {err.reason}")
    if result.errors_total > SHOWN:
        typer.echo(f"  ... {result.errors_total - SHOWN} more in the report")
    typer.echo(result.summary())


def _command(kind: str, help_text: str) -> None:
    def command(
        file: Annotated[Path, typer.Argument(help="the file (.csv or .jsonl; brands .toml/.yaml)")],
        dry_run: DryRun = False,
        strict: Strict = False,
        report: Report = None,
        batch_size: Batch = 20_000,
    ) -> None:
        _run_file(kind, file, dry_run, strict, report, batch_size)

    command.__doc__ = help_text
    import_app.command(kind.replace("_", "-"))(command)


_command("brands", "Brands and their policies (TOML [[brand]] or YAML brand: list).")
_command("subscribers", "Account holders: contact points, language, PIN/password (hashed).")
_command("sims", "SIMs of any form and state; ki/opc encrypted, never printed.")
_command("lines", "Numbers with their subscriber, status and current SIM (bound on import).")
_command("sim_changes", "SIM-change history (msisdn, changed_at with zone, old/new ICCID).")
_command("locks", "SIM-change locks (msisdn, locked_at with zone).")
_command("stock", "eSIM profiles in stock (iccid, imsi, brand_id, profile_type, smdp).")


@import_app.command("all")
def import_all(
    directory: Annotated[Path, typer.Argument(help="holds <kind>.csv|.jsonl, brands.toml|.yaml")],
    dry_run: DryRun = False,
    strict: Strict = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="CSV reports R.<kind>.csv (default DIR/report.csv)"),
    ] = None,
) -> None:
    """Every kind found in DIR, in order (brands, subscribers, sims, lines, ... stock)."""
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _settings
    from resim.services.onboarding import import_dir
    from resim.services.onboarding.progress import for_terminal

    ctx = build_context(_settings())
    target = report or directory / "report.csv"
    try:
        results = import_dir(
            ctx, directory, dry_run=dry_run, strict=strict, report_path=target,
            progress=for_terminal(),
        )  # fmt: skip
    except InvalidInput as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for result in results:
        _print(result)
    typer.echo(f"reports: {target.with_name(target.stem)}.<kind>{target.suffix}")
    if any(r.bad for r in results):
        raise typer.Exit(1)
