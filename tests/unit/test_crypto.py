"""SecretBox (Fernet with rotation), OTP hashing (HMAC) and PIN hashing (argon2id)."""

from __future__ import annotations

import pickle

import pytest
from argon2 import PasswordHasher

from resim.adapters.crypto import (
    SecretBox,
    SecretUnreadable,
    hash_otp,
    hash_secret,
    secret_needs_rehash,
    verify_otp,
    verify_secret,
)
from resim.errors import InvalidInput, ResimError

SECRET = "LPA:1$SMDP.EXAMPLE.COM$K2D7Q-8WZ3M-P4HXA-N6TRB"
PEPPER = b"p" * 32
# Cheap argon2id parameters so the suite stays fast; production uses the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class TestSecretBox:
    def test_round_trips_text_including_non_ascii(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        for plaintext in (SECRET, "", "Søren Ærø 张伟 ✓"):
            assert box.decrypt(box.encrypt(plaintext)) == plaintext

    def test_tokens_do_not_contain_the_plaintext_and_differ_each_time(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        first, second = box.encrypt(SECRET), box.encrypt(SECRET)
        assert first != second
        assert "K2D7Q" not in first
        assert first.isascii()

    def test_first_key_encrypts_and_all_keys_decrypt(self) -> None:
        old, new = SecretBox.generate_key(), SecretBox.generate_key()
        token_under_old = SecretBox([old]).encrypt(SECRET)
        rotated_box = SecretBox([new, old])
        assert rotated_box.decrypt(token_under_old) == SECRET
        token_under_new = rotated_box.encrypt(SECRET)
        assert SecretBox([new]).decrypt(token_under_new) == SECRET
        with pytest.raises(SecretUnreadable):
            SecretBox([old]).decrypt(token_under_new)

    def test_rotate_moves_a_token_to_the_first_key(self) -> None:
        old, new = SecretBox.generate_key(), SecretBox.generate_key()
        token = SecretBox([old]).encrypt(SECRET)
        rotated = SecretBox([new, old]).rotate(token)
        assert SecretBox([new]).decrypt(rotated) == SECRET
        with pytest.raises(SecretUnreadable):
            SecretBox([old]).decrypt(rotated)

    def test_rotate_with_no_matching_key_is_unreadable(self) -> None:
        token = SecretBox([SecretBox.generate_key()]).encrypt(SECRET)
        with pytest.raises(SecretUnreadable):
            SecretBox([SecretBox.generate_key()]).rotate(token)

    def test_wrong_key_raises_secret_unreadable_without_the_token(self) -> None:
        token = SecretBox([SecretBox.generate_key()]).encrypt(SECRET)
        with pytest.raises(SecretUnreadable) as info:
            SecretBox([SecretBox.generate_key()]).decrypt(token)
        error = info.value
        assert isinstance(error, ResimError)
        assert error.code == "SECRET_UNREADABLE"
        assert token not in str(error) and token[:20] not in error.message
        assert error.__cause__ is None and error.__suppress_context__

    @pytest.mark.parametrize("token", ["", "garbage", "gAAAAA" + "x" * 80, "tøken", "\x00"])
    def test_damaged_tokens_are_unreadable(self, token: str) -> None:
        box = SecretBox([SecretBox.generate_key()])
        with pytest.raises(SecretUnreadable):
            box.decrypt(token)

    def test_a_tampered_token_is_unreadable(self) -> None:
        box = SecretBox([SecretBox.generate_key()])
        token = box.encrypt(SECRET)
        flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
        with pytest.raises(SecretUnreadable):
            box.decrypt(flipped)

    def test_repr_never_shows_keys(self) -> None:
        key = SecretBox.generate_key()
        box = SecretBox([key, SecretBox.generate_key()])
        assert key not in repr(box)
        assert key[:10] not in repr(box)
        assert "2 key(s)" in repr(box)

    def test_cannot_be_pickled(self) -> None:
        with pytest.raises(TypeError):
            pickle.dumps(SecretBox([SecretBox.generate_key()]))

    def test_no_keys_is_a_configuration_error(self) -> None:
        with pytest.raises(InvalidInput) as info:
            SecretBox([])
        assert info.value.code == "SECRET_KEY_INVALID"

    def test_a_single_string_is_refused_rather_than_read_as_characters(self) -> None:
        with pytest.raises(TypeError):
            SecretBox(SecretBox.generate_key())

    @pytest.mark.parametrize("bad", ["short", "x" * 44, "ключ" * 11])
    def test_a_malformed_key_is_named_by_position_not_value(self, bad: str) -> None:
        with pytest.raises(InvalidInput) as info:
            SecretBox([SecretBox.generate_key(), bad])
        assert "#2" in info.value.message
        assert bad not in info.value.message

    def test_keys_from_settings_may_carry_whitespace(self) -> None:
        key = SecretBox.generate_key()
        token = SecretBox([key]).encrypt("x")
        assert SecretBox([f" {key}\n"]).decrypt(token) == "x"


class TestOtpHash:
    def test_verifies_the_right_code_only(self) -> None:
        stored = hash_otp("482913", PEPPER)
        assert verify_otp("482913", stored, PEPPER)
        assert not verify_otp("482914", stored, PEPPER)
        assert not verify_otp("", stored, PEPPER)

    def test_is_keyed_by_the_pepper(self) -> None:
        stored = hash_otp("482913", PEPPER)
        assert stored != hash_otp("482913", b"q" * 32)
        assert not verify_otp("482913", stored, b"q" * 32)

    def test_is_deterministic_and_does_not_contain_the_code(self) -> None:
        stored = hash_otp("482913", PEPPER)
        assert stored == hash_otp("482913", PEPPER)
        assert stored.startswith("hmac-sha256$") and len(stored) == len("hmac-sha256$") + 64
        assert "482913" not in stored

    def test_hashes_the_code_exactly_as_given(self) -> None:
        stored = hash_otp("482913", PEPPER)
        assert not verify_otp(" 482913", stored, PEPPER)

    @pytest.mark.parametrize(
        "stored", ["", "hmac-sha256$", "zzz", "ünïcode", "hmac-sha256$" + "0" * 64]
    )
    def test_malformed_stored_values_never_verify_and_never_raise(self, stored: str) -> None:
        assert verify_otp("482913", stored, PEPPER) is False

    def test_a_short_pepper_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="16 bytes"):
            hash_otp("482913", b"short")


class TestSecretHash:
    def test_verifies_the_right_pin_only(self) -> None:
        stored = hash_secret("2580", hasher=FAST)
        assert stored.startswith("$argon2id$")
        assert "2580" not in stored.split("$")[-1]
        assert verify_secret("2580", stored, hasher=FAST)
        assert not verify_secret("2581", stored, hasher=FAST)

    def test_is_salted(self) -> None:
        assert hash_secret("2580", hasher=FAST) != hash_secret("2580", hasher=FAST)

    @pytest.mark.parametrize("stored", ["", "plain", "$argon2id$v=19$m=1024,t=1,p=1$broken"])
    def test_malformed_stored_values_are_a_mismatch(self, stored: str) -> None:
        assert verify_secret("2580", stored, hasher=FAST) is False

    def test_defaults_use_argon2id_with_real_cost(self) -> None:
        stored = hash_secret("correct horse battery staple")
        assert stored.startswith("$argon2id$")
        assert verify_secret("correct horse battery staple", stored)
        assert not secret_needs_rehash(stored)

    def test_cheap_hashes_are_flagged_for_rehash_under_the_defaults(self) -> None:
        assert secret_needs_rehash(hash_secret("2580", hasher=FAST))
        assert secret_needs_rehash("not a hash")
