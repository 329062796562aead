"""The scale-out benchmark's load generator, its own process: ``python -m benchmarks.scale_out_load SPEC``.

SPEC is a JSON file: ``host``, ``port``, ``path``, ``headers`` (sent on every request), ``params`` (the
SendMessage params; each request gets a fresh ``messageId``), ``expect`` (text every good answer holds),
``concurrency``, ``warmup_seconds``, ``seconds`` and ``max_requests``. It opens ``concurrency``
HTTP/1.1 keep-alive connections, each with one request in flight at a time (a closed loop), warms up,
then measures until ``seconds`` have passed or ``max_requests`` answers came back. It prints one line
``{"phase": "measuring"}`` when the window opens (so the caller can read CPU counters then) and one
JSON line with the results when it closes. A connection the server closes (``Connection: close``, or
nginx's limit of requests per connection) is reopened without counting an error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

TIMEOUT_SECONDS = 10.0


@dataclass
class Tally:
    """What the window saw, and when it ends."""

    opens: float
    closes: float
    max_requests: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    done: bool = False

    def add(self, started: float, finished: float, ok: bool, error: str = "") -> None:
        if finished > self.closes:
            self.done = True
        if started < self.opens or finished > self.closes:
            return  # warm-up, or an answer that came after the window
        if not ok:
            self.errors += 1
            self.first_error = self.first_error or error
            return
        self.latencies_ms.append((finished - started) * 1000)
        if len(self.latencies_ms) >= self.max_requests:
            self.closes, self.done = finished, True


class Requests:
    """SendMessage requests as bytes, each with its own messageId."""

    def __init__(self, spec: dict[str, Any]) -> None:
        head = [f"POST {spec['path']} HTTP/1.1", f"Host: {spec['host']}:{spec['port']}"]
        head += [f"{name}: {value}" for name, value in spec["headers"].items()]
        head += ["Content-Type: application/json"]
        self._head = ("\r\n".join(head) + "\r\nContent-Length: ").encode()
        marker = "MESSAGE-ID-HERE"
        params = json.loads(json.dumps(spec["params"]))
        params["message"]["messageId"] = marker
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
        before, after = body.split(marker)
        self._before, self._after = before.encode(), after.encode()
        self._run = os.urandom(4).hex().encode()
        self._count = itertools.count()

    def next(self) -> bytes:
        body = self._before + self._run + b"-%d" % next(self._count) + self._after
        return self._head + b"%d\r\n\r\n" % len(body) + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One response: status, body, and whether the server will close the connection."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    start = head.index(b"\r\ncontent-length:") + len(b"\r\ncontent-length:")
    length = int(head[start : head.index(b"\r\n", start)])
    body = await reader.readexactly(length)
    return status, body, b"\r\nconnection: close" in head


async def connection(spec: dict[str, Any], requests: Requests, tally: Tally) -> None:
    """One keep-alive connection sending a request, waiting for its answer, and again."""
    expect = spec["expect"].encode()
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    clock = time.perf_counter
    try:
        while not tally.done:
            started = clock()
            try:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    if streams is None:
                        streams = await asyncio.open_connection(spec["host"], spec["port"])
                    streams[1].write(requests.next())
                    status, body, closing = await answer(streams[0])
            except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as error:
                tally.add(started, clock(), False, f"{type(error).__name__}: {error}"[:200])
                if streams is not None:
                    streams[1].close()
                streams = None
                await asyncio.sleep(0.05)  # a dead server must not turn this into a busy loop
                continue
            ok = status == 200 and expect in body
            tally.add(started, clock(), ok, "" if ok else f"HTTP {status}: {body[:200]!r}")
            if closing:
                streams[1].close()
                streams = None
    finally:
        if streams is not None:
            streams[1].close()


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    now = time.perf_counter()
    opens = now + spec["warmup_seconds"]
    tally = Tally(opens, opens + spec["seconds"], spec["max_requests"])
    requests = Requests(spec)
    workers = [asyncio.create_task(connection(spec, requests, tally)) for _ in range(spec["concurrency"])]
    await asyncio.sleep(max(0.0, opens - time.perf_counter()))
    print(json.dumps({"phase": "measuring"}), flush=True)
    while not tally.done and time.perf_counter() < tally.closes:
        await asyncio.sleep(0.02)
    tally.done = True
    _, pending = await asyncio.wait(workers, timeout=TIMEOUT_SECONDS + 1)
    for worker in pending:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    ordered = sorted(tally.latencies_ms)
    window = min(tally.closes, time.perf_counter()) - opens
    return {
        "requests": len(ordered),
        "errors": tally.errors,
        "first_error": tally.first_error,
        "window_seconds": window,
        "rps": len(ordered) / window if window > 0 else 0.0,
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    [path] = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(path).read_text())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
