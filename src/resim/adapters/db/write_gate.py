"""One writer at a time on a SQLite file, handed over at once (not polled for).

SQLite lets one connection write at a time. A connection that finds the write
lock taken waits in SQLite's busy handler, which sleeps and tries again: 1, 2,
5, 10, 15, 20, 25, 25, 25, 50, 50 ms, then 100 ms between tries. While the
API and the worker both write, a waiter therefore sleeps on after the lock
was freed, up to 100 ms, and the lock often lies idle while both wait. In the
bench (``python -m resim.bench --db sqlite``) the worker's database thread
spent more than half of its transaction time in ``BEGIN IMMEDIATE`` this way,
and the API's request threads lost far more; the worker's jobs waited for it
in turn.

:class:`WriteGate` queues writers where a release wakes the next one at once:
a thread first takes the gate's lock in its process (one writer per process
and engine goes on), then an exclusive ``flock`` on a lock file beside the
database (``<database>-writer.lock``; the kernel wakes a waiter the moment the
holder lets go), and only then ``BEGIN IMMEDIATE``, which now finds the write
lock free unless a process without the gate (the ``sqlite3`` shell, a
migration) holds it; SQLite's own lock and busy handler stay the rule for
those. The gate is let go when the transaction ends (commit, rollback, or the
connection closes).

Measured with ``python -m resim.bench --db sqlite`` on a host shared with
other work: without the gate the worker's one database thread lost the lock
to the API's many polling threads (5-8.5 s per 300 replacements in ``BEGIN
IMMEDIATE``, 40-55 % of its transaction time; the API's threads 68-115 s of
thread time), so jobs waited 3-5 s from due to their first peer call; with
it, writers take turns (a job's due -> first call p50 0.1-1.5 s; a
replacement's p50 at 600 on a quiet host 2.6 s instead of 17.7 s). The
throughput stays what the lock allows (33.3 vs 30.9 replacements/s, quiet
host, 600): the write lock is then held about 100 % of the run, half of that
time running Python inside the API's and the worker's transactions. Two
processes of four threads writing short transactions: 2.5-3.2 s with the
gate, 3.0-7.1 s without.

The gate only orders writers who would otherwise wait for each other; it
never lets a write through that SQLite would refuse. Waits stay bounded as
before: a writer waits at the gate at most the engine's lock timeout and is
then told the database is busy (the error SQLite gives after its busy
timeout); a thread that already holds a gate (a write transaction opened
inside another one) skips it, so it never waits for itself.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: no gate, SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

KEEPER_IDLE_SECONDS = 10.0  # a keeper thread with no waiter for this long ends

_holding: dict[int, int] = {}  # thread id -> gates it holds (re-entry skips the gate)
_holding_lock = threading.Lock()


def lock_path(database: str | None) -> str | None:
    """The lock file of a SQLite database path; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writer.lock"


