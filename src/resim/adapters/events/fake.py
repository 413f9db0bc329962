"""FakeEventSink: the EventSink port in memory, for the services' own tests.

It records every delivery (the token included, so tests can check it), and
can be told to answer the next deliveries with given HTTP statuses, classified
exactly like :class:`~resim.adapters.events.http.HttpEventSink` does
(``None`` in the list stands for a timeout). Thread-safe.
"""

from __future__ import annotations

import threading

from resim.adapters.events.http import status_error
from resim.errors import SinkError
from resim.services.ports import OutgoingEvent


class FakeEventSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered: list[OutgoingEvent] = []
        self._answers: list[int | None] = []
        self.attempts = 0

    def deliver(self, event: OutgoingEvent) -> int:
        with self._lock:
            self.attempts += 1
            status = self._answers.pop(0) if self._answers else 204
            if status is None:
                raise SinkError(
                    "sink fake timed out", retryable=True, status=None, code="SINK_UNAVAILABLE"
                )
            error = status_error("fake", status)
            if error is not None:
                raise error
            self._delivered.append(event)
            return status

    def answer_next(self, *statuses: int | None) -> None:
        """Answer the next deliveries with these statuses (None: a timeout), then 204."""
        with self._lock:
            self._answers.extend(statuses)

    @property
    def delivered(self) -> list[OutgoingEvent]:
        """A copy of the accepted deliveries, oldest first (repeats included)."""
        with self._lock:
            return list(self._delivered)
