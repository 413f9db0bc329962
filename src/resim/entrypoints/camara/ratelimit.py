"""Per-client rate limiting for the CAMARA API: one token bucket per client_id.

In process: with N API processes behind a load balancer a client may make N
times the configured rate (docs/camara.md). Runs on the event loop (called
from an ``async`` dependency), so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` tokens per second refill each client's bucket up to ``burst``.

    :meth:`take` removes one token and returns None, or returns the seconds
    until one is available (the request is refused; no token is taken).
    ``rate <= 0`` disables limiting.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        monotonic: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._now = monotonic
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client_id: str) -> float | None:
        if self.rate <= 0:
            return None
        now = self._now()
        tokens, at = self._buckets.get(client_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) >= self._max_clients and client_id not in self._buckets:
            self._buckets.clear()  # full buckets for everyone: errs on the generous side
        self._buckets[client_id] = (tokens - 1.0, now)
        return None
