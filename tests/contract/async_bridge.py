"""Drive an async adapter from the synchronous contract cases.

``Blocking(adapter)`` looks like the synchronous port: each coroutine method
runs to completion on a private event loop (kept for the adapter's life, since
its connections belong to that loop). So the async variants
(``AsyncHttpEs2Client``, ``AsyncHttpSmsGateway``, ``AsyncSmtpMailer`` and the
async fakes) pass exactly the cases the synchronous ones pass.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any


class Blocking:
    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.adapter, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self._loop.run_until_complete(attr(*args, **kwargs))
        return attr

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.adapter.aclose())
            self._loop.close()
