"""Lean HTTP/1.1 keep-alive load generator for A2A SendMessage calls, meant to run on uvloop.

A general-purpose client (httpx, aiohttp) costs more CPU per request than the servers under test,
and on a 2-core machine the client shares the cores with the server, so this one does the minimum:
one pre-built request template, raw asyncio streams, and a parser for the status line and
Content-Length only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COMPLETED = b"TASK_STATE_COMPLETED"
_CONTENT_LENGTH = b"\r\ncontent-length:"


@dataclass(frozen=True)
class Target:
    """Where to send requests and what every successful response body must contain."""

    host: str
    port: int
    path: str = "/a2a"
    expect: bytes | None = COMPLETED


class RequestFactory:
    """Builds SendMessage request bytes with a unique messageId per call, without JSON encoding."""

    def __init__(self, target: Target, text: str = "hello") -> None:
        run_id = os.urandom(6).hex().encode()
        self._head = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            "A2A-Version: 1.0\r\nContent-Type: application/json\r\nContent-Length: "
        ).encode()
        self._body_start = (
            b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"bench-'
            + run_id
            + b"-"
        )
        self._body_end = b'","role":"ROLE_USER","parts":[{"text":"' + text.encode() + b'"}]}}}'
        self._counter = itertools.count()

    def next_request(self) -> bytes:
        """Return the next request; the counter keeps messageIds unique across all connections."""
        body = self._body_start + b"%d" % next(self._counter) + self._body_end
        return self._head + b"%d\r\n\r\n" % len(body) + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one response, returning its status code and body; needs a Content-Length framed body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    start = lower.find(_CONTENT_LENGTH)
    if start < 0:
        raise ValueError("response without Content-Length")
    start += len(_CONTENT_LENGTH)
    end = lower.index(b"\r\n", start)
    body = await reader.readexactly(int(head[start:end]))
    return status, body


async def probe(target: Target, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send one SendMessage on a fresh connection and return (status, body)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(RequestFactory(target).next_request())
            return await read_response(reader)
        finally:
            writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadResult:
    """What one measurement window produced."""

    concurrency: int
    requests: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(repr=False)
    server_cpu_s: float | None = None  # CPU the server used during the window, when it could be read

    @property
    def rps(self) -> float:
        """Successful requests per second over the measurement window."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Raw numbers for printing or JSON, without the per-request latencies."""
        ordered = sorted(self.latencies_ms)
        cpu = self.server_cpu_s
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(percentile(ordered, 0.50), 3),
            "p99_ms": round(percentile(ordered, 0.99), 3),
            "max_ms": round(ordered[-1], 3) if ordered else math.nan,
            "server_cpu_pct": round(100 * cpu / self.elapsed_s, 1) if cpu is not None else None,
            "server_cpu_us_per_req": round(1e6 * cpu / self.requests, 1)
            if cpu is not None and self.requests
            else None,
        }


class _Window:
    """Shared bookkeeping: which completions fall inside the measurement window, and when to stop."""

    def __init__(self, measure_start: float, measure_end: float, max_requests: int) -> None:
        self.measure_start = measure_start
        self.measure_end = measure_end
        self.max_requests = max_requests
        self.stop = False
        self.latencies_ms: list[float] = []
        self.errors = 0

    def record(self, started: float, finished: float, ok: bool) -> None:
        """Count a completion only if it started and ended inside the window, so warm-up is excluded."""
        if started < self.measure_start or finished > self.measure_end:
            if finished > self.measure_end:
                self.stop = True
            return
        if not ok:
            self.errors += 1
            return
        self.latencies_ms.append((finished - started) * 1000.0)
        if len(self.latencies_ms) >= self.max_requests:
            # The count bound ends the window early; throughput is computed over the shortened window.
            self.measure_end = finished
            self.stop = True


async def _worker(target: Target, factory: RequestFactory, window: _Window, timeout: float) -> None:
    """Run one keep-alive connection, one request in flight, until the window says stop."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    expect = target.expect
    clock = time.perf_counter
    try:
        while not window.stop:
            started = clock()
            try:
                async with asyncio.timeout(timeout):
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(target.host, target.port)
                    writer.write(factory.next_request())
                    status, body = await read_response(reader)
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.LimitOverrunError):
                # A broken or hung connection is an error; reconnect, after a pause so a dead
                # server does not turn this loop into a busy spin.
                window.record(started, clock(), ok=False)
                if writer is not None:
                    writer.close()
                writer = reader = None
                await asyncio.sleep(0.05)
                continue
            ok = status == 200 and (expect is None or expect in body)
            window.record(started, clock(), ok)
    finally:
        if writer is not None:
            writer.close()


async def run_load(
    target: Target,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    max_requests: int = 2_000_000,
    timeout: float = 5.0,
    server_cpu: Callable[[], float | None] | None = None,
) -> LoadResult:
    """Warm up, then measure for `duration` seconds (or until `max_requests`) at a fixed concurrency.

    `server_cpu`, if given, returns the server's cumulative CPU seconds; it is read at both ends of
    the window so the result can say whether the server was CPU-bound or waiting.
    """
    factory = RequestFactory(target)
    now = time.perf_counter()
    window = _Window(now + warmup, now + warmup + duration, max_requests)
    workers = [asyncio.create_task(_worker(target, factory, window, timeout)) for _ in range(concurrency)]
    await asyncio.sleep(max(0.0, window.measure_start - time.perf_counter()))
    cpu_start = server_cpu() if server_cpu else None
    # Workers stop themselves on the first completion past the window; the sleep covers the case
    # where none completes (a hung server), and the timed wait bounds the in-flight stragglers.
    while not window.stop and time.perf_counter() < window.measure_end:
        await asyncio.sleep(min(0.05, max(0.0, window.measure_end - time.perf_counter())))
    cpu_end = server_cpu() if server_cpu else None
    window.stop = True
    _, pending = await asyncio.wait(workers, timeout=timeout + 1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return LoadResult(
        concurrency=concurrency,
        requests=len(window.latencies_ms),
        errors=window.errors,
        elapsed_s=window.measure_end - window.measure_start,
        latencies_ms=window.latencies_ms,
        server_cpu_s=cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None,
    )


def main() -> None:
    """Load one already running server from the command line and print the summary."""
    import uvloop

    parser = argparse.ArgumentParser(description="Send A2A 1.0 SendMessage load to a running server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/a2a")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--any-200", action="store_true", help="accept any 200 body (for the ceiling)")
    args = parser.parse_args()
    target = Target(args.host, args.port, args.path, None if args.any_200 else COMPLETED)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run_load(target, args.concurrency, args.duration, args.warmup))
    print(result.summary())


if __name__ == "__main__":
    main()
