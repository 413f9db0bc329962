"""Peer circuits: a peer that keeps failing pauses its jobs instead of being called in a loop.

Every job backs off on its own (``jobs.backoff_seconds``), but when a peer is
down or mis-configured (an SMS gateway URL nobody listens on, a wrong token)
every job that needs it fails, and hundreds of jobs backing off on their own
still make thousands of calls: each one an attempt row, an outcome and a
reschedule, the worker's CPU spent on nothing. A circuit per peer, in each
worker process, stops that:

* **closed**: calls go through. :data:`FAILURES_TO_OPEN` retryable failures in a
  row (ExternalError with ``retryable``; a peer that answers "no" to one
  message is working) open it.
* **open** for a pause (``first_pause``, doubled at every failed probe up to
  ``max_pause``): jobs of the peer's kinds are not run; each is put back with
  its attempt counted and a due time after the pause (:func:`resim.services.outbox.jobs.run`).
  Attempts stay bounded (``job_max_attempts``), so a peer that never comes
  back ends in dead jobs, not an endless loop.
* **half-open** once the pause is over: one job runs as the probe. Its call
  succeeding closes the circuit; failing opens it again for a longer pause.

Opening raises a ``peer_unavailable`` alert
(:func:`resim.services.outbox.external.alert_peer_failing`; one per peer until a
reviewer acknowledges it) and logs ``peer.paused``. The
circuits are per process and in memory: a restarted worker starts closed and
learns again within :data:`FAILURES_TO_OPEN` calls. Thread-safe.

CAMARA sinks are not a peer here: each relying party's sink fails on its own
and must not pause the others' notifications.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import structlog

log = structlog.get_logger()

FAILURES_TO_OPEN = 5

# Peer -> the job kinds that need it. Attempt rows name the peer by target prefix.
PEER_KINDS: dict[str, tuple[str, ...]] = {
    "sms": ("sms.send",),
    "mail": ("mail.send",),
    "smdp": ("esim.provision", "esim.cancel_order"),
    "core": (
        "core.suspend_old",
        "core.resume_old",
        "core.cutover",
        "core.refresh",
        "loss.suspend",
        "loss.resume",
    ),
    "courier": ("courier.dispatch",),
}
PEER_NAMES = {
    "sms": "SMS gateway",
    "mail": "mail server (SMTP)",
    "smdp": "SM-DP+ (ES2+)",
    "core": "core network",
    "courier": "courier",
}
_TARGET_PREFIX = {"sms": "sms", "mail": "mail", "es2": "smdp", "core": "core", "courier": "courier"}
_KIND_PEER = {kind: peer for peer, kinds in PEER_KINDS.items() for kind in kinds}


def peer_of_target(target: str) -> str | None:
    """The peer an attempt row's target (``es2.downloadOrder``, ``sms.send``) calls."""
    return _TARGET_PREFIX.get(target.split(".", 1)[0])


def peer_of_kind(kind: str) -> str | None:
    return _KIND_PEER.get(kind)


@dataclass(frozen=True)
class Admission:
    """Run the job now (``wait`` None; ``probe`` when it tests a half-open circuit),
    or put it back for ``wait`` seconds."""

    wait: float | None = None
    probe: bool = False


@dataclass
class _Circuit:
    failures: int = 0  # retryable failures in a row
    open_until: dt.datetime | None = None  # None: closed
    pause: float = 0.0
    probing: bool = False
    last_error: str = ""


class PeerCircuits:
    """The circuits of one worker process (see the module doc)."""

    def __init__(self, *, first_pause: float = 5.0, max_pause: float = 300.0) -> None:
        self.first_pause = first_pause
        self.max_pause = max_pause
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    def admit(self, peer: str, now: dt.datetime) -> Admission:
        with self._lock:
            c = self._circuits.get(peer)
            if c is None or c.open_until is None:
                return Admission()
            if now < c.open_until:
                return Admission(wait=(c.open_until - now).total_seconds())
            if c.probing:  # half-open, the probe is out: wait as long as a pause
                return Admission(wait=c.pause)
            c.probing = True
            return Admission(probe=True)

    def probe_done(self, peer: str) -> None:
        """The probe job ended; if it never called the peer, the next job probes."""
        with self._lock:
            c = self._circuits.get(peer)
            if c is not None:
                c.probing = False

    def succeeded(self, peer: str) -> None:
        with self._lock:
            c = self._circuits.pop(peer, None)
        if c is not None and c.open_until is not None:
            log.info("peer.recovered", peer=peer)

    def failed(self, peer: str, now: dt.datetime, error: str) -> bool:
        """Count a retryable failure; True when this one opened a closed circuit."""
        with self._lock:
            c = self._circuits.setdefault(peer, _Circuit())
            c.failures += 1
            c.last_error = error
            if c.open_until is None:
                if c.failures < FAILURES_TO_OPEN:
                    return False
                c.pause = self.first_pause
                c.open_until = now + dt.timedelta(seconds=c.pause)
                opened = True
            elif now >= c.open_until:  # half-open: the probe (or a straggler) failed
                c.pause = min(self.max_pause, c.pause * 2)
                c.open_until = now + dt.timedelta(seconds=c.pause)
                opened = False
            else:  # already open: a call that started before it opened
                return False
            pause, failures = c.pause, c.failures
        log.warning("peer.paused", peer=peer, failures=failures, pause_s=pause, error=error)
        return opened

    def state(self, peer: str, now: dt.datetime) -> str:
        """``closed``, ``open`` or ``half_open`` (for tests and logs)."""
        with self._lock:
            c = self._circuits.get(peer)
            if c is None or c.open_until is None:
                return "closed"
            return "open" if now < c.open_until else "half_open"

    def last_error(self, peer: str) -> str:
        with self._lock:
            c = self._circuits.get(peer)
            return c.last_error if c is not None else ""
