"""``resim staff ...`` and ``resim clients ...``: accounts for people and machines.

Thin: parse, call one service, print. A new staff member's TOTP URI and a new
client's API key are printed once, to stdout, and stored nowhere in clear.
Passwords are read from stdin (``--password-stdin``) or a hidden prompt, never
from an option (it would land in the shell history and the process list).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from resim.errors import ResimError

if TYPE_CHECKING:
    from resim.services.context import ServiceContext

staff_app = typer.Typer(help="Staff accounts (agents, reviewers, admins).", no_args_is_help=True)
clients_app = typer.Typer(help="Machine clients and their API keys.", no_args_is_help=True)


def _ctx() -> ServiceContext:
    from resim.bootstrap import build_context
    from resim.entrypoints.cli import _settings

    return build_context(_settings())


def _fail(exc: ResimError) -> typer.Exit:
    typer.echo(f"error: {exc.code}: {exc.message}", err=True)
    return typer.Exit(1)


@staff_app.command("add")
def staff_add(
    username: Annotated[str, typer.Option(help="Sign-in name (lower case)")],
    role: Annotated[str, typer.Option(help="agent, reviewer or admin")],
    display_name: Annotated[str, typer.Option(help="Name shown in the audit log")],
    email: Annotated[str | None, typer.Option()] = None,
    brand: Annotated[str | None, typer.Option(help="Limit to one brand")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Create a staff account; prints the TOTP enrolment URI once."""
    from resim.services.access.staff import create_staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        enrolled = create_staff(
            _ctx(),
            username=username,
            role=role,
            display_name=display_name,
            password=password,
            email=email,
            brand_id=brand,
            actor="cli",
        )
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(f"staff {enrolled.username} ({enrolled.role.value}) created, id {enrolled.staff_id}")
    typer.echo("Add this to an authenticator app now; it is not shown again:")
    typer.echo(f"  {enrolled.totp_uri}")


@staff_app.command("list")
def staff_list() -> None:
    """Every staff account (no secrets)."""
    from resim.services.access.staff import list_staff

    for s in list_staff(_ctx()):
        state = "active" if s["active"] else "disabled"
        typer.echo(
            f"{s['username']:<24} {s['role']:<9} {state:<9} {s['brand_id'] or '*':<14}"
            f" {s['display_name']}  last login {s['last_login_at'] or '-'}"
        )


@staff_app.command("disable")
def staff_disable(username: str) -> None:
    """Disable an account and end its sessions at once."""
    from resim.services.access.staff import disable_staff

    try:
        disable_staff(_ctx(), username=username, actor="cli")
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(f"staff {username} disabled")


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Option(help="Who uses the key (e.g. 'BSS')")],
    scope: Annotated[list[str], typer.Option(help="A scope; repeat for more")],
    brand: Annotated[str | None, typer.Option(help="Limit to one brand")] = None,
) -> None:
    """Create a machine client; prints its API key once."""
    from resim.entrypoints.api.access import SCOPES
    from resim.services.access.api_clients import create_client

    try:
        issued = create_client(
            _ctx(), name=name, scopes=scope, known_scopes=SCOPES, brand_id=brand, actor="cli"
        )
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"client {issued.name} created, id {issued.client_id}, scopes {' '.join(issued.scopes)}"
    )
    typer.echo("API key (send as 'Authorization: Bearer <key>'; it is not shown again):")
    typer.echo(f"  {issued.key}")


@clients_app.command("list")
def clients_list() -> None:
    """Every client with its scopes (never a key)."""
    from resim.services.access.api_clients import list_clients

    for c in list_clients(_ctx()):
        state = "active" if c["active"] else "revoked"
        typer.echo(
            f"{c['id']}  {state:<8} {c['name']:<24} {' '.join(c['scopes'])}"
            f"  last used {c['last_used_at'] or '-'}"
        )


@clients_app.command("revoke")
def clients_revoke(client_id: str) -> None:
    """The client's key stops working at once."""
    from resim.services.access.api_clients import revoke_client

    try:
        revoke_client(_ctx(), client_id=client_id, actor="cli")
    except ResimError as exc:
        raise _fail(exc) from None
    typer.echo(f"client {client_id} revoked")
