"""RpcEventStream: the lean SSE response of A2A streaming methods (issue 15's broadcaster).

Each subscriber costs its subscription's queue and the request's own task, nothing more:

- an event is serialized once per output shape and shared by every stream that carries it
  (``OpenStream.result_bytes``); a frame is that result between the request's own JSON-RPC head and tail;
- frames go straight to the connection (``send``), with no task group, ping task or per-send timeout
  scope; the one task a stream keeps listens for its client hanging up;
- keep-alives come from one timer for all streams (``TaskService.ping_streams``), which queues a ping to
  idle subscriptions;
- a subscription that falls too far behind is dropped by the broker (counted, logged): its last frame
  is an error telling the client to resubscribe, and a writer still blocked on the connection is cut off;
- when the app drains, every stream ends with an error frame (``-32052``) telling the client to
  resubscribe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from a2a_gateway.api.health import Drain
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.streaming import OpenStream
from a2a_gateway.errors import Unavailable
from a2a_gateway.protocol.version import ProtocolVersion
from a2a_gateway.tasks.broker import PING

log = logging.getLogger(__name__)

HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: never buffer this response
]
PING_FRAME: Final = b": ping\n\n"
CONNECTION: Final = (
    "a2a_gateway.connection"  # the scope extension the gateway's server puts its connection in
)


class RpcEventStream(Response):
    """An A2A stream: the first result, then one frame per event until the stream's end."""

    def __init__(
        self,
        opened: OpenStream,
        request_id: bytes,
        version: ProtocolVersion,
        *,
        drain: Drain,
        metrics: Metrics,
        failure: Callable[[Exception], bytes],
    ) -> None:
        super().__init__(status_code=200)
        self._opened = opened
        self._head = b'data: {"jsonrpc":"2.0","id":' + request_id + b',"result":'
        self._version = version
        self._drain = drain
        self._metrics = metrics
        self._failure = failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened, sub = self._opened, self._opened.rest
        again = "tasks/resubscribe" if self._version is ProtocolVersion.V0_3 else "SubscribeToTask"
        draining = Unavailable(f"The gateway is draining (shutting down); resubscribe with {again}")
        unhook = self._drain.on_start(lambda: opened.interrupt(draining))
        line = _Line.of(scope, send)
        # Without the server's connection (another server, a test transport), one task listens for the
        # client hanging up; with it, a write (an event, or the keep-alive of a quiet stream) tells.
        listener = None
        if sub is not None and line.cycle is None:
            listener = asyncio.create_task(_until_gone(receive, opened))
        self._metrics.streams_open += 1
        if sub is not None:
            sub.writer = asyncio.current_task()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            first, opened.first = opened.first, None  # sent: the snapshot is not kept for the stream's life
            await line.write(self._head + _json(first) + b"}\n\n")
            if sub is not None:
                try:
                    while True:
                        delivery = await sub.get()
                        if delivery is None:
                            break
                        if delivery is PING:
                            await line.write(PING_FRAME)
                        else:
                            await line.write(self._head + opened.result_bytes(delivery) + b"}\n\n")
                            if sub.stops_at(delivery):
                                break
                        if line.gone():
                            return
                except Exception as error:  # the subscription's own end (a GatewayError), or a bug
                    await line.write(b"event: error\ndata: " + self._failure(error) + b"\n\n")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if sub is None or not sub.dropped or task is None:
                raise
            # A dropped slow reader whose connection stayed blocked: leaving the response unfinished
            # makes the server close the connection.
            task.uncancel()
            log.info("closed the connection of a dropped slow reader", extra={"taskId": sub.task_id})
        finally:
            if listener is not None:
                listener.cancel()
            unhook()
            self._metrics.streams_open -= 1
            if sub is not None:
                sub.writer = None
            opened.close()


class _Line:
    """Where a stream's frames go: straight onto the connection's transport when the gateway's server
    shares it (``scope["extensions"][CONNECTION]``, the uvicorn protocol) and the connection takes
    writes now, as the chunks the server would make of them; otherwise through ASGI ``send``, which
    waits for a slow reader's transport to drain."""

    __slots__ = ("cycle", "send", "transport")

    def __init__(self, send: Send, cycle: Any, transport: Any) -> None:
        self.send, self.cycle, self.transport = send, cycle, transport

    @classmethod
    def of(cls, scope: Scope, send: Send) -> _Line:
        connection = ((scope.get("extensions") or {}).get(CONNECTION) or {}).get("protocol")
        cycle = getattr(connection, "cycle", None)
        transport = getattr(connection, "transport", None)
        if cycle is None or transport is None or not hasattr(cycle, "flow"):
            return cls(send, None, None)
        return cls(send, cycle, transport)

    async def write(self, frame: bytes) -> None:
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.chunked_encoding
            and not cycle.flow.write_paused
            and not cycle.disconnected
        ):
            self.transport.write(b"%x\r\n%b\r\n" % (len(frame), frame))
            return
        await self.send({"type": "http.response.body", "body": frame, "more_body": True})

    def gone(self) -> bool:
        """Whether the client has hung up (known only with the server's connection)."""
        cycle = self.cycle
        return cycle is not None and (cycle.disconnected or self.transport.is_closing())


def _json(result: Any) -> bytes:
    return orjson.dumps(result)


async def _until_gone(receive: Receive, opened: OpenStream) -> None:
    """End the stream once the client disconnects (a request body is already read: nothing else comes)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if opened.rest is not None:
                opened.rest.end()
            return
