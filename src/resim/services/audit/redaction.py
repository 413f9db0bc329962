"""Personal values the log scrubber is told about while a unit of work handles them (SEC-11).

Shapes (activation codes, e-mail addresses, tokens) are recognised by
``resim.entrypoints.logs.scrub`` on their own. A name, or a MatchingID an
SM-DP+ made in its own format, has no shape: whoever handles one *tells*
this module, and every log line written inside the same :func:`scope` has
that value masked. The job runner opens one scope per job, so a job's
retry, crash and dead-letter lines never carry the name or address of the
message it was sending.

The values live in a context variable: one thread's (or task's) values never
mask, or leak into, another's. :func:`tell` outside a scope does nothing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar

MASK = "[redacted]"
_MIN_LENGTH = 2  # shorter values would mask letters inside ordinary words
_MAX_VALUES = 64  # a scope is one job or one request, never a bulk import

_told: ContextVar[list[str] | None] = ContextVar("resim_told_values", default=None)


@contextlib.contextmanager
def scope(*values: str | None) -> Iterator[None]:
    """Mask ``values``, and whatever is :func:`tell`-ed, in log lines written inside."""
    token = _told.set([])
    try:
        tell(*values)
        yield
    finally:
        _told.reset(token)


def tell(*values: str | None) -> None:
    """Add ``values`` (None and very short ones are ignored) to the current scope."""
    current = _told.get()
    if current is None:
        return
    for value in values:
        text = (value or "").strip()
        if len(text) >= _MIN_LENGTH and text not in current and len(current) < _MAX_VALUES:
            current.append(text)


def told() -> tuple[str, ...]:
    """The values told in the current scope (empty outside one)."""
    return tuple(_told.get() or ())


def mask_told(text: str) -> str:
    """``text`` with every told value masked where it stands as a whole word."""
    values = _told.get()
    if not values or not text:
        return text
    # Longest first, so "Karen Blixen" is masked whole before "Karen" alone.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", MASK, text)
    return text
