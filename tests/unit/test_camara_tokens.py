"""CAMARA access tokens: what the verifier accepts and refuses (no I/O).

Tokens are minted by resim's own issuer or, for the attacks, by hand with
PyJWT; time is a FrozenClock.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from resim.adapters.jwks import StaticJwksSource
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.entrypoints.camara.errors import CamaraError
from resim.entrypoints.camara.ratelimit import RateLimiter
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier, parse_scopes
from resim.services.context import FrozenClock

ISS, AUD = "https://as.example.test", "https://api.example.test"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def issuer() -> LocalTokenIssuer:
    return LocalTokenIssuer.generate(issuer=ISS, audience=AUD)


def verifier_for(issuer: LocalTokenIssuer, clock: FrozenClock, **rules: Any) -> TokenVerifier:
    return TokenVerifier(
        TokenRules(issuer=ISS, audience=AUD, **rules), StaticJwksSource(issuer.jwks()), clock=clock
    )


def refused(verifier: TokenVerifier, token: str, why: str) -> CamaraError:
    with pytest.raises(CamaraError) as caught:
        verifier.verify(token)
    err = caught.value
    assert (err.status, err.code) == (401, "UNAUTHENTICATED")
    assert why in err.message, err.message
    assert token not in err.message and token[-20:] not in err.message
    return err


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestAValidToken:
    def test_two_legged_names_the_client_and_its_scopes(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(scopes=["sim-swap:check", "sim-swap"], client_id="bank-1", now=NOW)
        caller = verifier_for(issuer, clock).verify(token)
        assert caller.client_id == "bank-1"
        assert caller.scopes == {"sim-swap:check", "sim-swap"}
        assert caller.phone_number is None and not caller.three_legged

    def test_three_legged_is_bound_to_its_number(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(
            scopes=["sim-swap"], client_id="bank-1", now=NOW, phone_number="+4520123456"
        )
        caller = verifier_for(issuer, clock).verify(token)
        assert caller.phone_number == "+4520123456" and caller.three_legged

    def test_a_tel_subject_is_three_legged_too(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(
            scopes=["sim-swap"], client_id="b", now=NOW, extra={"sub": "tel:+393201234567"}
        )
        assert verifier_for(issuer, clock).verify(token).phone_number == "+393201234567"

    def test_a_malformed_bound_number_is_refused(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(
            scopes=["sim-swap"], client_id="b", now=NOW, extra={"phone_number": "4520123456"}
        )
        refused(verifier_for(issuer, clock), token, "E.164")

    def test_the_purpose_comes_from_the_claim_or_the_dpv_scope(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        verifier = verifier_for(issuer, clock)
        claimed = issuer.issue(
            scopes=["sim-swap"], client_id="b", now=NOW, purpose="dpv:FraudPreventionAndDetection"
        )
        assert verifier.verify(claimed).purpose == "dpv:FraudPreventionAndDetection"
        scoped = issuer.issue(
            scopes=["dpv:FraudPreventionAndDetection#sim-swap:check"], client_id="b", now=NOW
        )
        caller = verifier.verify(scoped)
        assert caller.purpose == "dpv:FraudPreventionAndDetection"
        assert caller.scopes == {"sim-swap:check"}

    def test_scp_lists_are_read(self) -> None:
        assert parse_scopes({"scp": ["a", "b"]}) == (frozenset({"a", "b"}), None)
        assert parse_scopes({"scope": "a  b"}) == (frozenset({"a", "b"}), None)
        assert parse_scopes({"scope": 7}) == (frozenset(), None)

    def test_a_verified_token_is_served_from_the_cache_until_it_expires(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        verifier = verifier_for(issuer, clock, leeway_seconds=0)
        token = issuer.issue(scopes=["sim-swap"], client_id="b", now=NOW, ttl_seconds=60)
        assert verifier.cached(token) is None
        caller = verifier.verify(token)
        assert verifier.cached(token) is caller
        clock.advance(dt.timedelta(seconds=61))
        assert verifier.cached(token) is None
        refused(verifier, token, "expired")


class TestTimeClaims:
    def test_expired_beyond_the_leeway_is_refused(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(scopes=["sim-swap"], client_id="b", now=NOW, ttl_seconds=60)
        clock.advance(dt.timedelta(seconds=60 + 29))
        assert verifier_for(issuer, clock).verify(token).client_id == "b"  # within 30 s leeway
        clock.advance(dt.timedelta(seconds=2))
        refused(verifier_for(issuer, clock), token, "expired")

    def test_not_yet_valid_is_refused(self, issuer: LocalTokenIssuer, clock: FrozenClock) -> None:
        token = issuer.issue(scopes=["sim-swap"], client_id="b", now=NOW + dt.timedelta(minutes=5))
        refused(verifier_for(issuer, clock), token, "not valid yet")

    def test_a_token_without_exp_is_refused(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        key = issuer._key
        token = jwt.encode(
            {"iss": ISS, "aud": AUD, "client_id": "b", "scope": "sim-swap"},
            key,
            algorithm="ES256",
            headers={"kid": issuer.kid},
        )
        refused(verifier_for(issuer, clock), token, "no exp")


class TestWhoSignedIt:
    def test_wrong_issuer(self, clock: FrozenClock) -> None:
        other = LocalTokenIssuer.generate(issuer="https://evil.test", audience=AUD)
        token = other.issue(scopes=["sim-swap"], client_id="b", now=NOW)
        verifier = TokenVerifier(
            TokenRules(issuer=ISS, audience=AUD), StaticJwksSource(other.jwks()), clock=clock
        )
        refused(verifier, token, "issuer")

    def test_wrong_audience(self, issuer: LocalTokenIssuer, clock: FrozenClock) -> None:
        token = issuer.issue(
            scopes=["sim-swap"], client_id="b", now=NOW, extra={"aud": "https://other.test"}
        )
        refused(verifier_for(issuer, clock), token, "audience")

    def test_bad_signature(self, issuer: LocalTokenIssuer, clock: FrozenClock) -> None:
        impostor = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
        forged = jwt.encode(
            {"iss": ISS, "aud": AUD, "exp": 2_000_000_000, "client_id": "b", "scope": "sim-swap"},
            impostor._key,
            algorithm="ES256",
            headers={"kid": issuer.kid},  # claims to be the real key
        )
        refused(verifier_for(issuer, clock), forged, "signature")
        good = issuer.issue(scopes=["sim-swap"], client_id="b", now=NOW)
        head, _body, sig = good.split(".")
        claims = jwt.decode(good, options={"verify_signature": False})
        tampered = f"{head}.{b64({**claims, 'client_id': 'x'})}.{sig}"
        refused(verifier_for(issuer, clock), tampered, "signature")

    def test_alg_none_is_refused(self, issuer: LocalTokenIssuer, clock: FrozenClock) -> None:
        claims = {"iss": ISS, "aud": AUD, "exp": 2_000_000_000, "client_id": "b", "scope": "x"}
        token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{b64(claims)}."
        refused(verifier_for(issuer, clock), token, "algorithm")

    def test_hs256_with_the_public_key_as_secret_is_refused(self, clock: FrozenClock) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        jwks = {"keys": [{**public_jwk, "kid": "rsa-1", "use": "sig"}]}
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
        claims = b64({"iss": ISS, "aud": AUD, "exp": 2_000_000_000, "client_id": "b"})
        signature = hmac.new(pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        token = f"{header}.{claims}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        verifier = TokenVerifier(
            TokenRules(issuer=ISS, audience=AUD), StaticJwksSource(jwks), clock=clock
        )
        refused(verifier, token, "algorithm")
        # ... while the same RSA key signing with RS256 or PS256 is accepted
        for alg in ("RS256", "PS256"):
            ok = jwt.encode(
                {"iss": ISS, "aud": AUD, "exp": 2_000_000_000, "client_id": "b"},
                private,
                algorithm=alg,
                headers={"kid": "rsa-1"},
            )
            assert verifier.verify(ok).client_id == "b"

    def test_an_unknown_kid_is_refused(self, issuer: LocalTokenIssuer, clock: FrozenClock) -> None:
        stranger = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
        token = stranger.issue(scopes=["sim-swap"], client_id="b", now=NOW)
        refused(verifier_for(issuer, clock), token, "unknown key")

    def test_a_token_without_client_is_refused(
        self, issuer: LocalTokenIssuer, clock: FrozenClock
    ) -> None:
        token = issuer.issue(
            scopes=["sim-swap"], client_id="b", now=NOW, extra={"client_id": "", "azp": None}
        )
        refused(verifier_for(issuer, clock), token, "no client")

    @pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 9000, "e30.e30.e30"])
    def test_garbage_is_refused(
        self, issuer: LocalTokenIssuer, clock: FrozenClock, garbage: str
    ) -> None:
        with pytest.raises(CamaraError) as caught:
            verifier_for(issuer, clock).verify(garbage)
        assert caught.value.status == 401


class TestIssuerKeyFile:
    def test_the_key_is_created_once_and_kept(self, tmp_path: Any) -> None:
        path = tmp_path / "k.pem"
        first = LocalTokenIssuer.from_file(path, issuer=ISS, audience=AUD)
        second = LocalTokenIssuer.from_file(path, issuer=ISS, audience=AUD)
        assert first.kid == second.kid
        assert path.stat().st_mode & 0o777 == 0o600
        assert isinstance(
            serialization.load_pem_private_key(path.read_bytes(), None), ec.EllipticCurvePrivateKey
        )


class TestRateLimiter:
    def test_a_burst_then_refill_per_client(self) -> None:
        now = [0.0]
        limiter = RateLimiter(rate=2.0, burst=3, monotonic=lambda: now[0])
        assert [limiter.take("a") for _ in range(3)] == [None, None, None]
        wait = limiter.take("a")
        assert wait is not None and wait == pytest.approx(0.5)
        assert limiter.take("b") is None  # another client has its own bucket
        now[0] += 0.5
        assert limiter.take("a") is None
        assert limiter.take("a") is not None

    def test_rate_zero_disables(self) -> None:
        limiter = RateLimiter(rate=0, burst=1)
        assert all(limiter.take("a") is None for _ in range(100))
