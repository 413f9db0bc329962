"""The ``resim`` command line (Typer). Thin: parse, call one service, print."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import typing
from collections.abc import Callable
from typing import Annotated

import typer
from pydantic import ValidationError

from resim.domain import diagrams
from resim.domain.workflow import diagram_mermaid, diagram_text
from resim.entrypoints import cli_accounts, cli_audit, cli_export, cli_import
from resim.entrypoints.cli_identity import clients_app, staff_app
from resim.entrypoints.cli_token import token_app
from resim.entrypoints.logs import configure_logging
from resim.errors import ConfigurationError, ResimError
from resim.settings import Settings

# The values RESIM_CORE_NETWORK takes, for `resim demo --core-network`.
CORE_NETWORKS = list(typing.get_args(Settings.model_fields["core_network"].annotation))
# The demo seeds its own SIMs: on PyHSS their keys would have to be in its AuC
# first (stock intake, docs/pyhss.md), so the demo runs on the other two.
DEMO_CORE_NETWORKS = [name for name in CORE_NETWORKS if name != "pyhss"]

app = typer.Typer(
    help="resim: safe SIM and eSIM replacement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
requests_app = typer.Typer(help="Inspect replacement requests.", no_args_is_help=True)
workflow_app = typer.Typer(help="The replacement workflow.", no_args_is_help=True)
jobs_app = typer.Typer(help="The outbox of durable jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(requests_app, name="requests")
app.add_typer(workflow_app, name="workflow")
app.add_typer(jobs_app, name="jobs")
app.add_typer(staff_app, name="staff")
app.add_typer(clients_app, name="clients")
app.add_typer(token_app, name="token")
cli_audit.register(app)  # resim audit ..., resim keys ...
cli_import.register(app)  # resim import <kind> FILE, resim import all DIR
cli_export.register(app)  # resim export ..., resim demo-data ...
cli_accounts.register(app)  # resim accounts unfreeze ..., resim alerts list


def _settings(*, quiet: bool = False, demo: bool = False) -> Settings:
    from resim.bootstrap import core_network_problem

    try:
        settings = Settings()
    except ValidationError as exc:  # name the variable, never echo its value (a secret?)
        for err in exc.errors(include_input=False, include_url=False):
            name = "RESIM_" + "_".join(str(p) for p in err["loc"]).upper()
            typer.echo(f"error: invalid setting {name}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    # The demo starts its own osmo-hlr when none is named; every other command needs one.
    problem = None if demo else core_network_problem(settings)
    if problem is not None:
        typer.echo(f"error: invalid settings: {problem}", err=True)
        raise typer.Exit(2)
    level = settings.log_level
    if quiet and "RESIM_LOG_LEVEL" not in os.environ:
        level = "WARNING"  # the demo prints its own story; logs only for trouble
    configure_logging(fmt=settings.log_format, level=level)
    return settings


def _fail(exc: ResimError) -> typer.Exit:
    typer.echo(f"error: {exc.code}: {exc.message}", err=True)
    return typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create the database or migrate it to the newest schema."""
    from resim.adapters.crypto import SecretBox
    from resim.adapters.db.migrate import upgrade
    from resim.bootstrap import load_secrets

    settings = _settings()
    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    box = SecretBox(load_secrets(settings).keys)  # for migrations that encrypt clear values
    rev = upgrade(settings.effective_database_url, revision, secrets=box)
    typer.echo(f"database at revision {rev}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the REST API (BSS integration, ES2+ callbacks, status pages)."""
    import uvicorn

    from resim.bootstrap import (
        build_api_config,
        build_context,
        build_engine,
        check_connection_budget,
        connection_pools,
    )
    from resim.entrypoints.api.app import build_app
    from resim.entrypoints.tls import check_server_tls, server_tls_options

    settings = _settings()
    tls_files = (
        _path(settings.api_tls_cert_file),
        _path(settings.api_tls_key_file),
        _path(settings.api_tls_client_ca_file),
    )
    try:
        check_server_tls(*tls_files)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    pools = connection_pools(settings, "api")
    engine = build_engine(settings, pool=pools[0])
    _check_pools(lambda: check_connection_budget(engine, pools, process="API"))
    ctx = build_context(settings, engine=engine)
    api = build_app(ctx, build_api_config(settings, clock=ctx.clock))
    uvicorn.run(
        api,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through resim's handler (entrypoints/logs.py)
        access_log=False,
        proxy_headers=False,  # RESIM_TRUSTED_PROXIES decides (entrypoints/api/forwarded.py)
        # HTTPS, and client certificates for ES2+ callbacks (entrypoints/tls.py)
        **server_tls_options(*tls_files, require_client_cert=False),
    )


def _path(value: object) -> str | None:
    return str(value) if value else None


def _check_pools(check: Callable[[], int]) -> None:
    try:
        check()
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(help="Jobs in flight")] = None) -> None:
    """Run durable jobs (ES2+ calls, core network, mail) until SIGTERM."""
    from resim.bootstrap import (
        build_context,
        build_engine,
        check_connection_budget,
        connection_pools,
    )
    from resim.entrypoints.worker import Worker

    settings = _settings()
    jobs = concurrency or settings.worker_concurrency
    pools = connection_pools(settings, "worker", concurrency=jobs)
    engine = build_engine(settings, pool=pools[0])
    _check_pools(lambda: check_connection_budget(engine, pools, process="worker"))
    ctx = build_context(settings, engine=engine)
    w = Worker(
        ctx,
        concurrency=jobs,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        prune_every_seconds=settings.job_prune_interval_seconds,
    )
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    signal.signal(signal.SIGINT, lambda *_: w.stop())
    w.run()


