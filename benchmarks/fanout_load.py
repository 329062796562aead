"""The fan-out benchmark's load generator: S SSE subscribers on raw asyncio streams, in its own process.

Run by ``benchmarks.fanout``: python -m benchmarks.fanout_load SPEC.json

The spec names the server (``host``, ``port``), the shape of its events (``kind``: ``gateway``, the
A2A ``SubscribeToTask`` stream of a ticker task; ``reference``, the baseline's topic stream), one
ready HTTP/1.1 request per topic (``requests``), how many subscribers to open over them in turn
(``subscribers``), how many ticks each topic makes (``count``), how many connections may be opening
at once (``concurrency``), and the time budgets: ``attach_seconds`` to open them all, then
``deadline_seconds`` from the start for every stream to end.

Each subscriber sends its request, reads the chunked SSE body and notes, per event: the snapshot's
last tick (its first event), each tick's number and delivery time (the receive clock minus the tick's
``t``, one machine, one clock), and how the stream ended:

- ``complete``: the terminal event, then the clean end of the chunked body;
- ``error_frame``: an ``event: error`` frame (the server cut the stream short and said so);
- ``clean_end_no_terminal``: a clean end of the body without the terminal event;
- ``eof``: the connection closed mid-body; ``refused``: not a 200 event stream (status in ``http``);
- ``open``: still open at the deadline (closed by us).

A tick is *expected* by a subscriber when its number is above the snapshot's; *seen* once received;
``lost`` counts expected ticks never seen, split by how the stream ended; ``folded`` counts the ticks
a snapshot holds that were made after the subscriber sent its request (never sent to it as events).
The first refusal and the first error frame are kept as samples. The generator prints
``attached N`` once every subscriber has its first event (or the attach budget is spent), then one
JSON line with the counts and the delivery times after that moment (the steady state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvloop

READ_LIMIT = 1 << 20
TERMINAL = frozenset(
    {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}
)


def raise_open_files() -> int:
    """Lift this process's open-file limit to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _snapshot_ticks(value: Any) -> tuple[int, list[float]]:
    """The highest tick number among the data parts of a snapshot's artifacts, and their times."""
    best, times = 0, []
    for artifact in value.get("artifacts") or ():
        for part in artifact.get("parts") or ():
            data = part.get("data")
            if isinstance(data, dict) and isinstance(data.get("n"), int):
                best = max(best, data["n"])
                times.append(float(data["t"]))
    return best, times


def read_gateway(doc: Any) -> tuple[str, Any]:
    """One A2A stream event: ("snapshot", (last n, tick times)) | ("tick", (n, t)) | ("end", state) |
    ("other", None)."""
    result = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(result, dict):
        return "other", None
    if "task" in result:
        return "snapshot", _snapshot_ticks(result["task"])
    update = result.get("artifactUpdate")
    if update is not None:
        data = update["artifact"]["parts"][0]["data"]
        return "tick", (data["n"], data["t"])
    status = result.get("statusUpdate")
    if status is not None and status["status"]["state"] in TERMINAL:
        return "end", status["status"]["state"]
    return "other", None


def read_reference(doc: Any) -> tuple[str, Any]:
    """One baseline stream event, in the same terms as :func:`read_gateway`."""
    if "snapshot" in doc:
        return "snapshot", (doc["snapshot"], doc["times"])
    if "n" in doc:
        return "tick", (doc["n"], doc["t"])
    if doc.get("end"):
        return "end", "end"
    return "other", None


READERS = {"gateway": read_gateway, "reference": read_reference}


@dataclass
class Totals:
    """What every subscriber saw, summed."""

    count: int
    steady_from: float = float("inf")
    latencies: array[float] = field(default_factory=lambda: array("d"))
    attach_waits: array[float] = field(default_factory=lambda: array("d"))
    folded: int = 0
    refusal: str = ""
    error_sample: str = ""
    terminal_states: Counter[str] = field(default_factory=Counter)
    ends: Counter[str] = field(default_factory=Counter)
    http: Counter[str] = field(default_factory=Counter)
    expected: int = 0
    seen: int = 0
    duplicates: int = 0
    lost_by_end: Counter[str] = field(default_factory=Counter)
    streams_with_loss_by_end: Counter[str] = field(default_factory=Counter)
    attached: int = 0


