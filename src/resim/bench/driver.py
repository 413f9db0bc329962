"""The load: a BSS opening requests in bulk, customers and phones reacting to their mail.

Everything goes through the public interfaces over HTTP, as in production:

- the BSS posts ``POST /v1/requests`` for every line, ``create_concurrency``
  at a time;
- when the one-time code mail for a request reaches the mail sink, the
  customer posts it to ``/v1/requests/{id}/verification`` (the risk engine
  approves in that call);
- when the "your eSIM is ready" mail arrives, the phone fetches the
  activation code (``GET /v1/requests/{id}/activation``) and installs it at
  the emulator (``POST /emulator/phone/install``, :data:`PHONES` at a time,
  on keep-alive connections), which sends the
  handleDownloadProgressInfo callbacks to the API before it answers;
- a replacement is finished when its "completed" mail has arrived and all
  of its :data:`EXPECTED_MAILS` have.

HTTP goes through :class:`~resim.emulator.leanhttp.LeanClient`, which spends
far less CPU per call than httpx: the driver's CPU is not resim's.

Times are ``time.monotonic()`` seconds, taken on this process's event loop
(HTTP) or in the mail sink's thread (mail arrival).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from resim.bench.delivery import Delivered
from resim.emulator.leanhttp import HttpError, LeanClient

PHONES = 64  # installs in flight at once

EXPECTED_MAILS = frozenset(
    {"replacement_requested", "one_time_code", "esim_ready", "replacement_completed"}
)


@dataclass
class Timeline:
    """One replacement as the outside world saw it."""

    request_id: str
    msisdn: str = ""
    create_sent: float | None = None
    created: float | None = None
    code_mail: float | None = None
    verified: float | None = None
    ready_mail: float | None = None
    installed: float | None = None
    done_mail: float | None = None
    mails: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    counted: bool = False
    session_token: str | None = None  # the customer's, from verification (reads activation)

    @property
    def finished(self) -> bool:
        return self.done_mail is not None and set(self.mails) >= EXPECTED_MAILS

    @property
    def finished_at(self) -> float | None:
        return max(self.mails.values()) if self.finished else None


@dataclass
class DriverResult:
    timelines: list[Timeline]
    started: float
    ended: float
    errors: list[str]
    timed_out: bool
    unacknowledged_callbacks: list[str] = field(default_factory=list)


class Driver:
    def __init__(
        self,
        *,
        api_url: str,
        emulator_url: str,
        msisdns: list[str],
        create_concurrency: int,
        reason: str = "device_change",
        api_key: str = "",
    ) -> None:
        self._api_url = api_url
        self._bss = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._emulator_url = emulator_url
        self._msisdns = msisdns
        self._create_concurrency = create_concurrency
        self._reason = reason
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_id: dict[str, Timeline] = {}
        self._verified: dict[str, asyncio.Event] = {}
        self._errors: list[str] = []
        self._unacknowledged: list[str] = []  # installs whose callbacks got no answer
        self._finished = 0
        self._all_done = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._api: LeanClient | None = None
        self._phone: LeanClient | None = None
        self._progress = 0.0  # when the last mail arrived
        self._phones = asyncio.Semaphore(PHONES)

    # -------------------------------------------------------- mail (sink thread)

    def on_mail(self, delivered: Delivered) -> None:
        """Called by the mail sink's thread for every message it stored."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._mail_arrived, delivered)

    def _mail_arrived(self, d: Delivered) -> None:
        self._progress = d.at
        tl = self._timeline(d.request_id)
        tl.mails.setdefault(d.kind, d.at)
        if d.kind == "one_time_code":
            tl.code_mail = d.at
            if d.code is None:
                self._fail(tl, "no code found in the one-time code mail")
            else:
                self._spawn(self._verify(tl, d.code))
        elif d.kind == "esim_ready":
            tl.ready_mail = d.at
            self._spawn(self._install(tl))
        elif d.kind == "replacement_completed":
            tl.done_mail = d.at
        self._check_finished(tl)

    def _check_finished(self, tl: Timeline) -> None:
        if tl.finished and tl.error is None and not tl.counted:
            tl.counted = True
            self._finished += 1
            if self._finished >= len(self._msisdns):
                self._all_done.set()

    # -------------------------------------------------------- the actors

    def _timeline(self, request_id: str) -> Timeline:
        tl = self._by_id.get(request_id)
        if tl is None:
            tl = self._by_id[request_id] = Timeline(request_id)
        return tl

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, tl: Timeline, why: str) -> None:
        tl.error = tl.error or why
        self._errors.append(f"{tl.request_id or tl.msisdn}: {why}")
        self._answered(tl).set()  # nobody waits for an answer that will not come

    def _answered(self, tl: Timeline) -> asyncio.Event:
        """Set once the customer's verification was answered (or failed)."""
        event = self._verified.get(tl.request_id)
        if event is None:
            event = self._verified[tl.request_id] = asyncio.Event()
        return event

    async def _create(self, msisdn: str, gate: asyncio.Semaphore) -> None:
        assert self._api is not None
        async with gate:
            sent = asyncio.get_running_loop().time()
            try:
                resp = await self._api.post(
                    "/v1/requests",
                    json={"msisdn": msisdn, "reason": self._reason, "actor": "bench-bss"},
                    headers=self._bss,
                )
            except HttpError as exc:
                self._errors.append(f"{msisdn}: create: {type(exc).__name__}")
                return
            if resp.status_code != 201:
                self._errors.append(f"{msisdn}: create: HTTP {resp.status_code} {resp.text[:200]}")
                return
            tl = self._timeline(resp.json()["id"])
            tl.msisdn, tl.create_sent = msisdn, sent
            tl.created = asyncio.get_running_loop().time()

    async def _verify(self, tl: Timeline, code: str) -> None:
        assert self._api is not None
        try:
            resp = await self._api.post(
                f"/v1/requests/{tl.request_id}/verification", json={"otp": code}
            )
        except HttpError as exc:
            self._fail(tl, f"verify: {type(exc).__name__}")
            return
        tl.verified = asyncio.get_running_loop().time()
        body = resp.json() if resp.status_code == 200 else {}
        if body.get("state") == "approved":
            tl.session_token = body.get("session_token")
        else:
            self._fail(tl, f"verify: HTTP {resp.status_code} {resp.text[:200]}")
        self._answered(tl).set()

    async def _install(self, tl: Timeline) -> None:
        async with self._phones:
            await self._install_now(tl)

    async def _install_now(self, tl: Timeline) -> None:
        assert self._api is not None and self._phone is not None
        # The "ready" mail can overtake the answer to the customer's verification
        # (the worker orders the eSIM as soon as the approval commits, while the
        # API still issues the session): the customer reads the activation code
        # with that session, so wait for it as a customer would.
        if tl.verified is None and tl.error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered(tl).wait(), 120)
        if tl.error is not None:
            return
        try:
            act = await self._api.get(
                f"/v1/requests/{tl.request_id}/activation",
                headers={"Authorization": f"Bearer {tl.session_token}"},
            )
            if act.status_code != 200:
                self._fail(tl, f"activation: HTTP {act.status_code} {act.text[:200]}")
                return
            resp = await self._phone.post(
                "/emulator/phone/install", json={"activation_code": act.json()["qr_payload"]}
            )
        except HttpError as exc:
            self._fail(tl, f"install: {type(exc).__name__}")
            return
        tl.installed = asyncio.get_running_loop().time()
        body = resp.json() if resp.status_code == 200 else {}
        callbacks = body.get("callbacks", [])
        if not callbacks:
            self._fail(tl, f"install: HTTP {resp.status_code} {resp.text[:200]}")
        elif not all(c.get("delivered") for c in callbacks):
            # The emulator gave up waiting for the API's answer (3 x 5 s) but the
            # API may still have acted on it: the replacement is lost only if its
            # "completed" mail never comes. Reported, not counted as a failure.
            self._unacknowledged.append(f"{tl.request_id}: {json.dumps(callbacks)[:200]}")

    # -------------------------------------------------------- the run

    async def _wait(self, timeout: float, stall: float) -> bool:
        """Until all are finished (True), ``timeout`` passed or no mail came for ``stall`` s."""
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        self._progress = self._loop.time()
        while self._loop.time() < deadline:
            try:
                await asyncio.wait_for(self._all_done.wait(), 1.0)
                return True
            except TimeoutError:
                if self._loop.time() - self._progress > stall:
                    self._errors.insert(0, f"stalled: no mail for {stall:.0f} s")
                    return False
        self._errors.insert(0, f"timed out after {timeout:.0f} s")
        return False

    async def run(self, *, timeout: float, stall: float = 30.0) -> DriverResult:
        """Open every request and wait until all are finished, ``timeout`` s pass,
        or no mail arrives for ``stall`` s (something is stuck)."""
        self._loop = asyncio.get_running_loop()
        # Keep-alive connections (a lean client: see resim.emulator.leanhttp), reused
        # within 2 s, shorter than the servers' 5 s, so a request never goes out
        # on a connection the server is closing. Phones share a pool too: a fresh
        # connection per install cost the bench and the emulator CPU that is not
        # resim's. Calls beyond the pool wait for a connection.
        async with (
            LeanClient(self._api_url, max_connections=64) as api,
            LeanClient(self._emulator_url, max_connections=PHONES) as ph,
        ):
            self._api, self._phone = api, ph
            gate = asyncio.Semaphore(self._create_concurrency)
            started = self._loop.time()
            creates = [asyncio.ensure_future(self._create(m, gate)) for m in self._msisdns]
            timed_out = not await self._wait(timeout, stall)
            ended = self._loop.time()
            for task in [*creates, *self._tasks]:
                task.cancel()
            await asyncio.gather(*creates, *self._tasks, return_exceptions=True)
        timelines = [tl for tl in self._by_id.values() if tl.create_sent is not None]
        done = [t for t in (tl.finished_at for tl in timelines) if t is not None]
        if done and not timed_out:
            ended = max(done)
        return DriverResult(
            timelines, started, ended, self._errors, timed_out, self._unacknowledged
        )
