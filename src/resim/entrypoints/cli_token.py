"""``resim token issue``: an access token from resim's own issuer (demo, tests)."""

from __future__ import annotations

from typing import Annotated

import typer

from resim.entrypoints.camara.tokens import E164

token_app = typer.Typer(help="CAMARA access tokens from resim's own issuer.", no_args_is_help=True)


@token_app.command("issue")
def issue(
    scope: Annotated[list[str], typer.Option("--scope", help="e.g. sim-swap:check (repeatable)")],
    phone: Annotated[
        str | None, typer.Option("--phone", help="E.164 number: a 3-legged token bound to it")
    ] = None,
    client: Annotated[str, typer.Option("--client", help="client_id of the relying party")] = (
        "demo-bank"
    ),
    purpose: Annotated[
        str | None, typer.Option(help="e.g. dpv:FraudPreventionAndDetection")
    ] = None,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds", min=1, max=86400)] = 3600,
) -> None:
    """Print a signed access token the running API accepts (same RESIM_* settings)."""
    from resim.bootstrap import build_token_issuer
    from resim.entrypoints.cli import _settings
    from resim.services.context import SystemClock

    settings = _settings(quiet=True)
    if settings.camara_jwks_url:
        typer.echo(
            "error: RESIM_CAMARA_JWKS_URL is set: tokens come from the operator's"
            " authorization server, not from resim",
            err=True,
        )
        raise typer.Exit(2)
    if phone is not None and not E164.fullmatch(phone):
        typer.echo("error: --phone must be an E.164 number such as +4520123456", err=True)
        raise typer.Exit(2)
    scopes = [s for item in scope for s in item.split()]
    issuer = build_token_issuer(settings)
    typer.echo(
        issuer.issue(
            scopes=scopes,
            client_id=client,
            now=SystemClock().now(),
            ttl_seconds=ttl,
            phone_number=phone,
            purpose=purpose,
        )
    )
