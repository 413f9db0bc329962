"""Answers of the CAMARA SIM Swap API (check, retrieve-date) from the SIM-change records.

What counts as a SIM change for a number (sim-swap.yaml, "SIM swap" and
"New subscription is considered as a SIM swap as well"):

* every ``sim_change`` row for the MSISDN (written at cut-over and by the
  importer),
* the line's activation (``line.created_at``): a brand-new line's first SIM
  binding, and
* a port-in (``line.ported_in_at``): the number came to a new SIM of ours.

The latest of these is "the latest SIM change". A number that has never had
a SIM (``line.awaiting_sim``: reserved, ported in and not yet activated) has
none: no activation, no change. The CAMARA test plan's
retrieve_sim_swap_date_4_sim_never_associated asks 200 with
``latestSimChange: null`` for it; ``check`` answers ``swapped: false`` (no SIM
change in any period). With a legal limit the null answer carries
``monitoredPeriod`` ("no SIM swap during the monitored period" is true).

A ceased line is not served
(SERVICE_NOT_APPLICABLE); a number resim does not know is IDENTIFIER_NOT_FOUND.

The brand's legal limit (``BrandPolicy.camara_monitored_days``) bounds both
answers: a check's ``maxAge`` above it is OUT_OF_RANGE (the message states the
limit), and a latest change older than it is reported as ``None`` with the
monitored period in days. Policies are cached per brand for
``policy_cache_seconds`` (a changed limit takes effect within that time).

Hot path: one indexed read per answer (``SimSwapReader.facts``), no writes,
no audit rows (counted in metrics by the HTTP layer instead).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from resim.errors import InvalidInput, NotFound, Refused
from resim.services.ports import Clock


@dataclass(frozen=True)
class LineSwapFacts:
    brand_id: str
    status: str  # LineStatus value
    activated_at: dt.datetime | None  # None: the number has never had a SIM
    latest_change_at: dt.datetime | None  # newest sim_change row for the number
    ported_in_at: dt.datetime | None = None

    @property
    def latest(self) -> dt.datetime | None:
        """The latest SIM change; None for a number that has never had a SIM."""
        times = [t for t in (self.activated_at, self.latest_change_at, self.ported_in_at) if t]
        return max(times) if times else None


class SimSwapReader(Protocol):
    def facts(self, msisdn: str) -> LineSwapFacts | None:
        """The line of ``msisdn`` and its newest SIM change, in one indexed read."""
        ...

    def monitored_days(self, brand_id: str) -> int | None:
        """The brand's ``camara_monitored_days`` (None: unlimited)."""
        ...


@dataclass(frozen=True)
class LatestChange:
    at: dt.datetime | None  # None: older than the monitored period, or never a SIM
    monitored_days: int | None  # the brand's limit, when ``at`` is None and it has one


def out_of_range_message(days: int) -> str:
    return f"Check monitor period could not exceed local regulations ({days} days)"


class SimSwapQueries:
    def __init__(
        self,
        reader: SimSwapReader,
        clock: Clock,
        *,
        policy_cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._ttl = policy_cache_seconds
        self._monotonic = monotonic
        self._policies: dict[str, tuple[int | None, float]] = {}

    def _line(self, msisdn: str) -> LineSwapFacts:
        facts = self._reader.facts(msisdn)
        if facts is None:
            raise NotFound(
                "The phone number is not served by this operator.", code="IDENTIFIER_NOT_FOUND"
            )
        if facts.status == "ceased":
            raise Refused(
                "The service is not available for the provided phone number (line ceased).",
                code="SERVICE_NOT_APPLICABLE",
            )
        return facts

    def _days(self, brand_id: str) -> int | None:
        now = self._monotonic()
        cached = self._policies.get(brand_id)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        days = self._reader.monitored_days(brand_id)
        self._policies[brand_id] = (days, now)
        return days

    def check(self, *, msisdn: str, max_age_hours: int) -> bool:
        """Whether the SIM of ``msisdn`` changed in the last ``max_age_hours``.

        Raises NotFound (IDENTIFIER_NOT_FOUND), Refused (SERVICE_NOT_APPLICABLE),
        InvalidInput (OUT_OF_RANGE: beyond the brand's legal limit).
        """
        facts = self._line(msisdn)
        days = self._days(facts.brand_id)
        if days is not None and max_age_hours > days * 24:
            raise InvalidInput(out_of_range_message(days), code="OUT_OF_RANGE")
        since = self._clock.now() - dt.timedelta(hours=max_age_hours)
        latest = facts.latest
        return latest is not None and latest >= since

    def latest(self, *, msisdn: str) -> LatestChange:
        """The latest SIM change of ``msisdn``, or None beyond the monitored period."""
        facts = self._line(msisdn)
        days = self._days(facts.brand_id)
        latest = facts.latest
        if latest is None:  # never had a SIM: nothing to report, in any period
            return LatestChange(at=None, monitored_days=days)
        if days is not None and latest < self._clock.now() - dt.timedelta(days=days):
            return LatestChange(at=None, monitored_days=days)
        return LatestChange(at=latest, monitored_days=None)
