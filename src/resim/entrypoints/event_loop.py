"""The event loop resim's long-running processes run on.

uvloop where it is installed (uvicorn's ``standard`` extra, a dependency of
resim, brings it on Linux and macOS; uvicorn already runs the API on it),
else asyncio's own loop. The worker and the bench spend a good part of their
CPU in the loop itself (polling sockets, scheduling callbacks, reading and
writing): uvloop does that in C. What runs on the loop is the same on either.
"""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when available, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # not on every platform (Windows, PyPy)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
