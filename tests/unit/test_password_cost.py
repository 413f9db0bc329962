"""The argon2id cost of new PIN and password hashes comes from settings."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters
from pydantic import ValidationError

from resim.adapters.crypto import hash_secret, password_hasher, verify_secret
from resim.settings import Settings

COST = ("RESIM_ARGON2_TIME_COST", "RESIM_ARGON2_MEMORY_KIB", "RESIM_ARGON2_PARALLELISM")


@pytest.fixture
def production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in COST:  # the suite sets the minimum cost for itself
        monkeypatch.delenv(name, raising=False)


class TestTheDefaultCost:
    def test_is_rfc_9106_low_memory(self, production_defaults: None) -> None:
        settings = Settings()
        assert (settings.argon2_time_cost, settings.argon2_memory_kib) == (3, 65536)
        assert settings.argon2_parallelism == 4


class TestAConfiguredCost:
    def test_is_written_into_new_hashes_and_verifies(self) -> None:
        hasher = password_hasher(time_cost=2, memory_kib=1024, parallelism=1)
        stored = hash_secret("1234", hasher=hasher)
        params = extract_parameters(stored)
        assert (params.time_cost, params.memory_cost, params.parallelism) == (2, 1024, 1)
        # verification reads the cost from the hash, whatever the current setting
        assert verify_secret("1234", stored)
        assert not verify_secret("1235", stored)

    def test_below_owasp_floor_is_refused_in_production(self, production_defaults: None) -> None:
        with pytest.raises(ValidationError, match="for tests only"):
            Settings(environment="production", argon2_memory_kib=8, argon2_parallelism=1)
        with pytest.raises(ValidationError, match="for tests only"):
            Settings(environment="production", argon2_time_cost=1)
        Settings(environment="production", argon2_time_cost=2, argon2_memory_kib=19456)

    def test_memory_must_cover_the_lanes(self) -> None:
        with pytest.raises(ValidationError, match="8 x RESIM_ARGON2_PARALLELISM"):
            Settings(argon2_memory_kib=16, argon2_parallelism=4)
