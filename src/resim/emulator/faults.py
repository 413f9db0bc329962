"""Latency and fault injection for the emulated SM-DP+, changeable at run time.

Each ES2+ call draws one number from a seeded ``random.Random``: below
``error_rate`` it is answered 1.2/4.4 (busy, nothing executed); in the next
``http5xx_rate`` slice with HTTP 500 (nothing executed); in the next
``timeout_rate`` slice the call is executed (unless ``timeout_executes`` is
false) and the answer held for ``timeout_hold_s`` seconds, longer than the
client waits: the worst case for the caller, who cannot know whether the
order was placed. The same seed gives the same sequence of faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Fault = Literal["busy", "http5xx", "timeout"]


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    http5xx_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold_s: float = 30.0
    timeout_executes: bool = True

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.http5xx_rate, self.timeout_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            raise ValueError("fault rates must be within 0..1 and add up to at most 1")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.timeout_hold_s < 0:
            raise ValueError("latency, jitter and hold time must not be negative")


class FaultInjector:
    """Thread-safe holder of the current :class:`FaultSettings` and the seeded RNG."""

    def __init__(self, settings: FaultSettings, *, seed: int | None = None) -> None:
        self._settings = settings
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def update(self, *, seed: int | None = None, **changes: Any) -> FaultSettings:
        """Replace some settings (ValueError when invalid); ``seed`` restarts the RNG."""
        with self._lock:
            self._settings = replace(self._settings, **changes)
            if seed is not None:
                self._rng = random.Random(seed)
            return self._settings

    def draw(self) -> Fault | None:
        with self._lock:
            s = self._settings
            r = self._rng.random()
        if r < s.error_rate:
            return "busy"
        if r < s.error_rate + s.http5xx_rate:
            return "http5xx"
        if r < s.error_rate + s.http5xx_rate + s.timeout_rate:
            return "timeout"
        return None

    def delay_s(self) -> float:
        """Latency for one call in seconds: latency_ms +/- jitter_ms, never negative."""
        with self._lock:
            s = self._settings
            jitter = self._rng.uniform(-s.jitter_ms, s.jitter_ms) if s.jitter_ms else 0.0
        return max(0.0, s.latency_ms + jitter) / 1000.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self.settings)
