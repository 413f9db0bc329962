"""``resim audit ...`` and ``resim keys ...`` (SEC-09, SEC-10, SEC-11). Thin: parse, call, print.

Exit codes: 0 ok; 1 the chain is broken or a command was refused; 2 bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from resim.errors import InvalidInput, ResimError

if TYPE_CHECKING:
    from resim.services.context import ServiceContext
    from resim.settings import Settings

audit_app = typer.Typer(help="The hash-chained audit log: verify, export, report, prune.")
keys_app = typer.Typer(help="Encryption keys for secrets at rest.")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit", no_args_is_help=True)
    app.add_typer(keys_app, name="keys", no_args_is_help=True)


def _context() -> tuple[Settings, ServiceContext]:
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _settings

    settings = _settings()
    return settings, build_context(settings)


def _window(start: str, end: str) -> tuple[dt.datetime, dt.datetime]:
    from resim.services.audit.audit_log import parse_when

    try:
        return parse_when(start), parse_when(end, end=True)
    except InvalidInput as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


FromOpt = Annotated[str, typer.Option("--from", help="start date (YYYY-MM-DD) or ISO time, UTC")]
ToOpt = Annotated[str, typer.Option("--to", help="end date (inclusive) or ISO time (exclusive)")]


@audit_app.command("verify")
def verify() -> None:
    """Walk the whole hash chain; name the first broken row. Exit 1 if broken."""
    from resim.services.audit.audit_log import verify_chain

    _settings, ctx = _context()
    result = verify_chain(ctx)
    typer.echo(result.summary())
    if not result.ok:
        assert result.broken is not None
        typer.echo(
            f"first broken link: seq={result.broken.seq} id={result.broken.id or '-'} "
            f"kind={result.broken.kind}"
        )
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    start: FromOpt,
    end: ToOpt,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", help="file (default stdout)")] = None,
) -> None:
    """Export a contiguous segment of the chain, with hashes, for an auditor.

    Re-verify it with ``resim audit verify-export FILE --prev-hash HASH`` where
    HASH is the hash of the row before the segment (printed on stderr).
    """
    from resim.services.audit.audit_log import FORMATS, export_segment

    if fmt not in FORMATS:
        typer.echo("error: --format is jsonl or csv", err=True)
        raise typer.Exit(2)
    start_at, end_at = _window(start, end)
    _settings, ctx = _context()
    target: TextIO
    with (
        output.open("w", encoding="utf-8", newline="") if output else nullcontext(sys.stdout)
    ) as target:
        try:
            seg = export_segment(ctx, target, start=start_at, end=end_at, fmt=fmt)
        except ResimError as exc:
            typer.echo(f"error: {exc.code}: {exc.message}", err=True)
            raise typer.Exit(2) from None
    if seg.first_seq is None:
        typer.echo("exported 0 rows (no audit events in the window)", err=True)
    else:
        typer.echo(
            f"exported {seg.rows} rows, seq {seg.first_seq}..{seg.last_seq}; "
            f"hash before the segment: {seg.prev_hash or 'unknown (pruned)'}",
            err=True,
        )


@audit_app.command("verify-export")
def verify_export_cmd(
    file: Path,
    prev_hash: Annotated[
        str | None, typer.Option("--prev-hash", help="hash of the row before the segment")
    ] = None,
) -> None:
    """Re-verify an exported segment offline. Exit 1 if a link is broken."""
    from resim.services.audit.audit_log import verify_export

    rows, broken = verify_export(file, prev_hash=prev_hash)
    if broken is not None:
        typer.echo(f"BROKEN at seq {broken.seq}: {broken.message}")
        raise typer.Exit(1)
    typer.echo(f"ok: {rows} rows verified")


@audit_app.command("report")
def report(
    start: FromOpt,
    end: ToOpt,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Replacements, fraud-flagged ones and reversals per brand."""
    from resim.services.audit.audit_report import as_json as to_json
    from resim.services.audit.audit_report import as_table, build_report

    start_at, end_at = _window(start, end)
    if end_at <= start_at:
        typer.echo("error: --to must be after --from", err=True)
        raise typer.Exit(2)
    _settings, ctx = _context()
    rows = build_report(ctx, start=start_at, end=end_at)
    typer.echo(json.dumps(to_json(rows, start_at, end_at), indent=2) if as_json else as_table(rows))


@audit_app.command("prune")
def prune_cmd(
    before: Annotated[str, typer.Option("--before", help="delete rows older than this date")],
) -> None:
    """Delete audit rows older than the retention period; the chain stays verifiable."""
    from resim.services.audit.audit_log import parse_when, prune

    try:
        when = parse_when(before)
    except InvalidInput as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    settings, ctx = _context()
    try:
        deleted, anchor = prune(ctx, before=when, retention_days=settings.audit_retention_days)
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"pruned {deleted} rows"
        + (f"; verification now starts after seq {anchor}" if anchor is not None else "")
    )


@keys_app.command("rotate")
def rotate() -> None:
    """Re-encrypt every secret at rest under the first key of RESIM_SECRET_KEYS."""
    from resim.services.audit.key_rotation import rotate_all

    _settings, ctx = _context()
    try:
        result = rotate_all(ctx, progress=lambda line: typer.echo(line, err=True))
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for name, count in sorted(result.by_column.items()):
        typer.echo(f"  {name}: {count} rewritten")
    typer.echo(result.summary())
