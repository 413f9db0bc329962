"""``resim accounts unfreeze`` and ``resim alerts list``: the fraud team's tools (issue 12).

Thin: parse, call one service, print. The command acts as the reviewer it
names (``--reviewer``), with that reviewer's brand, exactly as the console.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from resim.errors import ResimError

if TYPE_CHECKING:
    from resim.services.context import ServiceContext

accounts_app = typer.Typer(help="Customer accounts: lift a freeze.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts for reviewers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(alerts_app, name="alerts")


def _ctx() -> ServiceContext:
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _settings

    return build_context(_settings())


@accounts_app.command("unfreeze")
def accounts_unfreeze(
    msisdn: Annotated[str, typer.Argument(help="A phone number of the frozen account")],
    reviewer: Annotated[str, typer.Option(help="Username of the approving reviewer")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")],
) -> None:
    """Approve unfreezing an account (a second reviewer too where the brand's policy says)."""
    from resim.services.locks.unfreeze import unfreeze_by_username

    try:
        outcome = unfreeze_by_username(_ctx(), msisdn=msisdn, username=reviewer, reason=reason)
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if outcome.unfrozen:
        typer.echo("account unfrozen; the customer is notified")
    else:
        typer.echo(f"approval recorded; {outcome.approvals_needed} more reviewer(s) must approve")


@alerts_app.command("list")
def alerts_list(limit: int = 50) -> None:
    """Open (unacknowledged) alerts, newest first."""
    from resim.services.console.alert_inbox import open_alerts

    for alert in open_alerts(_ctx(), limit=limit):
        typer.echo(
            f"{alert['at']:%Y-%m-%d %H:%M}  {alert['kind']:<18} {alert['msisdn'] or '-':<16}"
            f" {alert['subject_type']}:{alert['subject_id']}"
        )