@app.command("smdp-emulator")
def smdp_emulator(
    host: str = "127.0.0.1",
    port: int = 8700,
    stock: Annotated[list[str] | None, typer.Option(help="PROFILE_TYPE=COUNT, repeatable")] = None,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    error_rate: float = 0.0,
    http5xx_rate: float = 0.0,
    timeout_rate: float = 0.0,
    callback_url: Annotated[str | None, typer.Option(help="resim's base URL for callbacks")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="Serve HTTPS: certificate (PEM)")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Serve HTTPS: its key (PEM)")] = None,
    client_ca: Annotated[
        str | None, typer.Option(help="Require client certificates issued by this CA (PEM)")
    ] = None,
    callback_cert: Annotated[
        str | None, typer.Option(help="Client certificate (PEM) for callbacks to resim")
    ] = None,
    callback_key: Annotated[str | None, typer.Option(help="Its key (PEM)")] = None,
    callback_ca: Annotated[
        str | None, typer.Option(help="CA bundle (PEM) that resim's HTTPS certificate is from")
    ] = None,
) -> None:
    """Run the built-in SM-DP+ emulator (real ES2+ over HTTP, or HTTPS with mutual TLS)."""
    from resim.bootstrap import load_secrets
    from resim.emulator.app import EmulatorConfig
    from resim.emulator.server import serve_emulator

    settings = _settings()
    counts: dict[str, int] = {}
    for item in stock or []:
        kind, _, count = item.partition("=")
        if not count.isdigit():
            typer.echo("error: --stock takes PROFILE_TYPE=COUNT", err=True)
            raise typer.Exit(2)
        counts[kind] = int(count)
    config = EmulatorConfig(
        smdp_address=settings.smdp_address,
        allowed_requesters=(settings.smdp_requester_id,),
        callback_url=callback_url or settings.public_base_url,
        callback_token=load_secrets(settings).callback_token,
        requester_id=settings.smdp_id,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=error_rate,
        http5xx_rate=http5xx_rate,
        timeout_rate=timeout_rate,
        callback_client_cert=(
            (callback_cert, callback_key or callback_cert) if callback_cert else None
        ),
        callback_ca_bundle=callback_ca,
    )
    serve_emulator(
        config,
        host=host,
        port=port,
        stock=counts,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        ssl_ca_certs=client_ca,
        log_level=settings.log_level.lower(),
    )


@requests_app.command("list")
def requests_list(state: str | None = None, limit: int = 20) -> None:
    """The newest requests (or, with --state in_review, the review queue)."""
    from resim.bootstrap import build_context
    from resim.services.replacement.queries import list_requests

    ctx = build_context(_settings())
    for view in list_requests(ctx, state=state, limit=limit):
        typer.echo(
            f"{view['ref']}  {view['state']:<12} {view['msisdn']:<16} {view['reason']:<15}"
            f" {view['created_at']}"
        )


