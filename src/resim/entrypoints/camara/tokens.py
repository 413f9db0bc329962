"""Verifying CAMARA access tokens (JWT) from the operator's authorization server.

Contract of :meth:`TokenVerifier.verify` (each failure: 401 UNAUTHENTICATED
with a message naming the defect, never the token):

1. the header's ``alg`` is on the allow-list (RS256, ES256, PS256 by default;
   never ``none`` nor an HMAC algorithm, so a public key cannot be used as an
   HMAC secret);
2. the signing key is found in the JWKS by ``kid`` (an unknown kid re-fetches
   the JWKS once, see :class:`~resim.adapters.jwks.HttpJwksSource`) and the
   signature verifies;
3. ``iss`` equals the configured issuer and ``aud`` names the configured
   audience;
4. ``exp`` is present and not passed, ``nbf`` (if present) reached, both with
   ``leeway_seconds``, measured by the injected Clock;
5. the relying party is named by ``client_id`` (RFC 9068) or ``azp``.

Claim mapping (docs/camara.md):

* scopes: ``scope`` (space separated) or ``scp`` (list or string). A scope
  ``dpv:<Purpose>#<scope>`` (the ICM purpose-in-scope form) grants ``<scope>``
  and sets the purpose; a bare ``dpv:<Purpose>`` scope sets the purpose.
* purpose: the ``purpose`` claim if present, else from the scopes as above.
* 3-legged: the token names a subscriber by ``phone_number`` (E.164), or by a
  ``sub`` of the form ``tel:+<E.164>``. Any other ``sub`` is the client
  (2-legged, client credentials). A malformed ``phone_number`` is 401.

Verified tokens are cached by SHA-256 of the token until they expire, so the
hot path does one dictionary look-up instead of a signature check. The cache
holds no token, only its hash and the resulting :class:`CamaraCaller`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

import jwt

from resim.adapters.jwks import KeySource, KeySourceUnavailable
from resim.entrypoints.camara.auth import CamaraCaller
from resim.entrypoints.camara.errors import CamaraError
from resim.services.ports import Clock

ALGORITHMS = frozenset({"RS256", "ES256", "PS256"})
E164 = re.compile(r"\+[1-9][0-9]{4,14}")
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class TokenRules:
    issuer: str
    audience: str
    leeway_seconds: float = 30.0
    algorithms: frozenset[str] = ALGORITHMS


def _unauthenticated(why: str) -> CamaraError:
    return CamaraError.generic(
        401, f"Request not authenticated: {why}. A new authentication is required."
    )


def parse_scopes(claims: dict[str, Any]) -> tuple[frozenset[str], str | None]:
    """(scopes, purpose found in the scopes) from ``scope`` or ``scp``."""
    raw: Any = claims.get("scope", claims.get("scp", ""))
    items: Iterable[Any] = raw.split() if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        items = []
    scopes: set[str] = set()
    purpose: str | None = None
    for item in items:
        if not isinstance(item, str):
            continue
        if item.startswith("dpv:"):
            named, _, granted = item.partition("#")
            purpose = purpose or named
            if granted:
                scopes.add(granted)
            continue
        scopes.add(item)
    return frozenset(scopes), purpose


def caller_from_claims(claims: dict[str, Any]) -> CamaraCaller:
    client_id = claims.get("client_id") or claims.get("azp")
    if not isinstance(client_id, str) or not client_id:
        raise _unauthenticated("the access token names no client (client_id or azp)")
    scopes, scope_purpose = parse_scopes(claims)
    purpose = claims.get("purpose")
    if not isinstance(purpose, str) or not purpose:
        purpose = scope_purpose
    sub = claims.get("sub")
    subject = sub if isinstance(sub, str) else None
    phone = claims.get("phone_number")
    if phone is None and subject is not None and subject.startswith("tel:"):
        phone = subject.removeprefix("tel:")
    if phone is not None and (not isinstance(phone, str) or not E164.fullmatch(phone)):
        raise _unauthenticated("the access token names a subscriber that is not an E.164 number")
    return CamaraCaller(
        client_id=client_id,
        scopes=scopes,
        purpose=purpose,
        phone_number=phone,
        subject=subject,
    )


class TokenVerifier:
    def __init__(
        self, rules: TokenRules, keys: KeySource, *, clock: Clock, cache_size: int = 50_000
    ) -> None:
        self.rules = rules
        self._keys = keys
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[bytes, tuple[CamaraCaller, float, float]] = {}

    def cached(self, token: str) -> CamaraCaller | None:
        """The caller of a token verified before and still in its validity window."""
        entry = self._cache.get(hashlib.sha256(token.encode()).digest())
        if entry is None:
            return None
        caller, nbf, exp = entry
        now = self._clock.now().timestamp()
        leeway = self.rules.leeway_seconds
        if now > exp + leeway or now + leeway < nbf:
            return None  # verify() says why
        return caller

    def verify(self, token: str) -> CamaraCaller:
        """See the module docstring. Raises CamaraError (401, or 503 without keys)."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise _unauthenticated("the access token is not a signed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthenticated("the access token is not a signed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.rules.algorithms:
            raise _unauthenticated("the access token's signing algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _unauthenticated("the access token's key id is malformed")
        try:
            key = self._keys.find(kid, refresh=False) or self._keys.find(kid, refresh=True)
        except KeySourceUnavailable:
            raise CamaraError.generic(
                503, "The authorization server's signing keys are unavailable; retry later."
            ) from None
        if key is None:
            raise _unauthenticated("the access token is signed with an unknown key")
        if key.alg not in (None, alg):  # the JWKS pins the key to another algorithm
            raise _unauthenticated("the access token's algorithm does not match its key")
        claims = self._decode(token, key.key, alg)
        raw_exp, raw_nbf = claims.get("exp"), claims.get("nbf", 0)
        if not _number(raw_exp) or not _number(raw_nbf):
            raise _unauthenticated("the access token's exp or nbf is not a number")
        exp, nbf = float(raw_exp), float(raw_nbf)
        now = self._clock.now().timestamp()
        if now > exp + self.rules.leeway_seconds:
            raise _unauthenticated("the access token has expired")
        if now + self.rules.leeway_seconds < nbf:
            raise _unauthenticated("the access token is not valid yet")
        caller = caller_from_claims(claims)
        self._remember(token, caller, nbf, exp)
        return caller

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.rules.audience,
                issuer=self.rules.issuer,
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,  # checked against the injected Clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise _unauthenticated("the access token's signature is not valid") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated("the access token is not for this API (audience)") from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("the access token is from an unknown issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthenticated(f"the access token has no {exc.claim} claim") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _unauthenticated("the access token is not valid") from None
        return claims

    def _remember(self, token: str, caller: CamaraCaller, nbf: float, exp: float) -> None:
        if len(self._cache) >= self._cache_size:
            now = self._clock.now().timestamp()
            for digest, (_c, _n, until) in list(self._cache.items()):
                if until + self.rules.leeway_seconds < now:
                    self._cache.pop(digest, None)
            if len(self._cache) >= self._cache_size:
                for digest in list(self._cache)[: self._cache_size // 2]:  # oldest first
                    self._cache.pop(digest, None)
        self._cache[hashlib.sha256(token.encode()).digest()] = (caller, nbf, exp)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
