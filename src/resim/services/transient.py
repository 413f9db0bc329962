"""Running a use case again when the store could not serve it just now.

The store's adapter knows which of its errors mean "not now" rather than
"never" (:mod:`resim.adapters.db.transient` for SQL); the composition root
hands its :class:`TransientRetry` to the context (``ctx.retry``), and
:func:`retry_transient` wraps a use case in it. Only wrap a use case that is
one unit of work and may be run again from the start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from resim.services.context import ServiceContext

P = ParamSpec("P")
T = TypeVar("T")


class TransientRetry(Protocol):
    def run(self, use_case: str, fn: Callable[[], T]) -> T:
        """``fn()``, run again while the store's error says "try again"; raises
        :class:`~resim.errors.Unavailable` when it still cannot serve it."""
        ...


class RunOnce:
    """No retry: for stores without passing errors (the in-memory one)."""

    def run(self, use_case: str, fn: Callable[[], T]) -> T:
        return fn()


def retry_transient(
    fn: Callable[Concatenate[ServiceContext, P], T],
) -> Callable[Concatenate[ServiceContext, P], T]:
    """Run the use case ``fn(ctx, ...)`` through ``ctx.retry``."""

    @functools.wraps(fn)
    def wrapper(ctx: ServiceContext, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return ctx.retry.run(fn.__name__, lambda: fn(ctx, *args, **kwargs))

    return wrapper
