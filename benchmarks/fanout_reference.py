"""The fan-out benchmark's baseline: a naive sse-starlette app, one asyncio.Queue per subscriber.

Run: python -m benchmarks.fanout_reference --port PORT

- ``POST /topics`` with ``{"count": C, "period": P, "delay": D}`` starts a topic: a publisher task
  that, after D seconds (0 by default), puts ``{"n": i, "t": <wall clock>}`` into every subscriber's
  queue, C times, one every P seconds on a fixed schedule, then an end marker; answers ``{"id": ...}``.
- ``GET /topics/{id}/stream`` subscribes: a queue of its own, first ``{"snapshot": <last n>, "times":
  [<the last ticks' t>]}``, then
  each tick as it comes, serialized for this subscriber (``json.dumps``), then ``{"end": true}``; the
  stream ends there. Served by sse-starlette's ``EventSourceResponse`` (ping 15 s, no send timeout).
- ``GET /health``.

This is the pattern most A2A servers and tutorials use; the gateway's lean broadcaster is measured
against it on the same load (``benchmarks.fanout``). uvicorn with uvloop and httptools, no access log.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_COUNT = 3600
RECENT = 100  # tick times a snapshot carries, as the gateway's task snapshot carries its last chunks
END: Any = None


class Topic:
    """One publisher's subscribers (a queue each) and the number of its last tick."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Any]] = set()
        self.times: deque[float] = deque(maxlen=RECENT)
        self.last = 0
        self.ended = False

    async def publish(self, count: int, period: float, delay: float) -> None:
        """``count`` ticks, one every ``period`` seconds after ``delay``, then the end marker."""
        start = time.monotonic() + delay
        for n in range(1, count + 1):
            await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
            self.last = n
            tick = {"n": n, "t": time.time()}
            self.times.append(tick["t"])
            for queue in tuple(self.queues):
                queue.put_nowait(tick)
        self.ended = True
        for queue in tuple(self.queues):
            queue.put_nowait(END)

    def subscribe(self) -> AsyncIterator[ServerSentEvent]:
        """A new subscriber's stream, its snapshot taken now, with its queue (no tick between them)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queues.add(queue)
        return self._events(queue, {"snapshot": self.last, "times": list(self.times)})

    async def _events(
        self, queue: asyncio.Queue[Any], snapshot: dict[str, Any]
    ) -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(data=json.dumps(snapshot))
            while True:
                item = await queue.get()
                if item is END:
                    yield ServerSentEvent(data=json.dumps({"end": True}))
                    return
                yield ServerSentEvent(data=json.dumps(item))
        finally:
            self.queues.discard(queue)


class Topics:
    """The app's topics by id, and their publisher tasks (kept so they are not collected)."""

    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {}
        self.publishers: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    async def create(self, request: Request) -> Response:
        """POST /topics."""
        body = await request.json()
        count, period, delay = int(body["count"]), float(body["period"]), float(body.get("delay", 0))
        if not 1 <= count <= MAX_COUNT or not 0.01 <= period <= 60 or not 0 <= delay <= 600:
            return JSONResponse({"error": "count 1..3600, period 0.01..60, delay 0..600"}, 400)
        topic_id = f"topic-{next(self._ids)}"
        topic = self.topics[topic_id] = Topic()
        task = asyncio.create_task(topic.publish(count, period, delay))
        self.publishers.add(task)
        task.add_done_callback(self.publishers.discard)
        return JSONResponse({"id": topic_id}, 201)

    async def stream(self, request: Request) -> Response:
        """GET /topics/{id}/stream."""
        topic = self.topics.get(request.path_params["topic_id"])
        if topic is None or topic.ended:
            return JSONResponse({"error": "no such live topic"}, 404)
        return EventSourceResponse(topic.subscribe(), sep="\n")


async def health(request: Request) -> Response:
    """GET /health."""
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    """The reference app."""
    topics = Topics()
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/topics", topics.create, methods=["POST"]),
            Route("/topics/{topic_id}/stream", topics.stream, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the reference app on loopback."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout_reference", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
