"""``resim demo``: API, worker, SM-DP+ emulator, mail and SMS capture in one process.

Everything runs on loopback with a fresh SQLite database under
``<data_dir>/demo``, fictional brands in Denmark, Norway, Italy and France
and a few hundred lines. ``--walkthrough`` runs one replacement through the
public API, printing each step, and exits.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pyotp

from resim.adapters.corenet.osmo_hlr_runner import OsmoHlrProcess
from resim.adapters.crypto import SecretBox
from resim.adapters.db.migrate import upgrade
from resim.adapters.events.capture import SinkCapture
from resim.adapters.mail.capture import MailCapture
from resim.adapters.sms.capture import SmsCapture
from resim.bootstrap import (
    build_api_config,
    build_camara,
    build_context,
    build_engine,
    check_connection_budget,
    connection_pools,
    load_secrets,
)
from resim.demo.demo_data import DemoCredentials, DemoData, DemoStaff, seed_demo_identities
from resim.demo.demo_seed import seed_demo
from resim.domain.camara_events import SWAPPED
from resim.emulator.app import EmulatorConfig, build_emulator_app
from resim.emulator.core import SmdpCore
from resim.entrypoints.api.access import SCOPES
from resim.entrypoints.api.app import build_app
from resim.entrypoints.camara.subscriptions import SCOPE_CREATE, SCOPE_DELETE, SCOPE_READ
from resim.entrypoints.camara.versions import V2_1, CamaraVersion
from resim.entrypoints.demo_corenet import prepare_core, start_core
from resim.entrypoints.demo_help import add_walkthrough_reviewer, print_demo_help
from resim.entrypoints.demo_ports import busy_port
from resim.entrypoints.serving import ServerThread
from resim.entrypoints.worker import Worker
from resim.errors import ConfigurationError
from resim.services.context import ServiceContext
from resim.settings import Settings

# The demo bank's sink token: a dev credential, printed in the welcome like the others.
DEMO_SINK_TOKEN = "demo-sink-token"  # noqa: S105


@dataclass
class DemoStack:
    settings: Settings
    data: DemoData
    api: ServerThread
    emulator: ServerThread
    mail: MailCapture
    worker: Worker
    worker_thread: threading.Thread
    credentials: DemoCredentials
    sms: SmsCapture | None = None
    camara_token: str = ""  # a 2-legged CAMARA SIM Swap token from the demo's own issuer
    sink: SinkCapture | None = None  # the demo bank's notification sink (/demo/events)
    subscriptions_token: str = ""  # a 2-legged token for the subscriptions API
    hlr: OsmoHlrProcess | None = None  # the osmo-hlr the demo started, if it did
    camara_version: CamaraVersion = V2_1  # RESIM_CAMARA_VERSION, as bootstrap chose it
    ctx: ServiceContext | None = None  # the API's and worker's context (demo help reads stock)
    walkthrough_reviewer: DemoStaff | None = None  # the walkthrough's own reviewer (not printed)

    @property
    def mail_dir(self) -> Path:
        return self.settings.mail_capture_dir

    @property
    def client_headers(self) -> dict[str, str]:
        """The demo BSS's API key (every scope) as an Authorization header."""
        return {"Authorization": f"Bearer {self.credentials.client_key}"}

    def staff_headers(self, role: str) -> dict[str, str]:
        """Sign the demo staff member with ``role`` in (password + current TOTP code)."""
        return self.sign_in(self.credentials.staff[role])

    def sign_in(self, who: DemoStaff) -> dict[str, str]:
        """A staff session for ``who`` (this burns their current TOTP code)."""
        resp = httpx.post(
            f"{self.api.url}/v1/auth/staff/login",
            json={
                "username": who.username,
                "password": who.password,
                "totp": pyotp.TOTP(who.totp_seed).now(),
            },
            timeout=10,
        ).raise_for_status()
        return {"Authorization": f"Bearer {resp.json()['session_token']}"}

    def stop(self) -> None:
        self.worker.stop()
        self.worker_thread.join(timeout=15)
        self.api.stop()
        self.emulator.stop()
        self.mail.stop()
        if self.sms is not None:
            self.sms.stop()
        if self.sink is not None:
            self.sink.stop()
        if self.hlr is not None:
            self.hlr.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo(
    base: Settings,
    *,
    api_port: int = 8600,
    smdp_port: int = 8700,
    smtp_port: int = 8625,
    sms_port: int = 8626,
    lines_per_brand: int = 75,
    database_url: str = "",
    say: Callable[[str], None] = print,
) -> DemoStack:
    """Start the whole system on loopback (port 0: a free port). A fresh SQLite
    database unless ``database_url`` names another (empty) database.

    Raises ConfigurationError (PORT_IN_USE, one line naming the port and its
    flag) before anything starts or is written when a chosen port is taken.
    """
    chosen = {"--api-port": api_port, "--smdp-port": smdp_port}
    problem = busy_port({**chosen, "--smtp-port": smtp_port, "--sms-port": sms_port})
    if problem is not None:
        raise ConfigurationError(problem, code="PORT_IN_USE")
    data_dir = base.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    base, hlr = start_core(base, data_dir, say)  # RESIM_CORE_NETWORK (docs/operations.md)
    api_port = api_port or free_port()
    smdp_url_port = smdp_port or free_port()
    mail = MailCapture(data_dir / "mail", port=smtp_port)
    mail.start()
    sms = SmsCapture(data_dir / "sms", port=sms_port).start()
    sink = SinkCapture(token=DEMO_SINK_TOKEN).start()
    settings = base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": database_url,
            "public_base_url": f"http://127.0.0.1:{api_port}",
            "smdp_url": f"http://127.0.0.1:{smdp_url_port}",
            "smtp_port": mail.port,
            "smtp_host": "127.0.0.1",
            "sms_gateway_url": sms.url,
            "camara_sink_allow_http_loopback": True,  # the demo sink is http://127.0.0.1
            "worker_concurrency": 16,
            # lost install callbacks are reconciled by asking the emulator (issue 13.6)
            "smdp_status_query": "emulator",
        }
    )
    say(f"database   {settings.effective_database_url}")
    secrets = load_secrets(settings)
    upgrade(settings.effective_database_url, secrets=SecretBox(secrets.keys))
    # One process runs the API and the worker: the worker's pool serves both.
    pools = connection_pools(settings, "demo")
    engine = build_engine(settings, pool=pools[0])
    try:
        check_connection_budget(engine, pools, process="demo")
    except Exception:
        engine.dispose()
        mail.stop()
        sms.stop()
        sink.stop()
        if hlr is not None:
            hlr.stop()
        raise
    ctx = build_context(settings, engine=engine)
    say("seeding    4 demo brands (DK, NO, IT, FR): generated files through `resim import all`")
    data = seed_demo(ctx, lines_per_brand=lines_per_brand)
    prepare_core(ctx, say)
    credentials = seed_demo_identities(ctx, scopes=SCOPES)
    # The walkthrough signs in as a reviewer of its own, so the printed accounts'
    # current TOTP codes stay unused: a login burns its code (replay check).
    walkthrough_reviewer = add_walkthrough_reviewer(ctx)
    core = SmdpCore(
        smdp_address=settings.smdp_address,
        smdp_id=settings.smdp_id,
        allowed_requesters=[settings.smdp_requester_id],
    )
    for iccids in data.stock.values():
        core.add_stock("default", iccids)
    emu_config = EmulatorConfig(
        smdp_address=settings.smdp_address,
        allowed_requesters=(settings.smdp_requester_id,),
        callback_url=settings.public_base_url,
        callback_token=secrets.callback_token,
        requester_id=settings.smdp_id,
    )
    emulator = ServerThread(build_emulator_app(core, emu_config), port=smdp_url_port).start()
    camara = build_camara(settings, clock=ctx.clock)
    assert camara.issuer is not None  # the demo never names an external JWKS
    camara_token = camara.issuer.issue(
        scopes=["sim-swap:check", "sim-swap:retrieve-date"],
        client_id="demo-bank",
        now=ctx.now(),
        ttl_seconds=24 * 3600,
        purpose="dpv:FraudPreventionAndDetection",
    )
    subscriptions_token = camara.issuer.issue(
        scopes=[SCOPE_CREATE, SCOPE_READ, SCOPE_DELETE],
        client_id="demo-bank",
        now=ctx.now(),
        ttl_seconds=24 * 3600,
    )
    config = replace(
        build_api_config(settings, camara=camara),
        mail_capture_dir=settings.mail_capture_dir,
        sms_capture_dir=settings.sms_capture_dir,
        sink_capture=sink,
        demo_phone_url=emulator.url,  # the portal's "simulate the phone" button
    )
    api = ServerThread(build_app(ctx, config), port=api_port).start()
    worker = Worker(ctx, concurrency=settings.worker_concurrency, poll_seconds=0.05)
    thread = threading.Thread(target=worker.run, daemon=True, name="resim-worker")
    thread.start()
    return DemoStack(
        settings,
        data,
        api,
        emulator,
        mail,
        worker,
        thread,
        credentials,
        sms,
        camara_token,
        sink,
        subscriptions_token,
        hlr,
        camara.version,
        ctx,
        walkthrough_reviewer,
    )


