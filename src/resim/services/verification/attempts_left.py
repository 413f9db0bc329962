"""What a customer may still try on one request: the honest count and the wait (issue 12).

A page that says "2 attempts left" must mean it: the number is the smaller of
what the request allows (``otp_max_attempts``, then it is rejected) and what
the account's counter allows (``account_max_failures``, then replacements are
frozen), and it counts attempts tried after the wait it shows. The source
address is not in it: it never blocks (:mod:`resim.services.verification.attempts`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from resim.domain.model import ReplacementRequest
from resim.domain.policy import BrandPolicy
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts


@dataclass(frozen=True)
class RequestStanding:
    left: int  # further wrong attempts that are checked before a block
    wait_seconds: int  # until the next attempt is checked (0: now), rounded up


def request_standing(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request: ReplacementRequest,
    policy: BrandPolicy,
    now: dt.datetime,
) -> RequestStanding:
    """The standing of ``request``'s verification (read only, no lock)."""
    limits = attempts.Limits.from_policy(policy, ip_max_failures=ctx.ip_max_failures)
    keys = [f"request:{request.id}", f"account:{request.subscriber_id}"]
    counters = attempts.standing(uow, keys, now, limits)
    left = max(policy.otp_max_attempts - request.otp_attempts, 0)
    if counters.left is not None:
        left = min(left, counters.left)
    return RequestStanding(left=left, wait_seconds=math.ceil(counters.wait_seconds))
