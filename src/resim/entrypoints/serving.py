"""Running ASGI apps with uvicorn: in the foreground (CLI) or in a thread (demo, tests)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class ServerThread:
    """Serve ``app`` on ``host:port`` (0 = a free port) in a daemon thread.

    ``tls``: uvicorn's TLS options, as :func:`resim.entrypoints.tls.server_tls_options`
    makes them (then ``url`` starts with ``https://``).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        tls: dict[str, Any] | None = None,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        config = uvicorn.Config(
            app,
            log_level=log_level,
            log_config=None,  # resim's handler (entrypoints/logs.py)
            lifespan="off",
            timeout_graceful_shutdown=2,
            access_log=False,
            # X-Forwarded-For is resim's to judge (RESIM_TRUSTED_PROXIES,
            # resim.entrypoints.api.forwarded); uvicorn would trust 127.0.0.1.
            proxy_headers=False,
            **(tls or {}),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
