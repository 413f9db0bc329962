"""Secrets at rest and hashes of things people type (SEC-03, SEC-10, SEC-11).

* :class:`SecretBox` encrypts values that resim must read back (activation
  codes now; SIM keys and personal data later) with Fernet (AES-128-CBC plus
  HMAC-SHA256, authenticated). Several keys allow rotation: the first encrypts,
  all decrypt, :meth:`SecretBox.rotate` re-encrypts under the first. A Fernet
  token shows when it was made (its timestamp is not encrypted), not what it holds.
* :func:`hash_otp` / :func:`verify_otp`: one-time codes live for minutes and are
  checked often, so a keyed HMAC-SHA256 with a pepper from settings is enough
  and fast; without the pepper a stolen table does not reveal codes.
* :func:`hash_secret` / :func:`verify_secret`: PINs and passwords live for years,
  so they get argon2id (memory-hard, salted, slow on purpose).

Nothing here logs, and no error message carries a key, a token or a plaintext.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from resim.errors import InvalidInput, ResimError

OTP_HASH_PREFIX = "hmac-sha256$"
MIN_PEPPER_BYTES = 16


class SecretUnreadable(ResimError):
    """A stored secret cannot be decrypted: wrong or retired key, or damaged data."""

    code = "SECRET_UNREADABLE"


class SecretBox:
    """Authenticated encryption of short strings with rotating Fernet keys.

    ``keys`` are url-safe base64 Fernet keys (:meth:`generate_key`); the first
    encrypts, every one decrypts. Instances hold no mutable state and are safe
    to share between threads.
    """

    __slots__ = ("_fernet", "_first", "_first_key", "_key_count")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        if not keys:
            raise InvalidInput("at least one encryption key is needed", code="SECRET_KEY_INVALID")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # Name the position only: the value is the secret.
                raise InvalidInput(
                    f"encryption key #{position} is not a Fernet key "
                    "(32 bytes in url-safe base64, see SecretBox.generate_key)",
                    code="SECRET_KEY_INVALID",
                ) from None
        self._fernet = MultiFernet(fernets)
        self._first = fernets[0]
        self._first_key = base64.urlsafe_b64decode(keys[0].strip().encode("ascii"))
        self._key_count = len(fernets)

    @staticmethod
    def generate_key() -> str:
        """A new random key, ready for settings."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        """A token (url-safe ASCII) that only these keys can open. Random each time."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def encrypt_many(self, plaintexts: Sequence[str | None]) -> list[str | None]:
        """Fernet tokens for many values at once (None stays None), under the first key.

        The same token format as :meth:`encrypt` (version 0x80, timestamp, a
        random IV per token, AES-128-CBC with PKCS7, HMAC-SHA256), readable by
        :meth:`decrypt`, ``Fernet`` and :meth:`rotate`; about ten times faster
        for bulk imports. CBC is sequential within one message but not across
        messages, so block j of every message is encrypted in one AES call (ECB
        on ``P_j xor C_(j-1)``, C_0 being the message's own IV: exactly CBC).
        """
        todo = [i for i, p in enumerate(plaintexts) if p is not None]
        out: list[str | None] = [None] * len(plaintexts)
        if not todo:
            return out
        signing, encryption = self._first_key[:16], self._first_key[16:]
        padded: list[bytes] = []
        for i in todo:
            data = plaintexts[i].encode("utf-8")  # type: ignore[union-attr]
            pad = 16 - len(data) % 16
            padded.append(data + bytes((pad,)) * pad)
        ivs = os.urandom(16 * len(todo))
        prev = [ivs[16 * k : 16 * k + 16] for k in range(len(todo))]
        blocks: list[list[bytes]] = [[] for _ in todo]
        ecb = Cipher(algorithms.AES(encryption), modes.ECB()).encryptor()  # noqa: S305 (CBC by hand)
        live = list(range(len(todo)))
        at = 0
        while live:
            plain = b"".join(padded[k][at : at + 16] for k in live)
            chain = b"".join(prev[k] for k in live)
            mixed = int.from_bytes(plain, "big") ^ int.from_bytes(chain, "big")
            cipher = ecb.update(mixed.to_bytes(len(plain), "big"))
            for n, k in enumerate(live):
                block = cipher[16 * n : 16 * n + 16]
                blocks[k].append(block)
                prev[k] = block
            at += 16
            live = [k for k in live if len(padded[k]) > at]
        header = b"\x80" + struct.pack(">Q", int(time.time()))
        mac = hmac.new(signing, digestmod=hashlib.sha256)
        for k, i in enumerate(todo):
            body = header + ivs[16 * k : 16 * k + 16] + b"".join(blocks[k])
            signer = mac.copy()
            signer.update(body)
            out[i] = base64.urlsafe_b64encode(body + signer.digest()).decode("ascii")
        return out

    def decrypt(self, token: str) -> str:
        """The plaintext, or :class:`SecretUnreadable` if no key opens the token."""
        try:
            data = self._fernet.decrypt(_token_bytes(token))
            return data.decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise SecretUnreadable(
                "a stored secret could not be decrypted with the configured keys"
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` opens with the first key (so rotating it changes nothing)."""
        try:
            self._first.decrypt(_token_bytes(token))
        except (InvalidToken, SecretUnreadable):
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key (keeps the original timestamp)."""
        try:
            return self._fernet.rotate(_token_bytes(token)).decode("ascii")
        except InvalidToken:
            raise SecretUnreadable(
                "a stored secret could not be re-encrypted: no configured key opens it"
            ) from None

    def __repr__(self) -> str:
        return f"SecretBox(<{self._key_count} key(s) hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the keys out in clear; a box is rebuilt from settings.
        raise TypeError("SecretBox cannot be pickled")


# The keys for encrypted columns travel with the unit of work, not with a global:
# ``UnitOfWork.__enter__`` binds its context's box here for the duration of the
# transaction, and :class:`resim.adapters.db.types.EncryptedText` reads it. A
# column written or read with nothing bound raises instead of storing clear text.
_bound_box: ContextVar[SecretBox | None] = ContextVar("resim_secret_box", default=None)


@contextlib.contextmanager
def bind_secrets(box: SecretBox | None) -> Iterator[None]:
    """Make ``box`` the keys of encrypted columns inside the ``with`` block."""
    token = _bound_box.set(box)
    try:
        yield
    finally:
        _bound_box.reset(token)


def bound_secrets() -> SecretBox:
    """The box bound by the current unit of work; raises when none is bound."""
    box = _bound_box.get()
    if box is None:
        raise SecretUnreadable(
            "an encrypted column was used outside a unit of work that holds the keys"
        )
    return box


def _token_bytes(token: str) -> bytes:
    try:
        return token.encode("ascii")
    except UnicodeEncodeError:
        raise SecretUnreadable("a stored secret is not a valid token") from None


# ---------------------------------------------------------------- one-time codes


def hash_otp(code: str, pepper: bytes) -> str:
    """``hmac-sha256$<hex>`` of ``code`` keyed with ``pepper`` (at least 16 bytes).

    The code is hashed exactly as given; normalise user input (strip spaces)
    before hashing and before verifying.
    """
    if len(pepper) < MIN_PEPPER_BYTES:
        raise InvalidInput(f"the OTP pepper must be at least {MIN_PEPPER_BYTES} bytes")
    digest = hmac.new(pepper, code.encode("utf-8"), hashlib.sha256).hexdigest()
    return OTP_HASH_PREFIX + digest


def verify_otp(code: str, stored: str, pepper: bytes) -> bool:
    """Whether ``code`` hashes to ``stored``; constant time in the code's value."""
    expected = hash_otp(code, pepper).encode("ascii")
    # compare_digest on str refuses non-ASCII with TypeError; bytes never raise.
    return hmac.compare_digest(expected, stored.encode("utf-8", "surrogateescape"))


# ---------------------------------------------------------------- PINs and passwords


def password_hasher(*, time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher with the given cost (the composition root builds it from settings)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hash_secret(secret: str, *, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash (PHC string with parameters and salt) of a PIN or password.

    ``hasher`` defaults to argon2-cffi's RFC 9106 low-memory profile; tests may
    pass a cheaper one.
    """
    return (hasher or PasswordHasher()).hash(secret)


def verify_secret(secret: str, stored: str, *, hasher: PasswordHasher | None = None) -> bool:
    """Whether ``secret`` matches ``stored``. A malformed ``stored`` is a mismatch."""
    try:
        return (hasher or PasswordHasher()).verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def secret_needs_rehash(stored: str, *, hasher: PasswordHasher | None = None) -> bool:
    """Whether ``stored`` was made with weaker parameters than ``hasher``'s (rehash on login)."""
    try:
        return (hasher or PasswordHasher()).check_needs_rehash(stored)
    except InvalidHashError:
        return True
