"""Request bodies are capped per route (issue 13, finding 3), over real HTTP.

An attacker sent 100 MB bodies to anonymous routes: each was read whole into
memory, eight at once took the process from 222 MB to over a gigabyte. Here
the server runs in this process (a thread), so this process's resident set
(``VmRSS`` in /proc/self/status) is the server's: it is sampled while large
bodies go in, with and without Content-Length, and must stay flat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.es2 import wire
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.api.bodylimit import ES2_LIMIT, FORM_LIMIT
from resim.entrypoints.serving import ServerThread

pytestmark = pytest.mark.integration
__all__ = ["system"]

MIB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)
ES2_PATH = wire.PATH_PREFIX + wire.HANDLE_DOWNLOAD_PROGRESS_INFO


@pytest.fixture
def server(system: System) -> Iterator[ServerThread]:
    running = ServerThread(
        build_app(system.ctx, ApiConfig(callback_token="callback-secret", max_body_bytes=8192))
    ).start()
    yield running
    running.stop()


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class PeakRss:
    """Samples this process's RSS every few milliseconds until stopped."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def body(total: int) -> Iterator[bytes]:
    """``total`` bytes in 64 KiB pieces, made as they are sent (the client holds one)."""
    sent = 0
    while sent < total:
        piece = CHUNK[: total - sent]
        sent += len(piece)
        yield piece


def post_big(url: str, total: int, *, declared: bool) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(total)  # else: chunked
    return httpx.post(url, content=body(total), headers=headers, timeout=30)


class TestLargeBodiesAreRefusedWithoutFillingMemory:
    def test_eight_big_bodies_at_once_get_413_and_the_server_stays_flat(
        self, server: ServerThread
    ) -> None:
        size = 32 * MIB
        targets = [
            ("/v1/requests", True),
            ("/v1/requests", False),
            ("/v1/auth/staff/login", True),
            ("/v1/auth/staff/login", False),
            ("/portal/requests", True),
            ("/portal/requests", False),
            (ES2_PATH, True),
            (ES2_PATH, False),
        ]
        answers: dict[int, int] = {}
        errors: list[BaseException] = []

        def send(i: int, path: str, declared: bool) -> None:
            try:
                answers[i] = post_big(server.url + path, size, declared=declared).status_code
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        httpx.get(server.url + "/health")  # warm: the first request allocates caches
        before = rss_bytes()
        with PeakRss() as rss:
            threads = [
                threading.Thread(target=send, args=(i, path, declared))
                for i, (path, declared) in enumerate(targets)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        # 8 x 32 MiB read into memory would be 256 MiB or more; allow noise.
        grew = rss.peak - before
        assert grew < 24 * MIB, f"RSS grew by {grew / MIB:.1f} MiB while refusing"
        assert errors == []
        assert answers == {i: 413 for i in range(len(targets))}
        assert httpx.get(server.url + "/health").status_code == 200  # still serving

    def test_a_declared_length_is_refused_before_anything_is_read(
        self, server: ServerThread
    ) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            refused = http.post(
                "/v1/requests",
                content=b"{}" + b" " * 9000,
                headers={"content-type": "application/json"},
            )
        assert refused.status_code == 413
        assert refused.json()["code"] == "BODY_TOO_LARGE"
        assert "8192 bytes" in refused.json()["message"]
        assert refused.headers["connection"] == "close"

    def test_a_chunked_body_is_cut_off_when_it_goes_over(
        self, system: System, server: ServerThread
    ) -> None:
        msisdn, _, _, _ = add_line(system, 1)
        padding = " " * 9000
        payload = f'{{"msisdn": "{msisdn}", "reason": "lost"}}{padding}'.encode()
        refused = httpx.post(
            server.url + "/v1/requests",
            content=iter([payload[:4000], payload[4000:]]),  # no Content-Length: chunked
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert refused.status_code == 413
        assert refused.json()["code"] == "BODY_TOO_LARGE"
        with system.ctx.uow() as uow:
            count = uow.session.execute(sa.text("SELECT count(*) FROM replacement_request"))
            assert count.scalar() == 0

    def test_a_body_under_the_limit_goes_through(
        self, system: System, server: ServerThread
    ) -> None:
        msisdn, _, _, _ = add_line(system, 2)
        payload = f'{{"msisdn": "{msisdn}", "reason": "lost"}}'.encode() + b" " * 8000
        answer = httpx.post(
            server.url + "/v1/requests",
            content=iter([payload[:3000], payload[3000:]]),
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

    def test_each_route_answers_413_in_its_own_format(self, server: ServerThread) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            camara = http.post(
                "/sim-swap/v2/check",
                content=b"{" + b" " * 9000 + b"}",
                headers={"content-type": "application/json"},
            )
            assert camara.status_code == 413
            assert camara.json() == {
                "status": 413,
                "code": "BODY_TOO_LARGE",
                "message": camara.json()["message"],
            }
            assert camara.headers.get("x-correlator")  # CAMARA's header, errors included
            es2 = http.post(ES2_PATH, content=b"{" + b" " * ES2_LIMIT + b"}")
            assert es2.status_code == 413
            status = es2.json()["header"]["functionExecutionStatus"]
            assert status["status"] == "Failed"
            assert es2.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
            form = http.post(
                "/portal/start",
                content=b"msisdn=" + b"1" * FORM_LIMIT,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert form.status_code == 413
            # ES2+ bodies may be larger than the JSON default (8 KiB here):
            fits = http.post(ES2_PATH, content=b"{" + b" " * 10_000 + b"}")
            assert fits.status_code == 401  # read, then refused for its missing token
