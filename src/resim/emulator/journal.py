"""The emulator's call log and its idempotent replay of repeated calls.

A repeated (requester, function, functionCallIdentifier) with the same
parameters gets the stored answer again without executing anything (logged as
``replayed``); with other parameters it is refused 1.6/2.1. SGP.22 does not
require this of a real SM-DP+; ``replay=False`` emulates one that executes
every call it receives.

Not thread-safe by itself: :class:`resim.emulator.core.SmdpCore` calls it
under its own lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from resim.emulator.ids import sha256_hex
from resim.emulator.model import CallRecord, SmdpRefusal
from resim.services.ports import Clock

T = TypeVar("T")


@dataclass(frozen=True)
class _Answer:
    fingerprint: str
    value: object  # the result, or the SmdpRefusal that was raised


class CallJournal:
    def __init__(self, clock: Clock, *, replay: bool) -> None:
        self._clock = clock
        self._replay = replay
        self._answers: dict[tuple[str, str, str], _Answer] = {}
        self._calls: list[CallRecord] = []

    def calls(self, function: str | None = None) -> list[CallRecord]:
        return [c for c in self._calls if function is None or c.function == function]

    def record(
        self,
        function: str,
        call_id: str,
        requester: str,
        iccid: str | None,
        outcome: str | SmdpRefusal,
    ) -> None:
        now = self._clock.now()
        if isinstance(outcome, SmdpRefusal):
            self._calls.append(
                CallRecord(
                    function, call_id, requester, iccid, "Failed", now,
                    subject_code=outcome.subject_code, reason_code=outcome.reason_code,
                )
            )  # fmt: skip
        else:
            self._calls.append(CallRecord(function, call_id, requester, iccid, outcome, now))

    def run(
        self,
        *,
        function: str,
        requester: str,
        call_id: str,
        params: tuple[object, ...],
        iccid_hint: str | None,
        authorized: bool,
        body: Callable[[], T],
        iccid_of: Callable[[T], str | None],
    ) -> T:
        """Replay a stored answer, refuse an unknown requester (1.1/1.1), or run ``body``.

        Refusals of ``body`` are stored like results, so a retry sees the same
        answer; the requester refusal is not stored (nothing was executed).
        """
        # The confirmation code is among the params: keep only a hash of them.
        fingerprint = sha256_hex(repr(params))
        key = (requester, function, call_id)
        prior = self._answers.get(key) if self._replay else None
        if prior is not None:
            if prior.fingerprint != fingerprint:
                refusal = SmdpRefusal(
                    "1.6", "2.1", "functionCallIdentifier reused with other parameters",
                    subject_identifier="functionCallIdentifier",
                )  # fmt: skip
                self.record(function, call_id, requester, iccid_hint, refusal)
                raise refusal
            if isinstance(prior.value, SmdpRefusal):
                self.record(function, call_id, requester, iccid_hint, "replayed")
                old = prior.value
                raise SmdpRefusal(
                    old.subject_code, old.reason_code, old.message,
                    subject_identifier=old.subject_identifier,
                )  # fmt: skip
            replayed = cast(T, prior.value)
            self.record(function, call_id, requester, iccid_of(replayed) or iccid_hint, "replayed")
            return replayed
        if not authorized:
            refusal = SmdpRefusal("1.1", "1.1", "function requester unknown")
            self.record(function, call_id, requester, None, refusal)
            raise refusal
        try:
            result = body()
        except SmdpRefusal as refusal:
            self._answers[key] = _Answer(fingerprint, refusal)
            self.record(function, call_id, requester, iccid_hint, refusal)
            raise
        self._answers[key] = _Answer(fingerprint, result)
        self.record(
            function, call_id, requester, iccid_of(result) or iccid_hint, "Executed-Success"
        )
        return result