class WriteGate:
    """The writers' queue of one engine on one SQLite file (module docstring).

    A holder has the file open (``_fd``) with an exclusive ``flock`` on it;
    closing the file lets the lock go. While another process holds it, a keeper
    thread waits for it in a blocking ``flock`` (woken by the kernel the moment
    it is let go) on the waiter's file, and hands it over; the waiter waits
    for the keeper no longer than the lock timeout. The keeper ends after
    :data:`KEEPER_IDLE_SECONDS` without a waiter; nothing stays open between
    transactions.
    """

    def __init__(self, path: str, *, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._mutex = threading.Lock()  # one holder or waiter per process and engine
        self._fd: int | None = None  # the holder's open lock file
        self._handover = threading.Condition()  # with the keeper thread
        self._keeper: threading.Thread | None = None
        self._wanted: int | None = None  # the waiter's file, for the keeper to lock
        self._taken = False  # the keeper locked it for the waiter
        self._keeping: int | None = None  # the file the keeper is locking now
        self._failed = False  # the keeper could not lock the waiter's file

    def acquire(self) -> str:
        """Wait for the gate: "held"; "skip" (go on without it: this thread holds
        a gate already, or no lock file can be had); "timeout" (waited the lock
        timeout: the database is busy, as SQLite would have said)."""
        if fcntl is None:
            return "skip"
        if os.getpid() != self._pid:  # a forked child: its own lock, files and keeper
            self._reset()
        me = threading.get_ident()
        with _holding_lock:
            if _holding.get(me):
                return "skip"
        deadline = time.monotonic() + self._timeout
        if not self._mutex.acquire(timeout=self._timeout):
            return "timeout"
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # no lock file (its directory is gone): SQLite decides
            self._mutex.release()
            return "skip"
        got = self._flock(fd, deadline)
        if got != "held":
            self._mutex.release()
            return got
        self._fd = fd
        with _holding_lock:
            _holding[me] = _holding.get(me, 0) + 1
        return "held"

    def _flock(self, fd: int, deadline: float) -> str:
        assert fcntl is not None
        with self._handover:
            if self._keeping is None:  # else a lock the keeper takes could be ours
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return "held"
                except BlockingIOError:
                    pass
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._keep, name="resim-write-gate", daemon=True
                )
                self._keeper.start()
            self._wanted = fd
            self._handover.notify_all()
            while not self._taken:
                if self._failed:
                    self._failed = False
                    return "skip"
                left = deadline - time.monotonic()
                if left <= 0:  # the keeper closes the file (``fd``) when flock returns
                    self._wanted = None
                    return "timeout"
                self._handover.wait(left)
            self._taken = False
            self._wanted = None
            self._handover.notify_all()
            return "held"

    def _keep(self) -> None:
        """The keeper thread (see the class docstring)."""
        assert fcntl is not None
        while True:
            with self._handover:
                if self._wanted is None:
                    self._handover.wait(KEEPER_IDLE_SECONDS)
                    if self._wanted is None:
                        self._keeper = None
                        return
                fd = self._keeping = self._wanted
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                locked = True
            except OSError:  # the waiter goes on without the gate
                locked = False
            with self._handover:
                self._keeping = None
                if self._wanted == fd and not locked:
                    self._wanted = None
                    self._failed = True
                    self._handover.notify_all()
                    os.close(fd)
                elif self._wanted == fd:
                    self._taken = True
                    self._handover.notify_all()
                    while self._taken:  # until the waiter has it
                        self._handover.wait()
                else:  # its waiter gave up: let the lock go
                    os.close(fd)

    def release(self, owner: int) -> None:
        """Let the next writer in; ``owner``: the thread that acquired."""
        with _holding_lock:
            left = _holding.get(owner, 0) - 1
            if left > 0:
                _holding[owner] = left
            else:
                _holding.pop(owner, None)
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)  # lets the flock go
        finally:
            self._mutex.release()


class GatedConnection(sqlite3.Connection):
    """A SQLite connection that lets its gate go when its write transaction ends
    (``connect_args={"factory": GatedConnection}``; :func:`enter` takes it)."""

    _gate: WriteGate | None = None
    _gate_owner = 0

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:  # a failed COMMIT: the rollback lets go
                self._let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self._let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._let_go()

    def _let_go(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release(self._gate_owner)


def enter(gate: WriteGate, dbapi_connection: Any) -> bool:
    """Before ``BEGIN IMMEDIATE`` on ``dbapi_connection``: wait for ``gate``.
    False: the lock timeout passed first (the caller reports the database busy)."""
    if not isinstance(dbapi_connection, GatedConnection) or dbapi_connection._gate is not None:
        return True
    got = gate.acquire()
    if got == "held":
        dbapi_connection._gate = gate
        dbapi_connection._gate_owner = threading.get_ident()
    return got != "timeout"


def leave(dbapi_connection: Any) -> None:
    """``BEGIN IMMEDIATE`` failed: let the gate go."""
    if isinstance(dbapi_connection, GatedConnection):
        dbapi_connection._let_go()
