"""SecretBox.encrypt_many: standard Fernet tokens, the same as encrypt() would make."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.fernet import Fernet, InvalidToken

from resim.adapters.crypto import SecretBox

VALUES = [
    "Ida Pedersen",
    None,
    "",
    "exactly sixteen!",  # a full block: PKCS7 adds a whole block of padding
    "ida.pedersen.0@nordlys.example",
    "Vestergade 82, 9000 Aalborg, Danmark, 3. sal tv." * 4,  # many blocks
    "æøå ü 東京",
]


class TestEncryptMany:
    def test_every_token_opens_with_fernet_and_the_box_to_its_value(self) -> None:
        key = SecretBox.generate_key()
        box = SecretBox([key])
        tokens = box.encrypt_many(VALUES)
        assert len(tokens) == len(VALUES)
        for value, token in zip(VALUES, tokens, strict=True):
            if value is None:
                assert token is None
                continue
            assert token is not None
            assert Fernet(key).decrypt(token.encode()).decode() == value
            assert box.decrypt(token) == value

    def test_tokens_are_under_the_first_key_and_rotate_like_single_ones(self) -> None:
        first, second = SecretBox.generate_key(), SecretBox.generate_key()
        box = SecretBox([first, second])
        token = box.encrypt_many(["1234"])[0]
        assert token is not None
        assert box.is_current(token)
        with pytest.raises(InvalidToken):  # not the second key
            Fernet(second).decrypt(token.encode())
        rotated = SecretBox([second, first]).rotate(token)
        assert SecretBox([second]).decrypt(rotated) == "1234"

    def test_each_token_has_its_own_iv_and_the_current_time(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        before = int(time.time())
        tokens = box.encrypt_many(["same"] * 50)
        raws = [base64.urlsafe_b64decode(t or "") for t in tokens]
        assert len({r[9:25] for r in raws}) == 50  # IVs differ
        assert len(set(tokens)) == 50
        for raw in raws:
            assert raw[0] == 0x80
            assert before <= int.from_bytes(raw[1:9], "big") <= int(time.time())

    def test_the_plaintext_is_not_in_the_token(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        token = box.encrypt_many(["secret-value-123"])[0] or ""
        assert "secret" not in token
        assert b"secret" not in base64.urlsafe_b64decode(token)

    def test_nothing_to_encrypt(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        assert box.encrypt_many([]) == []
        assert box.encrypt_many([None, None]) == [None, None]
