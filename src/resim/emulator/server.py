"""Running the emulator: ``serve_emulator`` for the CLI, ``AppThread`` for tests.

``serve_emulator`` blocks in uvicorn until interrupted (Ctrl-C / SIGTERM).
``AppThread`` runs any ASGI app on a free loopback port in a background thread
(plain HTTP, or HTTPS with optional client certificates) and stops it cleanly
on exit; ``EmulatorThread`` is an AppThread with a core and the emulator app
built from an :class:`EmulatorConfig`::

    with EmulatorThread(EmulatorConfig(), stock={"esim-std": 5}) as smdp:
        client = HttpEs2Client(smdp.url, "resim")
        smdp.core.profiles()
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from resim.emulator.app import EmulatorConfig, build_emulator_app
from resim.emulator.core import SmdpCore


def build_core(config: EmulatorConfig, stock: dict[str, int] | None = None) -> SmdpCore:
    """A core matching ``config`` (address, requester ids), stocked with generated ICCIDs."""
    core = SmdpCore(
        smdp_address=config.smdp_address,
        smdp_id=config.requester_id,
        allowed_requesters=config.allowed_requesters or None,
    )
    for profile_type, count in (stock or {}).items():
        core.add_generated_stock(profile_type, count)
    return core


def serve_emulator(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8700,
    stock: dict[str, int] | None = None,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    ssl_ca_certs: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the emulator until interrupted. With ``ssl_ca_certs`` client certificates
    are required (mutual TLS as ES2+ expects); without TLS files it serves plain HTTP.
    """
    core = build_core(config, stock)
    options = _ssl_options(ssl_certfile, ssl_keyfile, ssl_ca_certs)
    uvicorn.run(
        build_emulator_app(core, config),
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # records go through resim's handler (entrypoints/logs.py)
        lifespan="off",
        timeout_graceful_shutdown=2,
        **options,
    )


def _ssl_options(certfile: str | None, keyfile: str | None, ca_certs: str | None) -> dict[str, Any]:
    """uvicorn TLS options: none without ``certfile``; client certificates
    required (``CERT_REQUIRED``) when ``ca_certs`` is given."""
    options: dict[str, Any] = {}
    if certfile:
        options.update(ssl_certfile=certfile, ssl_keyfile=keyfile)
        if ca_certs:
            options.update(ssl_ca_certs=ca_certs, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


class AppThread:
    """Serve ``app`` on ``127.0.0.1:<free port>`` in a daemon thread.

    ``start()`` returns once the server accepts connections (or raises after
    ``startup_timeout``); ``stop()`` asks uvicorn to exit, cancels requests still
    running after ``graceful_s`` (a held "timeout" fault) and joins the thread.

    With ``ssl_certfile`` (and ``ssl_keyfile``) it serves HTTPS and ``url``
    starts with ``https://``; with ``ssl_ca_certs`` as well, every client must
    present a certificate issued by that CA (ES2+ mutual TLS), else the TLS
    handshake fails before any request reaches ``app``.
    """

    def __init__(
        self,
        app: Any,
        *,
        graceful_s: int = 1,
        startup_timeout: float = 10.0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
    ) -> None:
        if ssl_ca_certs and not ssl_certfile:
            raise ValueError("ssl_ca_certs needs ssl_certfile: client certificates need TLS")
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only
        # then, and without it every answer waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        scheme = "https" if ssl_certfile else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            log_config=None,  # resim's handler (entrypoints/logs.py)
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=graceful_s,
            **_ssl_options(ssl_certfile, ssl_keyfile, ssl_ca_certs),
        )
        # uvicorn leaves signal handlers alone outside the main thread.
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._startup_timeout = startup_timeout

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start on loopback")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> AppThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorThread(AppThread):
    """The emulator app on a free loopback port; ``.core`` is the live SmdpCore."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        core: SmdpCore | None = None,
        stock: dict[str, int] | None = None,
        graceful_s: int = 1,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.core = core if core is not None else build_core(self.config)
        for profile_type, count in (stock or {}).items():
            self.core.add_generated_stock(profile_type, count)
        super().__init__(
            build_emulator_app(self.core, self.config),
            graceful_s=graceful_s,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_ca_certs=ssl_ca_certs,
        )

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self
