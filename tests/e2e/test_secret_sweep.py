"""SEC-11 sweep: run the flows end to end, collect every secret used, find none out of place.

The whole system runs in this process (the demo stack on loopback, SQLite):
API, worker, SM-DP+ emulator, SMTP capture. Logging is configured as the
processes configure it, at DEBUG; every rendered structlog event and every
stdlib record (uvicorn's and httpx's included) is kept. Every HTTP response this test receives from
resim is recorded.

Secrets collected: one-time codes (from the captured mail), "not me" link
tokens, PINs, activation codes and matching IDs (decrypted from the database
and from activation responses), the encryption key and what is derived from
it, SIM keys of stock added with keys, and any token or key a response hands
out (when login or API keys exist).

Then none may appear in the logs, in any error response, in any response
other than the one meant to carry it (the activation view to a verified
caller; the "not me" page carries its own link), in the jobs table in clear,
or in the audit log.

Built to survive other changes: flows that a later access rule refuses still
run (their 401/403 answers are recorded and checked too); only the demo
walkthrough, which the project keeps working, must succeed.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import structlog
from typer.testing import CliRunner

from resim.adapters.db import orm
from resim.adapters.mail.capture import read_mailbox
from resim.bootstrap import build_context, load_secrets
from resim.domain.activation import parse_activation_code
from resim.domain.identifiers import iccid_with_check_digit
from resim.entrypoints.cli import app as cli_app
from resim.entrypoints.demo import (
    DEMO_SINK_TOKEN,
    DemoStack,
    demo_subscription,
    start_demo,
)
from resim.entrypoints.logs import configure_logging, is_sensitive_key
from resim.entrypoints.walkthrough import walkthrough
from resim.services.onboarding import seed
from resim.settings import Settings

pytestmark = pytest.mark.e2e
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
KI = "5C6F2B8E0A1D4F7C9B3E6A0D2F5C8B1E"
OPC = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.M)
NOT_ME_RE = re.compile(r"/not-me/([A-Za-z0-9_\-]{16,})")


@dataclass
class Seen:
    method: str
    path: str
    status: int
    text: str


@dataclass
class Secrets:
    values: dict[str, str] = field(default_factory=dict)  # secret -> what it is

    def add(self, what: str, value: str | None) -> None:
        if value and len(value) >= 4:
            self.values[value] = what

    def hits(self, text: str) -> list[tuple[str, str]]:
        """(secret, what it is) for every secret in ``text``."""
        found = []
        for value, what in self.values.items():
            if value.isdigit():  # a code or PIN: whole numbers only, not a timestamp fraction
                if re.search(rf"(?<![\d.]){value}(?!\d)", text):
                    found.append((value, what))
            elif value in text:
                found.append((value, what))
        return found

    def found_in(self, text: str) -> list[str]:
        # Name the kind and a prefix only: the failure message is a log too.
        return [f"{what} {value[:3]}..." for value, what in self.hits(text)]


class LogKeeper(logging.Handler):
    """Keeps every stdlib record and every rendered structlog event."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name} {self.format(record)}")
        except Exception as exc:  # keep going: a broken record is not a leak
            self.lines.append(f"unformattable record: {exc!r}")

    # structlog's logger interface: the rendered event, after every processor.
    def msg(self, message: str) -> None:
        self.lines.append(message)

    log = debug = info = warning = error = critical = exception = msg

    def factory(self, *_args: object) -> LogKeeper:
        return self


def _uncache_structlog_loggers() -> None:
    # Module-level structlog loggers cache the configuration of their first use
    # (cache_logger_on_first_use); an earlier test may have set WARNING. Drop
    # those caches so this run logs at DEBUG. Best effort: internals may change.
    proxy_type = type(structlog.get_logger())
    for obj in gc.get_objects():
        if type(obj) is proxy_type and "bind" in getattr(obj, "__dict__", {}):
            del obj.__dict__["bind"]


