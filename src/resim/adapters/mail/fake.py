"""FakeMailer: the Mailer port in memory, for unit tests and the services' own tests.

It keeps every accepted :class:`OutgoingMail` in order and can be told to fail
the next sends with a given :class:`ExternalError`, so retry paths can be
tested. All methods are thread-safe (the job worker may send from a thread
while the test reads).
"""

from __future__ import annotations

import threading

from resim.errors import ExternalError
from resim.services.ports import OutgoingMail


class FakeMailer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[OutgoingMail] = []
        self._failures: list[ExternalError] = []
        self.attempts = 0

    def send(self, mail: OutgoingMail) -> None:
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.pop(0)
            self._sent.append(mail)

    def fail_next(self, error: ExternalError, *, times: int = 1) -> None:
        """Make the next ``times`` sends raise ``error`` (then succeed again)."""
        with self._lock:
            self._failures.extend([error] * times)

    @property
    def sent(self) -> list[OutgoingMail]:
        """A copy of the accepted mails, oldest first."""
        with self._lock:
            return list(self._sent)

    def to(self, address: str) -> list[OutgoingMail]:
        """Mails accepted for ``address`` (compared case-insensitively), oldest first."""
        wanted = address.strip().casefold()
        with self._lock:
            return [m for m in self._sent if m.to.strip().casefold() == wanted]

    def latest_to(self, address: str) -> OutgoingMail | None:
        """The newest mail accepted for ``address``, or None."""
        mails = self.to(address)
        return mails[-1] if mails else None

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
            self._failures.clear()
            self.attempts = 0


class FakeAsyncMailer:
    """The AsyncMailer port in memory: every send goes to ``inner`` (a
    :class:`FakeMailer`, shared with the synchronous side when given)."""

    def __init__(self, inner: FakeMailer | None = None) -> None:
        self.inner = inner or FakeMailer()

    async def send(self, mail: OutgoingMail) -> None:
        self.inner.send(mail)

    async def aclose(self) -> None:
        return None

    @property
    def sent(self) -> list[OutgoingMail]:
        return self.inner.sent
