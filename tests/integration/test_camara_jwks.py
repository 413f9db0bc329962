"""The operator's JWKS fetched over real HTTP from a loopback server: first use,
key rotation (unknown kid: one re-fetch), refresh limits, and an unreachable JWKS."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from resim.adapters.jwks import HttpJwksSource
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.entrypoints.camara.errors import CamaraError
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier
from resim.entrypoints.serving import ServerThread
from resim.services.context import FrozenClock

pytestmark = pytest.mark.integration

ISS, AUD = "https://as.operator.test", "https://api.operator.test"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def jwks_server(document: dict[str, Any]) -> tuple[ServerThread, list[int]]:
    app = FastAPI()
    hits: list[int] = []

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        hits.append(1)
        return document

    return ServerThread(app).start(), hits


def test_keys_are_fetched_once_and_refetched_for_a_rotated_kid() -> None:
    old = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
    new = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
    document: dict[str, Any] = {"keys": old.jwks()["keys"]}
    server, hits = jwks_server(document)
    now = [0.0]
    try:
        source = HttpJwksSource(
            f"{server.url}/jwks", min_refresh_seconds=10, monotonic=lambda: now[0]
        )
        verifier = TokenVerifier(
            TokenRules(issuer=ISS, audience=AUD), source, clock=FrozenClock(NOW)
        )
        assert hits == []  # nothing fetched before the first token
        for _ in range(3):
            token = old.issue(scopes=["sim-swap"], client_id="b", now=NOW)
            assert verifier.verify(token).client_id == "b"
        assert len(hits) == 1

        # the authorization server rotates: the new kid is unknown until a re-fetch
        document["keys"] = old.jwks()["keys"] + new.jwks()["keys"]
        now[0] = 11.0
        rotated = new.issue(scopes=["sim-swap"], client_id="b2", now=NOW)
        assert verifier.verify(rotated).client_id == "b2"
        assert len(hits) == 2

        # made-up kids cannot make resim hammer the JWKS: one re-fetch per 10 s
        stranger = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
        for _ in range(5):
            with pytest.raises(CamaraError) as caught:
                verifier.verify(stranger.issue(scopes=["sim-swap"], client_id="x", now=NOW))
            assert caught.value.status == 401
        assert len(hits) == 2
        now[0] = 22.0
        with pytest.raises(CamaraError):
            verifier.verify(stranger.issue(scopes=["sim-swap"], client_id="x", now=NOW))
        assert len(hits) == 3
    finally:
        server.stop()


def test_an_unreachable_jwks_is_503_not_401() -> None:
    issuer = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
    server, _ = jwks_server({"keys": []})
    url = f"{server.url}/jwks"
    server.stop()  # nobody listens any more
    source = HttpJwksSource(url, client=httpx.Client(timeout=2))
    verifier = TokenVerifier(TokenRules(issuer=ISS, audience=AUD), source, clock=FrozenClock(NOW))
    with pytest.raises(CamaraError) as caught:
        verifier.verify(issuer.issue(scopes=["sim-swap"], client_id="b", now=NOW))
    assert (caught.value.status, caught.value.code) == (503, "UNAVAILABLE")


def test_resim_token_issue_prints_a_token_the_api_accepts(tmp_path: Any) -> None:
    """The CLI signs with the API's key file (same RESIM_DATA_DIR and base URL)."""
    from typer.testing import CliRunner

    from resim.adapters.jwks import StaticJwksSource
    from resim.entrypoints.cli import app

    env = {"RESIM_DATA_DIR": str(tmp_path), "RESIM_PUBLIC_BASE_URL": "https://api.resim.test"}
    argv = ["token", "issue", "--scope", "sim-swap:check", "--phone", "+4520123456"]
    result = CliRunner().invoke(app, [*argv, "--client", "bank-9", "--ttl", "600"], env=env)
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    issuer = LocalTokenIssuer.from_file(
        tmp_path / "camara-issuer-key.pem",
        issuer="https://api.resim.test",
        audience="https://api.resim.test",
    )
    verifier = TokenVerifier(
        TokenRules(issuer="https://api.resim.test", audience="https://api.resim.test"),
        StaticJwksSource(issuer.jwks()),
        clock=FrozenClock(dt.datetime.now(dt.UTC)),
    )
    caller = verifier.verify(token)
    assert (caller.client_id, caller.phone_number) == ("bank-9", "+4520123456")
    assert caller.scopes == {"sim-swap:check"}
    bad = CliRunner().invoke(app, ["token", "issue", "--scope", "x", "--phone", "123"], env=env)
    assert bad.exit_code == 2
    external = CliRunner().invoke(
        app, ["token", "issue", "--scope", "x"], env={**env, "RESIM_CAMARA_JWKS_URL": "https://as"}
    )
    assert external.exit_code == 2 and "authorization server" in external.output
