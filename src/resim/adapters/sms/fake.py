"""FakeSmsGateway: the SmsGateway port in memory, for the services' own tests.

Like a real gateway it accepts a message id once: a retry with the same id is
accepted again without a second message. ``refuse`` maps numbers to the HTTP
status a gateway would answer (classified like :class:`HttpSmsGateway` does),
and it can be told to fail the next sends with a given :class:`ExternalError`.
Thread-safe.
"""

from __future__ import annotations

import threading

from resim.adapters.sms.http import check_message, status_error
from resim.errors import ExternalError
from resim.services.ports import OutgoingSms


class FakeSmsGateway:
    def __init__(self, *, refuse: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._sent: list[OutgoingSms] = []
        self._failures: list[ExternalError] = []
        self._refuse = dict(refuse or {})
        self.attempts = 0

    def send(self, message: OutgoingSms) -> None:
        check_message(message)
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            error = status_error("fake", self._refuse.get(message.to, 202))
            if error is not None:
                raise error
            if any(m.id == message.id for m in self._sent):
                return  # the same message again: accepted, not sent twice
            self._sent.append(message)

    def fail_next(self, error: ExternalError, *, times: int = 1) -> None:
        """Make the next ``times`` sends raise ``error`` (then succeed again)."""
        with self._lock:
            self._failures.extend([error] * times)

    @property
    def sent(self) -> list[OutgoingSms]:
        """A copy of the accepted messages, oldest first."""
        with self._lock:
            return list(self._sent)

    def to(self, number: str) -> list[OutgoingSms]:
        with self._lock:
            return [m for m in self._sent if m.to == number]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
            self._failures.clear()
            self.attempts = 0


class FakeAsyncSmsGateway:
    """The AsyncSmsGateway port in memory, over ``inner`` (a :class:`FakeSmsGateway`)."""

    def __init__(self, inner: FakeSmsGateway | None = None) -> None:
        self.inner = inner or FakeSmsGateway()

    async def send(self, message: OutgoingSms) -> None:
        self.inner.send(message)

    async def aclose(self) -> None:
        return None

    @property
    def sent(self) -> list[OutgoingSms]:
        return self.inner.sent
