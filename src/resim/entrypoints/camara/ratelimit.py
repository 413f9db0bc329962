"""Per-client rate limiting for the CAMARA API: one token bucket per client_id.

Two limiters with one interface (``take(client_id) -> None | seconds to wait``):

* :class:`RateLimiter`, in process: with N API processes a client may make N
  times the rate. Runs on the event loop (no lock needed). Used when
  ``RESIM_CAMARA_RATE_LIMIT_SHARED`` is off, and as the fallback below.
* :class:`SharedRateLimiter`: the buckets live in the database
  (``adapters.db.rate_buckets``), so the rate holds across every API process
  (issue 15). ``shared`` is True: the HTTP layer calls it in a worker thread.
  If the database cannot answer (an outage, a lock held too long), it falls
  back to its in-process bucket, so an overloaded database never makes the
  limiter refuse everything or the API hang on it; each process still holds
  the rate on its own then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
import structlog

log = structlog.get_logger(__name__)


class Limiter(Protocol):
    shared: bool

    def take(self, client_id: str) -> float | None:
        """None: a token was taken; else the seconds until one is available."""
        ...


class RateLimiter:
    """``rate`` tokens per second refill each client's bucket up to ``burst``.

    :meth:`take` removes one token and returns None, or returns the seconds
    until one is available (the request is refused; no token is taken).
    ``rate <= 0`` disables limiting.
    """

    shared = False

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


class SharedRateLimiter:
    """The shared (database) buckets, with an in-process fallback (module doc)."""

    shared = True

    def __init__(
        self,
        store: Limiter,
        fallback: RateLimiter,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._now = monotonic
        self._warned_at: float | None = None

    def take(self, client_id: str) -> float | None:
        try:
            return self._store.take(client_id)
        except sa.exc.SQLAlchemyError as exc:
            now = self._now()
            if self._warned_at is None or now - self._warned_at > 60:
                self._warned_at = now  # one line a minute, not one per request
                log.warning("camara.ratelimit.shared_unavailable", error=type(exc).__name__)
            return self._fallback.take(client_id)
