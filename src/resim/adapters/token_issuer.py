"""resim's own small OAuth access-token issuer, for the demo and tests.

It signs CAMARA access tokens (JWT, ES256, EC P-256) with a key kept in a
PEM file under the data directory (created on first use, mode 0600, first
writer wins when two processes start at once). The key id is the key's
RFC 7638 thumbprint. The public half is served as a JWKS at
``/.well-known/jwks.json`` so a verifier (resim's, or anyone's) can check the
tokens the same way it checks the operator's authorization server's tokens.

It is not an authorization server: no client authentication, no consent. In
production the operator's authorization server issues tokens and resim only
verifies them (``RESIM_CAMARA_JWKS_URL``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


class LocalTokenIssuer:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey, *, issuer: str, audience: str):
        self._key = private_key
        self.issuer = issuer
        self.audience = audience
        public = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
        self.kid = _thumbprint(public)
        self._public_jwk = {**public, "kid": self.kid, "use": "sig", "alg": "ES256"}

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, audience: str) -> LocalTokenIssuer:
        """Load the key at ``path``; create it first if absent."""
        if not path.exists():
            _create_key_file(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return cls(key, issuer=issuer, audience=audience)

    @classmethod
    def generate(cls, *, issuer: str, audience: str) -> LocalTokenIssuer:
        """A throw-away issuer (tests)."""
        return cls(ec.generate_private_key(ec.SECP256R1()), issuer=issuer, audience=audience)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def issue(
        self,
        *,
        scopes: Iterable[str],
        client_id: str,
        now: dt.datetime,
        ttl_seconds: int = 3600,
        phone_number: str | None = None,
        purpose: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed access token. ``phone_number`` makes it 3-legged (bound to the number)."""
        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": iat,
            "nbf": iat,
            "exp": iat + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "azp": client_id,
            "sub": client_id,
            "scope": " ".join(dict.fromkeys(scopes)),
        }
        if phone_number is not None:
            claims["sub"] = f"tel:{phone_number}"
            claims["phone_number"] = phone_number
        if purpose is not None:
            claims["purpose"] = purpose
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})


def _thumbprint(public: dict[str, Any]) -> str:
    canonical = json.dumps(
        {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # first writer wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
