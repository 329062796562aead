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
        # The one task a stream keeps besides its own: it hears the client hang up and ends the stream.
        listener = asyncio.create_task(_until_gone(receive, opened)) if sub is not None else None
        self._metrics.streams_open += 1
        if sub is not None:
            sub.writer = asyncio.current_task()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            first, opened.first = opened.first, None  # sent: the snapshot is not kept for the stream's life
            await self._write(send, self._head + _json(first) + b"}\n\n")
            if sub is not None:
                try:
                    while True:
                        delivery = await sub.get()
                        if delivery is None:
                            break
                        if delivery is PING:
                            await self._write(send, PING_FRAME)
                        else:
                            await self._write(send, self._head + opened.result_bytes(delivery) + b"}\n\n")
                            if sub.stops_at(delivery):
                                break
                except Exception as error:  # the subscription's own end (a GatewayError), or a bug
                    await self._write(send, b"event: error\ndata: " + self._failure(error) + b"\n\n")
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

    @staticmethod
    async def _write(send: Send, frame: bytes) -> None:
        await send({"type": "http.response.body", "body": frame, "more_body": True})


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