@pytest.fixture
def logged() -> Iterator[LogKeeper]:
    keeper = LogKeeper()
    keeper.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    configure_logging(fmt="json", level="DEBUG")
    # The processors stay those of production; only the output goes to the keeper.
    structlog.configure(logger_factory=keeper.factory)
    _uncache_structlog_loggers()
    root = logging.getLogger()
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "resim")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    for n in ("uvicorn", "uvicorn.access"):  # they do not propagate to the root
        logging.getLogger(n).addHandler(keeper)
    root.addHandler(keeper)
    # SQL statement logs are off in every deployment; at DEBUG they drown the run.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    try:
        yield keeper
    finally:
        root.removeHandler(keeper)
        for n in ("uvicorn", "uvicorn.access"):
            logging.getLogger(n).removeHandler(keeper)
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
        structlog.reset_defaults()


@pytest.fixture
def stack(tmp_path: Path, logged: LogKeeper) -> Iterator[DemoStack]:
    settings = Settings(data_dir=tmp_path, secret_keys=KEY, log_level="DEBUG")  # type: ignore[arg-type]
    started = start_demo(
        settings, api_port=0, smdp_port=0, smtp_port=0, lines_per_brand=4, say=lambda _l: None
    )
    yield started
    started.stop()


class Recorder:
    """An httpx client to resim that keeps every response."""

    def __init__(self, base_url: str) -> None:
        self.seen: list[Seen] = []
        self.http = httpx.Client(
            base_url=base_url, timeout=15, event_hooks={"response": [self._keep]}
        )

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen.append(
            Seen(
                response.request.method,
                response.request.url.path,
                response.status_code,
                headers + "\n" + response.text,
            )
        )

    def wait_state(self, rid: str, states: set[str], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            resp = self.http.get(f"/v1/requests/{rid}")
            if resp.status_code != 200:
                return f"http {resp.status_code}"
            state = resp.json().get("state", "?")
            if state in states:
                return str(state)
            time.sleep(0.1)
        return state


def latest_code(stack: DemoStack, email: str, *, nth: int = 1, timeout: float = 15) -> str | None:
    """The code of the ``nth`` one-time-code mail to ``email`` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [
            found.group(1)
            for mail in read_mailbox(stack.mail_dir)
            if email in mail.to
            and mail.kind == "one_time_code"
            and (found := CODE_RE.search(mail.text))
        ]
        if len(codes) >= nth:
            return codes[nth - 1]
        time.sleep(0.05)
    return None


def not_me_token(stack: DemoStack, email: str, timeout: float = 15) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in read_mailbox(stack.mail_dir):
            if email in mail.to and (found := NOT_ME_RE.search(mail.text)):
                return found.group(1)
        time.sleep(0.05)
    return None


def run_flows(stack: DemoStack, rec: Recorder) -> None:
    """Customer and agent flows over HTTP; tolerant of refusals added by access rules."""
    http = rec.http
    lines = stack.data.lines
    with_pin = [ln for ln in lines if ln.pin]
    without_pin = [ln for ln in lines[1:] if not ln.pin and not ln.msisdn.startswith("+45")]
    # 1. wrong code, wrong PIN, then the right ones; activation; install; cut-over.
    line = with_pin[1] if len(with_pin) > 1 else without_pin[0]
    created = http.post(
        "/v1/requests",
        json={"msisdn": line.msisdn, "reason": "damaged"},
        headers=stack.client_headers,  # anonymous callers get no request id (finding 15)
    )
    if created.status_code == 201:
        rid = created.json()["id"]
        code = latest_code(stack, line.email)
        http.post(f"/v1/requests/{rid}/verification", json={"otp": "000000", "pin": "9999"})
        if code:
            wrong_pin = {"otp": code, "pin": "1357"} if line.pin else {"otp": "111111"}
            http.post(f"/v1/requests/{rid}/verification", json=wrong_pin)
            if http.post(f"/v1/requests/{rid}/code").status_code < 400:  # a fresh code
                code = latest_code(stack, line.email, nth=2) or code
            body = {"otp": code, **({"pin": line.pin} if line.pin else {})}
            http.post(f"/v1/requests/{rid}/verification", json=body)
        state = rec.wait_state(rid, {"ready", "in_review", "failed", "cancelled"}, timeout=15)
        if state == "in_review":
            http.post(f"/v1/requests/{rid}/review", json={"reviewer": "r1", "decision": "approve"})
            state = rec.wait_state(rid, {"ready", "failed"})
        http.get(f"/v1/requests/{rid}")
        http.get(f"/status/{rid}")
        act = http.get(f"/v1/requests/{rid}/activation")
        if act.status_code == 200:
            httpx.post(
                f"{stack.emulator.url}/emulator/phone/install",
                json={"activation_code": act.json()["qr_payload"]},
                timeout=20,
            )
            rec.wait_state(rid, {"completed", "failed"})
            http.get(f"/v1/requests/{rid}/activation")  # used: an error now
        http.get(f"/v1/requests/{rid}")
    # 2. a cancel
    line = without_pin[1]
    created = http.post(
        "/v1/requests",
        json={"msisdn": line.msisdn, "reason": "lost"},
        headers=stack.client_headers,  # anonymous callers get no request id (finding 15)
    )
    if created.status_code == 201:
        rid = created.json()["id"]
        http.post(f"/v1/requests/{rid}/cancel", json={})
        http.get(f"/v1/requests/{rid}")
    # 3. "this was not me"
    line = without_pin[2]
    created = http.post(
        "/v1/requests",
        json={"msisdn": line.msisdn, "reason": "stolen"},
        headers=stack.client_headers,  # anonymous callers get no request id (finding 15)
    )
    if created.status_code == 201:
        token = not_me_token(stack, line.email)
        if token:
            http.get(f"/not-me/{token}")
            http.post(f"/not-me/{token}")
            http.post(f"/not-me/{token}")  # a second use: refused
    # 4. bad input carrying secret-looking values
    http.post("/v1/requests/nope/verification", json={"otp": "918273", "pin": "12x"})
    http.post("/v1/requests", json={"msisdn": "+4520", "reason": "lost", "pin": "2468"})
    http.get("/v1/requests")
    http.get("/v1/sim-changes")


def collect_secrets(stack: DemoStack, rec: Recorder, secrets: Secrets) -> None:
    for mail in read_mailbox(stack.mail_dir):
        if mail.kind == "one_time_code":
            for code in CODE_RE.findall(mail.text):
                secrets.add("one-time code", code)
        for token in NOT_ME_RE.findall(mail.text + (mail.html or "")):
            secrets.add("not-me token", token)
    for line in stack.data.lines:
        secrets.add("PIN", line.pin)
    loaded = load_secrets(stack.settings)
    secrets.add("secret key", KEY)
    secrets.add("callback token", loaded.callback_token)
    secrets.add("OTP pepper", loaded.otp_pepper.hex())
    secrets.add("SIM Ki", KI)
    secrets.add("SIM OPc", OPC)
    ctx = build_context(stack.settings)
    with ctx.uow() as uow:
        r = orm.replacement_request
        for enc, mid in uow.session.execute(sa.select(r.c.activation_code_enc, r.c.matching_id)):
            secrets.add("matching id", mid)
            if enc:
                text = ctx.secrets.decrypt(enc)
                secrets.add("activation code", text)
                secrets.add("matching id", parse_activation_code(text).matching_id)
    for seen in rec.seen:  # anything a response hands out as a credential
        try:
            data = json.loads(seen.text[seen.text.index("{") :]) if "{" in seen.text else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            if seen.path.endswith("/activation"):
                secrets.add("activation code", data.get("activation_code"))
                secrets.add("matching id", data.get("matching_id"))
            for k, v in data.items():
                if isinstance(v, str) and is_sensitive_key(k) and k != "code":
                    secrets.add(f"credential {k}", v)


def allowed_to_carry(seen: Seen, secret_kind: str) -> bool:
    """The responses that exist to hand a secret to the party that asked for it."""
    if seen.status >= 400:
        return False
    if secret_kind in ("activation code", "matching id"):
        return "/activation" in seen.path
    if secret_kind == "not-me token":
        return seen.path.startswith("/not-me/")
    return secret_kind.startswith("credential")  # the response that issued it


def test_no_secret_leaks_anywhere(stack: DemoStack, logged: LogKeeper) -> None:
    ctx = build_context(stack.settings)
    keyed = iccid_with_check_digit("894501990000000001")
    seed.add_stock(
        ctx,
        brand_id=stack.data.lines[0].brand_id,
        profile_type="keyed-test",
        profiles=[(keyed, "238019900000001")],
        keys={keyed: (KI, OPC)},
    )
    # CAMARA: the demo bank subscribes to the walkthrough's line (its sink token is a secret)
    assert stack.sink is not None
    subscribed = httpx.post(
        f"{stack.api.url}/sim-swap-subscriptions/v0.3/subscriptions",
        json=demo_subscription(stack.sink.url, stack.data.lines[0].msisdn),
        headers={"Authorization": f"Bearer {stack.subscriptions_token}"},
        timeout=10,
    )
    assert subscribed.status_code == 201, subscribed.text
    done = walkthrough(stack, say=lambda _line: None)
    assert done["state"] == "completed"
    assert stack.sink.wait_for(1, timeout=30), "the swapped event was not delivered"
    rec = Recorder(stack.api.url)
    rec.seen.append(
        Seen("POST", "/sim-swap-subscriptions/v0.3/subscriptions", 201, subscribed.text)
    )
    try:
        run_flows(stack, rec)
    finally:
        rec.http.close()
    time.sleep(0.5)  # let the worker send the last notices

    # the operator's tools print nothing secret either
    env = {
        "RESIM_DATABASE_URL": stack.settings.effective_database_url,
        "RESIM_DATA_DIR": str(stack.settings.data_dir),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "DEBUG",
    }
    outputs = []
    for args in (
        ["requests", "list"],
        ["requests", "show", str(done["id"])],
        ["audit", "export", "--from", "2000-01-01", "--to", "2100-01-01"],
        ["audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "csv"],
        ["audit", "report", "--from", "2000-01-01", "--to", "2100-01-01", "--json"],
        ["audit", "verify"],
    ):
        result = CliRunner().invoke(cli_app, args, env=env)
        outputs.append(" ".join(args) + "\n" + result.output)
        assert result.exit_code == 0, result.output

    secrets = Secrets()
    collect_secrets(stack, rec, secrets)
    secrets.add("CAMARA sink token", DEMO_SINK_TOKEN)
    kinds = set(secrets.values.values())
    assert {"one-time code", "activation code", "matching id", "not-me token"} <= kinds, kinds

    logs = "\n".join(logged.lines)
    assert len(logs) > 1000, "logging was not captured"
    problems = [f"log: {hit}" for hit in secrets.found_in(logs)]
    for out in outputs:
        problems += [f"CLI {out.splitlines()[0]}: {hit}" for hit in secrets.found_in(out)]
    assert len(rec.seen) > 10
    for seen in rec.seen:
        for _value, kind in secrets.hits(seen.text):
            if not allowed_to_carry(seen, kind):
                problems.append(f"{seen.method} {seen.path} -> {seen.status}: {kind}")
    with ctx.uow() as uow:
        jobs = uow.session.execute(sa.select(orm.job.c.kind, orm.job.c.payload)).all()
        audit = uow.session.execute(sa.select(orm.audit_event.c.detail)).all()
    for kind, payload in jobs:
        problems += [f"job {kind}: {hit}" for hit in secrets.found_in(json.dumps(payload))]
    with ctx.uow() as uow:
        events = uow.session.execute(
            sa.select(orm.camara_event.c.payload, orm.camara_event.c.last_error)
        ).all()
        stored = uow.session.execute(sa.text("SELECT * FROM camara_subscription")).all()
    for payload, error in events:
        problems += [f"camara event: {hit}" for hit in secrets.found_in(json.dumps(payload))]
        problems += [f"camara event error: {hit}" for hit in secrets.found_in(error or "")]
    problems += [f"camara subscription row: {hit}" for hit in secrets.found_in(repr(stored))]
    for (detail,) in audit:
        problems += [f"audit detail: {hit}" for hit in secrets.found_in(json.dumps(detail))]
    assert not problems, "secrets leaked:\n" + "\n".join(sorted(set(problems)))
