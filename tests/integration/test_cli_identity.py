"""``resim staff`` and ``resim clients`` through Typer's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from resim.bootstrap import build_context
from resim.entrypoints.cli import app
from resim.errors import Unauthenticated
from resim.services.access import sessions, staff
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
PASSWORD = "a long staff password"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "WARNING",
    }
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def test_staff_add_prints_the_totp_uri_once_and_the_account_signs_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out = run(
        env,
        "staff", "add", "--username", "rita", "--role", "reviewer",
        "--display-name", "Rita R", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, out
    uri = re.search(r"(otpauth://\S+)", out)
    assert uri and PASSWORD not in out
    seed = pyotp.parse_uri(uri.group(1)).secret
    code, listed = run(env, "staff", "list")
    assert code == 0 and "rita" in listed and "reviewer" in listed and seed not in listed
    settings = Settings(database_url=env["RESIM_DATABASE_URL"], data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    ctx = build_context(settings)
    signed_in = staff.login(
        ctx, username="rita", password=PASSWORD, totp_code=pyotp.TOTP(seed).now()
    )
    assert run(env, "staff", "disable", "rita")[0] == 0
    with pytest.raises(Unauthenticated):
        sessions.resolve_bearer(ctx, signed_in.session.token)
    code, out = run(
        env, "staff", "add", "--username", "x", "--role", "god", "--display-name", "X",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 1 and "INVALID" in out


def test_clients_add_prints_the_key_once_list_hides_it_revoke_ends_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out = run(
        env, "clients", "add", "--name", "BSS", "--scope", "requests:read",
        "--scope", "requests:write",
    )  # fmt: skip
    assert code == 0, out
    key = re.search(r"(rsk_\S+)", out)
    assert key
    client_id = key.group(1).split("_")[1]
    code, listed = run(env, "clients", "list")
    assert code == 0 and client_id in listed and key.group(1) not in listed
    assert "requests:read requests:write" in listed
    settings = Settings(database_url=env["RESIM_DATABASE_URL"], data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    ctx = build_context(settings)
    assert sessions.resolve_bearer(ctx, key.group(1)).scopes == {"requests:read", "requests:write"}
    assert run(env, "clients", "revoke", client_id)[0] == 0
    with pytest.raises(Unauthenticated):
        sessions.resolve_bearer(ctx, key.group(1))
    code, out = run(env, "clients", "add", "--name", "X", "--scope", "root")
    assert code == 1 and "INVALID_SCOPE" in out