def demo_subscription(sink: str, msisdn: str) -> dict[str, Any]:
    """The subscription the welcome suggests: the demo bank's sink, SIM swaps of ``msisdn``."""
    return {
        "protocol": "HTTP",
        "sink": sink,
        "types": [SWAPPED],
        "config": {"subscriptionDetail": {"phoneNumber": msisdn}},
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN",
            "accessToken": DEMO_SINK_TOKEN,
            "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
            "accessTokenType": "bearer",
        },
    }


def print_welcome(stack: DemoStack, say: Callable[[str], None] = print) -> None:
    api = stack.api.url
    example = next(line for line in stack.data.lines[1:] if line.pin is None)
    say("")
    say("resim demo is running. Open:")
    say(f"  customer portal      {api}/portal  (try {example.msisdn}; code in the mail)")
    say(f"  agent console        {api}/console  (staff sign-in below)")
    say(f"  API docs (OpenAPI)   {api}/docs  and  {api}/redoc  (served locally, no internet)")
    say(f"  captured mail        {api}/demo/mail")
    say(f"  captured SMS         {api}/demo/sms")
    say(f"  requests             {api}/v1/requests  (needs a key or a staff session)")
    say(f"  SM-DP+ emulator      {stack.emulator.url}/emulator/profiles")
    say(f"  metrics              {api}/metrics")
    if stack.settings.core_network == "osmo-hlr":
        s = stack.settings
        say(
            f"  osmo-hlr (core)      CTRL {s.osmo_hlr_ctrl_host}:{s.osmo_hlr_ctrl_port}, "
            f"VTY: telnet {s.osmo_hlr_vty_host or s.osmo_hlr_ctrl_host} {s.osmo_hlr_vty_port}"
        )
    say("Sign in (dev credentials; never use them outside the demo):")
    say(f"  demo BSS API key     {stack.credentials.client_key}")
    for who in stack.credentials.staff.values():
        say(
            f"  {who.role:<9} {who.username:<15} password {who.password}, TOTP seed "
            f'{who.totp_seed} (code: python -c "import pyotp; '
            f"print(pyotp.TOTP('{who.totp_seed}').now())\")"
        )
    say(
        f"  curl -s -X POST {api}/v1/auth/staff/login -H 'content-type: application/json' "
        '-d \'{"username": "demo-reviewer", "password": "...", "totp": "<code>"}\''
    )
    say("Try a replacement yourself:")
    say(
        f"  curl -s -X POST {api}/v1/requests -H 'content-type: application/json' "
        f'-d \'{{"msisdn": "{example.msisdn}", "reason": "lost"}}\''
    )
    say(
        f"  (without a key the answer is the same for every number) then read the code"
        f" and the request's link (/c/<id>.<expiry>.<mac>) in {api}/demo/mail and send the code:"
    )
    say(
        f"  curl -s -X POST {api}/v1/requests/<id>/verification "
        "-H 'content-type: application/json' "
        '-d \'{"otp": "<code>"}\''
    )
    say("  the answer's session_token reads that request: -H 'Authorization: Bearer <token>'")
    say("A bank asks, through the CAMARA SIM Swap API (docs/camara.md):")
    say(
        f"  curl -s -X POST {api}{stack.camara_version.simswap_prefix}/check "
        "-H 'content-type: application/json' "
        f"-H 'Authorization: Bearer {stack.camara_token}' "
        f'-d \'{{"phoneNumber": "{example.msisdn}", "maxAge": 240}}\''
    )
    say(
        f"  more tokens: RESIM_DATA_DIR={stack.settings.data_dir} "
        f"RESIM_PUBLIC_BASE_URL={api} resim token issue --scope sim-swap:check"
        " [--phone +45...] [--client bank-1]"
    )
    if stack.data.numbers_without_sim:
        shown = ", ".join(stack.data.numbers_without_sim[:2])
        say(f"  numbers without a SIM yet (retrieve-date answers latestSimChange null): {shown}")
    if stack.sink is not None:
        say("It subscribes to SIM swaps of a number (docs/camara-subscriptions.md):")
        body = json.dumps(demo_subscription(stack.sink.url, example.msisdn))
        say(
            f"  curl -s -X POST {api}{stack.camara_version.subscriptions_prefix}/subscriptions "
            f"-H 'content-type: application/json' "
            f"-H 'Authorization: Bearer {stack.subscriptions_token}' -d '{body}'"
        )
        say(f"  after that number's next cut-over, the event shows in {api}/demo/events")
    print_demo_help(stack, say)
    say("Press Ctrl-C to stop.")