class Subscriber:
    """One stream's reader (module doc)."""

    __slots__ = ("end", "last", "seen", "sent_at", "snap", "terminal")

    def __init__(self) -> None:
        self.sent_at = 0.0
        self.snap: int | None = None
        self.last = 0
        self.seen = 0
        self.end = "open"
        self.terminal = False

    async def run(self, spec: dict[str, Any], request: bytes, totals: Totals, first: asyncio.Event) -> None:
        """Open, read to the end, count."""
        writer = None
        try:
            reader, writer = await asyncio.open_connection(spec["host"], spec["port"], limit=READ_LIMIT)
            self.sent_at = time.time()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1].decode()
            if status != "200" or b"text/event-stream" not in head.lower():
                self.end = "refused"
                totals.http[status] += 1
                if not totals.refusal:
                    totals.refusal = (head + await reader.read(300)).decode("latin-1")[-500:]
                return
            await self._body(reader, READERS[spec["kind"]], totals, first)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.end = "eof" if self.end == "open" else self.end
        finally:
            first.set()
            if writer is not None:
                writer.close()
            self._count(totals)

    async def _body(
        self, reader: asyncio.StreamReader, read: Any, totals: Totals, first: asyncio.Event
    ) -> None:
        pending = b""
        event_name = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                if self.end == "open":
                    self.end = "complete" if self.terminal else "clean_end_no_terminal"
                return
            chunk = await reader.readexactly(size + 2)
            now = time.time()
            pending += chunk[:-2].replace(b"\r\n", b"\n")  # either line end
            while True:
                cut = pending.find(b"\n\n")
                if cut < 0:
                    break
                frame, pending = pending[:cut], pending[cut + 2 :]
                data = b""
                event_name = b""
                for line in frame.split(b"\n"):
                    if line.startswith(b"data:"):
                        data = line[5:].lstrip(b" ")
                    elif line.startswith(b"event:"):
                        event_name = line[6:].strip()
                if event_name == b"error":
                    self.end = "error_frame"
                    if not totals.error_sample:
                        totals.error_sample = data.decode("utf-8", "replace")[:400]
                    continue
                if not data:
                    continue  # a ping comment
                kind, value = read(orjson.loads(data))
                if kind == "snapshot":
                    self.snap = self.last = value[0]
                    # Ticks made while the subscribe waited: in the snapshot, never sent as events.
                    totals.folded += sum(1 for t in value[1] if t >= self.sent_at)
                    totals.attach_waits.append(now - self.sent_at)
                    totals.attached += 1
                    first.set()
                elif kind == "tick":
                    n, sent = value
                    if n <= self.last:
                        totals.duplicates += 1
                        continue
                    self.last = n
                    self.seen += 1
                    if sent >= totals.steady_from:
                        totals.latencies.append(now - sent)
                elif kind == "end":
                    self.terminal = True
                    totals.terminal_states[value] += 1

    def _count(self, totals: Totals) -> None:
        totals.ends[self.end] += 1
        if self.snap is None:
            return
        expected = totals.count - self.snap
        lost = expected - self.seen
        totals.expected += expected
        totals.seen += self.seen
        if lost:
            totals.lost_by_end[self.end] += lost
            totals.streams_with_loss_by_end[self.end] += 1


def cpu_seconds() -> float:
    """This process's user + system CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentiles(values: array[float]) -> dict[str, float]:
    """p50, p99 and max of delivery times, in milliseconds (empty: no key)."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000.0

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1] * 1000.0}


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Open every subscriber (at most ``concurrency`` attaching at once), wait for them all to end."""
    totals = Totals(count=spec["count"])
    cpu_from = cpu_seconds()
    requests = [r.encode("latin-1") for r in spec["requests"]]
    started = time.monotonic()
    attach_by = started + spec["attach_seconds"]
    deadline = started + spec["deadline_seconds"]
    gate = asyncio.Semaphore(spec["concurrency"])
    tasks: list[asyncio.Task[None]] = []
    releases: set[asyncio.Task[None]] = set()
    for i in range(spec["subscribers"]):
        if time.monotonic() >= attach_by:
            break
        await gate.acquire()
        first = asyncio.Event()
        task = asyncio.create_task(Subscriber().run(spec, requests[i % len(requests)], totals, first))
        tasks.append(task)

        async def release(first: asyncio.Event = first) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, attach_by - time.monotonic())):
                    await first.wait()
            gate.release()

        releasing = asyncio.create_task(release())
        releases.add(releasing)
        releasing.add_done_callback(releases.discard)
    # Every one attached (or the budget spent): the steady state starts now.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, attach_by - time.monotonic())):
            while totals.attached + sum(totals.ends.values()) < len(tasks):
                await asyncio.sleep(0.05)
    attach_took = time.monotonic() - started
    totals.steady_from = time.time()
    steady_cpu_from = cpu_seconds()
    print(f"attached {totals.attached}", flush=True)
    _done, still = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    for task in still:
        task.cancel()
    await asyncio.gather(*still, return_exceptions=True)
    return {
        "opened": len(tasks),
        "attached": totals.attached,
        "attach_seconds": attach_took,
        "latency_ms": _percentiles(totals.latencies),
        "attach_wait_ms": _percentiles(totals.attach_waits),
        "folded": totals.folded,
        "terminal_states": dict(totals.terminal_states),
        "cpu_seconds": cpu_seconds() - cpu_from,
        "steady_cpu_seconds": cpu_seconds() - steady_cpu_from,
        "ends": dict(totals.ends),
        "http": dict(totals.http),
        "refusal": totals.refusal,
        "error_sample": totals.error_sample,
        "expected": totals.expected,
        "seen": totals.seen,
        "duplicates": totals.duplicates,
        "lost_by_end": dict(totals.lost_by_end),
        "streams_with_loss_by_end": dict(totals.streams_with_loss_by_end),
        "open_files": raise_open_files(),
    }


def main(argv: list[str] | None = None) -> int:
    """Read the spec, run, print the result as one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    with open(args[0], encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    raise_open_files()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
