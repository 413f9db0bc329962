"""FaultInjector: seeded, bounded, changeable at run time."""

from __future__ import annotations

import pytest

from resim.emulator.faults import FaultInjector, FaultSettings


def test_no_faults_by_default() -> None:
    injector = FaultInjector(FaultSettings(), seed=3)
    assert {injector.draw() for _ in range(200)} == {None}
    assert injector.delay_s() == 0.0


def test_the_same_seed_draws_the_same_faults() -> None:
    settings = FaultSettings(error_rate=0.2, http5xx_rate=0.2, timeout_rate=0.2)
    a = FaultInjector(settings, seed=11)
    b = FaultInjector(settings, seed=11)
    draws = [a.draw() for _ in range(100)]
    assert draws == [b.draw() for _ in range(100)]
    assert set(draws) == {None, "busy", "http5xx", "timeout"}


def test_rates_split_the_unit_interval_in_order() -> None:
    injector = FaultInjector(FaultSettings(error_rate=1.0), seed=1)
    assert injector.draw() == "busy"
    injector.update(error_rate=0.0, timeout_rate=1.0)
    assert injector.draw() == "timeout"


def test_latency_with_jitter_stays_in_range_and_never_negative() -> None:
    injector = FaultInjector(FaultSettings(latency_ms=10, jitter_ms=30), seed=5)
    delays = [injector.delay_s() for _ in range(200)]
    assert min(delays) >= 0.0 and max(delays) <= 0.040


def test_update_with_a_seed_restarts_the_sequence() -> None:
    injector = FaultInjector(FaultSettings(error_rate=0.5), seed=9)
    first = [injector.draw() for _ in range(20)]
    injector.update(seed=9)
    assert [injector.draw() for _ in range(20)] == first


@pytest.mark.parametrize(
    "kwargs",
    [{"error_rate": -0.1}, {"error_rate": 0.7, "http5xx_rate": 0.7}, {"latency_ms": -1}],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultSettings(**kwargs)
    injector = FaultInjector(FaultSettings())
    with pytest.raises(ValueError):
        injector.update(**kwargs)
    assert injector.settings == FaultSettings()
