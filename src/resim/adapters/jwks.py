"""Where the CAMARA token verifier finds the authorization server's public keys.

``KeySource`` is the port; two implementations:

* :class:`HttpJwksSource`: the operator's JWKS over HTTPS, fetched on first
  use and cached; an unknown ``kid`` triggers one re-fetch (key rotation at the
  authorization server), at most once per ``min_refresh_seconds`` so a caller
  sending made-up kids cannot make resim hammer the JWKS endpoint.
* :class:`StaticJwksSource`: a fixed JWKS (resim's own issuer, tests).

Errors: :class:`KeySourceUnavailable` when the JWKS cannot be fetched or
parsed (the caller answers 503: it cannot tell a good token from a bad one).
Keys other than RSA and EC P-256 signing keys are ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt


class KeySourceUnavailable(Exception):
    """The JWKS could not be fetched or read."""


@dataclass(frozen=True)
class SigningKey:
    """A public key from a JWKS; ``alg`` is the algorithm the JWKS pins it to, if any."""

    key: Any
    alg: str | None


class KeySource(Protocol):
    def find(self, kid: str | None, *, refresh: bool) -> SigningKey | None:
        """The key named ``kid`` (``None``: the only key, if there is exactly one).

        ``refresh``: the key was not found before; the source may re-fetch.
        """
        ...


def parse_jwks(document: Mapping[str, Any]) -> dict[str | None, SigningKey]:
    keys: dict[str | None, SigningKey] = {}
    raw = document.get("keys")
    if not isinstance(raw, list):
        raise KeySourceUnavailable("the JWKS has no keys list")
    for entry in raw:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue  # an algorithm or curve we do not accept
        alg = entry.get("alg")
        keys[entry.get("kid")] = SigningKey(key.key, alg if isinstance(alg, str) else None)
    return keys


def _pick(keys: Mapping[str | None, SigningKey], kid: str | None) -> SigningKey | None:
    if kid is not None:
        return keys.get(kid)
    return next(iter(keys.values())) if len(keys) == 1 else None


class StaticJwksSource:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(document)

    def find(self, kid: str | None, *, refresh: bool) -> SigningKey | None:
        return _pick(self._keys, kid)


class HttpJwksSource:
    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        min_refresh_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client or httpx.Client(timeout=5.0)
        self._min_refresh = min_refresh_seconds
        self._monotonic = monotonic
        self._keys: dict[str | None, SigningKey] | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the JWKS was fetched (tests, metrics)

    def find(self, kid: str | None, *, refresh: bool) -> SigningKey | None:
        keys = self._keys
        if keys is None or (refresh and self._may_refresh()):
            keys = self._fetch(force=keys is not None)
        return _pick(keys, kid)

    def _may_refresh(self) -> bool:
        return self._monotonic() - self._fetched_at >= self._min_refresh

    def _fetch(self, *, force: bool) -> dict[str | None, SigningKey]:
        with self._lock:  # one fetch at a time; the others use its result
            if self._keys is not None and not (force and self._may_refresh()):
                return self._keys
            try:
                response = self._client.get(self._url, headers={"accept": "application/json"})
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise KeySourceUnavailable(
                    f"JWKS at {self._url} unavailable: {type(exc).__name__}"
                ) from None
            if not isinstance(document, dict):
                raise KeySourceUnavailable("the JWKS is not a JSON object")
            self._keys = parse_jwks(document)
            self._fetched_at = self._monotonic()
            self.fetches += 1
            return self._keys