@requests_app.command("show")
def requests_show(request_id: str) -> None:
    """One request as JSON (no secrets)."""
    from resim.bootstrap import build_context
    from resim.services.replacement.queries import get_request_view

    ctx = build_context(_settings())
    try:
        typer.echo(json.dumps(get_request_view(ctx, request_id), indent=2))
    except ResimError as exc:
        raise _fail(exc) from None


@jobs_app.command("prune")
def jobs_prune(
    older_than_days: Annotated[
        float | None,
        typer.Option(min=0, help="Default: RESIM_JOB_RETENTION_DAYS"),
    ] = None,
) -> None:
    """Delete done jobs that finished longer ago than the retention (workers do it hourly)."""
    import datetime as dt

    from resim.bootstrap import build_context
    from resim.services.outbox.jobs import prune_done

    ctx = build_context(_settings())
    older = None if older_than_days is None else dt.timedelta(days=older_than_days)
    count = prune_done(ctx, older_than=older)
    days = (older or ctx.job_retention).total_seconds() / 86400
    typer.echo(f"{count} done jobs deleted (finished more than {days:g} days ago)")


@workflow_app.command("diagram")
def workflow_diagram(
    fmt: Annotated[str, typer.Option("--format", help="mermaid or text")] = "mermaid",
    of: Annotated[
        str, typer.Option("--of", help="request, sim, smdp_step, install or old_sim")
    ] = "request",
) -> None:
    """Print a transition table as a diagram (generated from the code): the
    request's (default), the SIM's, or one of the request's sub-state tables."""
    if fmt not in ("mermaid", "text"):
        typer.echo("error: --format is mermaid or text", err=True)
        raise typer.Exit(2)
    if of != "request" and of not in diagrams.TABLES:
        typer.echo(f"error: --of is request or one of {', '.join(diagrams.TABLES)}", err=True)
        raise typer.Exit(2)
    if of != "request":
        typer.echo(diagrams.mermaid(of) if fmt == "mermaid" else diagrams.text(of))
        return
    typer.echo(diagram_mermaid() if fmt == "mermaid" else diagram_text())


@app.command()
def demo(
    walkthrough: Annotated[bool, typer.Option(help="Run one replacement and exit")] = False,
    api_port: int = 8600,
    smdp_port: int = 8700,
    smtp_port: int = 8625,
    sms_port: int = 8626,
    lines_per_brand: int = 75,
    core_network: Annotated[
        str | None,
        typer.Option(
            help=f"{' or '.join(DEMO_CORE_NETWORKS)}; default: RESIM_CORE_NETWORK. osmo-hlr: the"
            " one at RESIM_OSMO_HLR_CTRL_HOST, or one the demo starts on loopback",
        ),
    ] = None,
) -> None:
    """Start API, worker, SM-DP+ emulator, mail and SMS capture with demo data."""
    from resim.entrypoints import demo as demo_mod
    from resim.entrypoints.walkthrough import WalkthroughError
    from resim.entrypoints.walkthrough import walkthrough as walk_through

    settings = _settings(quiet=True, demo=True)
    if core_network is not None:
        if core_network not in DEMO_CORE_NETWORKS:
            typer.echo(f"error: --core-network is {' or '.join(DEMO_CORE_NETWORKS)}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"core_network": core_network})
    if settings.core_network not in DEMO_CORE_NETWORKS:
        typer.echo(
            f"error: the demo runs on {' or '.join(DEMO_CORE_NETWORKS)}, not on "
            f"RESIM_CORE_NETWORK={settings.core_network} (docs/pyhss.md)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        stack = demo_mod.start_demo(
            settings,
            api_port=api_port,
            smdp_port=smdp_port,
            smtp_port=smtp_port,
            sms_port=sms_port,
            lines_per_brand=lines_per_brand,
        )
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    try:
        typer.echo("\nA replacement, step by step, through the public API:")
        walk_through(stack)
        if walkthrough:
            typer.echo("\nwalkthrough completed")
            return
        demo_mod.print_welcome(stack)
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        try:
            while not stop["now"]:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    except WalkthroughError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        typer.echo("stopping ...", err=True)
        stack.stop()


def main() -> None:
    try:
        app()
    except ResimError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(1)
