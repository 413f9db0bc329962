"""The signed "continue your request" link (issue 12): genuine, bound to one request, ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

import pytest

from resim.errors import NotFound
from resim.services.context import FrozenClock, ServiceContext
from resim.services.replacement import continue_link

RID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Keys:
    """What continue_link reads of a ServiceContext."""

    otp_pepper: bytes
    clock: FrozenClock
    public_base_url: str = "https://portal.example"

    def now(self) -> dt.datetime:
        return self.clock.now()


def context(pepper: bytes = b"p" * 32) -> ServiceContext:
    return cast(ServiceContext, Keys(pepper, FrozenClock(NOW)))


def test_a_link_opens_to_its_request_until_it_expires() -> None:
    ctx = context()
    url = continue_link.continue_url(ctx, RID, now=NOW)
    assert url.startswith("https://portal.example/c/" + RID + ".")
    token = url.rsplit("/", 1)[1]
    opened = continue_link.open_token(ctx, token)
    assert opened.request_id == RID
    assert opened.expires_at == NOW + continue_link.LINK_LIFETIME
    cast(Keys, ctx).clock.advance(continue_link.LINK_LIFETIME - dt.timedelta(seconds=1))
    assert continue_link.open_token(ctx, token).request_id == RID
    cast(Keys, ctx).clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(continue_link.LinkExpired):
        continue_link.open_token(ctx, token)


def test_the_same_request_and_time_give_the_same_link() -> None:
    ctx = context()
    assert continue_link.continue_token(ctx, RID, now=NOW) == continue_link.continue_token(
        ctx, RID, now=NOW
    )


@pytest.mark.parametrize("part", ["request", "expiry", "mac", "key"])
def test_changing_any_part_or_the_key_makes_it_invalid(part: str) -> None:
    ctx = context()
    rid, exp, mac = continue_link.continue_token(ctx, RID, now=NOW).split(".")
    forged = {
        "request": f"{OTHER}.{exp}.{mac}",
        "expiry": f"{rid}.{exp[:-1]}{'z' if exp[-1] != 'z' else 'y'}.{mac}",
        "mac": f"{rid}.{exp}.{mac[::-1]}",
        "key": f"{rid}.{exp}.{mac}",
    }[part]
    checker = context(b"q" * 32) if part == "key" else ctx
    with pytest.raises(NotFound) as refused:
        continue_link.open_token(checker, forged)
    assert refused.value.code == "CONTINUE_LINK_INVALID"
    assert RID not in refused.value.message


@pytest.mark.parametrize("junk", ["", "x", "a" * 500, f"{RID}..", f"{RID}.1.", "../../etc"])
def test_malformed_tokens_are_invalid_not_errors(junk: str) -> None:
    with pytest.raises(NotFound):
        continue_link.open_token(context(), junk)


def test_the_expiry_is_checked_only_after_the_signature() -> None:
    """A forged expiry in the past is 'invalid', never 'expired': the answer says
    nothing about whether the request exists."""
    ctx = context()
    rid, _, mac = continue_link.continue_token(ctx, RID, now=NOW).split(".")
    with pytest.raises(NotFound):
        continue_link.open_token(ctx, f"{rid}.1.{mac}")
