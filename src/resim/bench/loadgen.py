"""A small HTTP/1.1 load generator: ``python -m resim.bench.loadgen``.

Raw asyncio streams with keep-alive connections (uvloop when installed): a
Python HTTP client library would spend more CPU per request than the server
under test. Requests are prepared bytes; each picks a random token and
phone number from the files given.

* ``closed``: ``--connections`` loops, each sends its next request when the
  previous answer is in. Throughput is the server's maximum (with this load
  generator on the same machine).
* ``open``: requests are due at a fixed ``--rate``; each is sent on a free
  connection of a pool (``--connections``), and its latency is measured from
  when it was *due*, so a stalled server shows in the percentiles instead of
  slowing the generator down (no coordinated omission).

Prints one JSON object: requests, seconds, throughput, status counts, and
latency percentiles in milliseconds. The first ``--warmup`` seconds are not
recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


def build_requests(
    host: str, path: str, tokens: list[str], numbers: list[str], body_template: str, count: int
) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for _ in range(count):
        body = body_template.replace("{number}", rng.choice(numbers)).encode()
        out.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {rng.choice(tokens)}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tokens = Path(args.tokens).read_text().split()
    numbers = Path(args.numbers).read_text().split() if args.numbers else ["+4520000000"]
    prepared = build_requests(f"{host}:{port}", url.path, tokens, numbers, args.body, count=4096)
    conns = [
        Connection(*await asyncio.open_connection(host, port)) for _ in range(args.connections)
    ]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution
    start = clock()
    record_from = start + args.warmup
    stop_at = record_from + args.duration
    recorded = 0  # due (sent) inside the window: their latencies are recorded
    completed = 0  # answered inside the window: the throughput

    def note(status: int, due: float, done: float) -> None:
        nonlocal recorded, completed
        if record_from <= due < stop_at:
            statuses[status] += 1
            latencies.append(done - due)
            recorded += 1
        if record_from <= done < stop_at:
            completed += 1

    if args.mode == "closed":

        async def loop_on(conn: Connection, offset: int) -> None:
            i = offset
            while clock() < stop_at:
                sent = clock()
                status = await conn.exchange(prepared[i % len(prepared)])
                note(status, sent, clock())
                i += 7

        await asyncio.gather(*(loop_on(c, n) for n, c in enumerate(conns)))
        elapsed = args.duration
    else:
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for c in conns:
            idle.put_nowait(c)
        pending: set[asyncio.Task[None]] = set()

        async def one(due: float, request: bytes) -> None:
            conn = await idle.get()
            try:
                status = await conn.exchange(request)
            finally:
                idle.put_nowait(conn)
            note(status, due, clock())

        interval = 1.0 / args.rate
        n = 0
        while True:
            due = start + n * interval
            if due >= stop_at:
                break
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)  # sleeps are coarse; the latency counts from due
            task = asyncio.create_task(one(due, prepared[n % len(prepared)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        if pending:
            await asyncio.wait(pending, timeout=30)
        elapsed = args.duration
    for c in conns:
        c.writer.close()
    return {
        "mode": args.mode,
        "path": url.path,
        "requests": recorded,
        "seconds": elapsed,
        "throughput": round(completed / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m resim.bench.loadgen")
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=["open", "closed"], default="closed")
    p.add_argument("--rate", type=float, default=1000.0, help="open loop: requests per second")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--tokens", required=True, help="file: one bearer token per line")
    p.add_argument("--numbers", default=None, help="file: one phone number per line")
    p.add_argument("--body", default='{"phoneNumber": "{number}"}')
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio works too, a little slower
        pass
    start = time.perf_counter()
    result = asyncio.run(run(args))
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
