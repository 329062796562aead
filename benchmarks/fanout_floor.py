"""The fan-out benchmark's floor: what a lean broadcaster on the gateway's own stack (uvicorn, httptools,
uvloop) costs, as a yardstick for issue 15's broadcaster. Not the gateway's code.

Run: python -m benchmarks.fanout_floor --port PORT

The same routes and events as ``benchmarks.fanout_reference``, served another way:

- each tick is serialized once per topic, framed once as one HTTP chunk, and written by the publisher
  straight to every subscriber's transport (``transport.write``): no queue, no task woken, no ASGI
  ``send`` and no timeout scope per event. The transport reaches the app through the connection's
  scope (``scope["extensions"]["fanout.transport"]``), put there by a subclass of uvicorn's httptools
  protocol, as the gateway's own ``server.GuardedHttpToolsProtocol`` could;
- a stream's request handler sends the response head and the snapshot, then waits on one future until
  its stream ends, and sends the last frame with ASGI's closing ``send``;
- a subscriber whose transport holds more than ``SLOW_BYTES`` unsent bytes is dropped before the next
  write: it gets ``event: error`` and the end of the body, and is counted;
- one timer pings every stream that sent nothing in the last 15 s, instead of a ping task per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import deque
from typing import Any, cast

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SLOW_BYTES = 256 * 1024
PING_SECONDS = 15.0
RECENT = 100
TRANSPORT = "fanout.transport"
JSON_HEAD = [(b"content-type", b"application/json")]
SSE_HEAD = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]


def chunk(frame: bytes) -> bytes:
    """One HTTP/1.1 chunk holding ``frame``."""
    return b"%x\r\n%s\r\n" % (len(frame), frame)


def frame(doc: Any, event: bytes = b"") -> bytes:
    """One SSE event."""
    return (b"event: " + event + b"\n" if event else b"") + b"data: " + orjson.dumps(doc) + b"\n\n"


class TransportInScope(HttpToolsProtocol):
    """uvicorn's httptools protocol, handing each request's transport to the app in its scope."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        extensions = cast(dict[str, Any], self.scope.setdefault("extensions", {}))
        extensions[TRANSPORT] = self.transport


class Stream:
    """One subscriber: its transport, when it last got bytes, and the future its handler waits on."""

    __slots__ = ("done", "transport", "written")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.written = time.monotonic()
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def finish(self, last: bytes) -> None:
        """End the stream with ``last`` (its handler sends it and closes the body)."""
        if not self.done.done():
            self.done.set_result(last)


class Topic:
    """One publisher and its streams."""

    def __init__(self, app: Floor) -> None:
        self.app = app
        self.streams: set[Stream] = set()
        self.times: deque[float] = deque(maxlen=RECENT)
        self.last = 0
        self.ended = False

    def write(self, data: bytes) -> None:
        """``data`` to every stream; slow and gone ones are dropped first."""
        now = time.monotonic()
        for stream in tuple(self.streams):
            transport = stream.transport
            if transport.is_closing():
                self.streams.discard(stream)
                stream.finish(b"")
            elif transport.get_write_buffer_size() > SLOW_BYTES:
                self.streams.discard(stream)
                self.app.dropped += 1
                stream.finish(frame({"error": "slow reader dropped"}, b"error"))
            else:
                transport.write(data)
                stream.written = now

    async def publish(self, count: int, period: float, delay: float) -> None:
        """``count`` ticks a ``period`` apart after ``delay``, then the end frame."""
        start = time.monotonic() + delay
        for n in range(1, count + 1):
            await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
            self.last = n
            tick = {"n": n, "t": time.time()}
            self.times.append(tick["t"])
            self.write(chunk(frame(tick)))
        self.ended = True
        end = frame({"end": True})
        for stream in tuple(self.streams):
            stream.finish(end)
        self.streams.clear()


class Floor:
    """The raw ASGI app (module doc)."""

    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self._ids = itertools.count(1)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _pings(self) -> None:
        ping = chunk(b": ping\n\n")
        while True:
            await asyncio.sleep(PING_SECONDS / 3)
            quiet = time.monotonic() - PING_SECONDS
            for topic in tuple(self.topics.values()):
                for stream in tuple(topic.streams):
                    if stream.written < quiet and not stream.transport.is_closing():
                        stream.transport.write(ping)
                        stream.written = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    self._spawn(self._pings())
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path, method = scope["path"], scope["method"]
        if path == "/health":
            await self._json(send, 200, {"status": "ok", "dropped": self.dropped})
        elif path == "/topics" and method == "POST":
            await self._create(receive, send)
        elif path.startswith("/topics/") and path.endswith("/stream"):
            await self._stream(scope, send, path.split("/")[2])
        else:
            await self._json(send, 404, {"error": "not found"})

    async def _json(self, send: Send, status: int, doc: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON_HEAD})
        await send({"type": "http.response.body", "body": orjson.dumps(doc)})

    async def _create(self, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        doc = orjson.loads(body)
        count, period, delay = int(doc["count"]), float(doc["period"]), float(doc.get("delay", 0))
        if not 1 <= count <= 3600 or not 0.01 <= period <= 60 or not 0 <= delay <= 600:
            await self._json(send, 400, {"error": "count 1..3600, period 0.01..60, delay 0..600"})
            return
        topic_id = f"topic-{next(self._ids)}"
        topic = self.topics[topic_id] = Topic(self)
        self._spawn(topic.publish(count, period, delay))
        await self._json(send, 201, {"id": topic_id})

    async def _stream(self, scope: Scope, send: Send, topic_id: str) -> None:
        topic = self.topics.get(topic_id)
        if topic is None or topic.ended:
            await self._json(send, 404, {"error": "no such live topic"})
            return
        stream = Stream(scope["extensions"][TRANSPORT])
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEAD})
        # No await from the snapshot to joining the topic: no tick can fall between them.
        snapshot = frame({"snapshot": topic.last, "times": list(topic.times)})
        stream.transport.write(chunk(snapshot))
        if topic.ended:
            stream.finish(frame({"end": True}))
        else:
            topic.streams.add(stream)
        last = await stream.done
        await send({"type": "http.response.body", "body": last, "more_body": False})


def main(argv: list[str] | None = None) -> None:
    """Serve the floor app on loopback."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout_floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    args = parser.parse_args(argv)
    uvicorn.run(
        Floor(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=TransportInScope,
        log_level="warning",
        access_log=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
