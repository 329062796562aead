"""Streaming methods: validate and produce the first event before any SSE byte is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from a2a_gateway.api.context import CallContext
from a2a_gateway.api.methods_v1 import parse
from a2a_gateway.errors import GatewayError
from a2a_gateway.protocol import translate as t
from a2a_gateway.protocol import v0_3, v1
from a2a_gateway.tasks.broker import Delivery, Subscription
from a2a_gateway.tasks.service import TaskService

STREAMING_METHODS = frozenset(
    {"SendStreamingMessage", "SubscribeToTask", "message/stream", "tasks/resubscribe"}
)


@dataclass(slots=True)
class OpenStream:
    """The first result of a stream and the subscription that yields the rest (None: one event only)."""

    first: Any
    rest: Subscription | None
    legacy: bool
    closes_at_interrupted: bool

    async def results(self) -> AsyncIterator[Any]:
        """Every JSON-RPC ``result`` of the stream, in order, in the caller's protocol version."""
        yield self.first
        if self.rest is None:
            return
        async for event in self.rest:
            yield self.render(event)

    def result_bytes(self, delivery: Delivery) -> bytes:
        """One event's JSON-RPC ``result`` as JSON, serialized once per shape for every stream that
        carries the same delivery (the 1.0 shape, or 0.3's with or without ``final`` at a pause)."""
        shape = 0 if not self.legacy else 1 if self.closes_at_interrupted else 2
        frames = delivery.frames
        if frames is None:
            frames = delivery.frames = {}
        made = frames.get(shape)
        if made is None:
            event = delivery.event
            made = frames[shape] = event.wire_json() if shape == 0 else orjson.dumps(self.render(event))
        return made

    def render(self, event: v1.StreamResponse) -> Any:
        """One event in 1.0 (StreamResponse) or 0.3 (bare object with kind/final) shape."""
        if not self.legacy:
            return event.wire()
        final = None
        if event.status_update is not None:
            st = event.status_update.status.state
            final = st.terminal or (self.closes_at_interrupted and st.interrupted)
        return t.stream_response_to_v0_3(event, final=final).wire()

    def interrupt(self, error: GatewayError) -> None:
        """End the stream early: queued events are still sent, then ``error``."""
        if self.rest is not None:
            self.rest.end(error)

    def close(self) -> None:
        """Release the subscription if the stream never got to run."""
        if self.rest is not None:
            self.rest.close()


async def open_stream(
    service: TaskService, ctx: CallContext, method: str, params: dict[str, Any]
) -> OpenStream:
    """Run a streaming method up to its first event; any error surfaces here, before SSE starts."""
    if method in ("SendStreamingMessage", "message/stream"):
        legacy = method == "message/stream"
        request = (
            t.send_message_request_to_v1(parse(v0_3.MessageSendParams, params))
            if legacy
            else parse(v1.SendMessageRequest, params)
        )
        result = await service.send(ctx.owner, request, streaming=True, caller=ctx.caller)
        if result.message is not None:
            first = t.message_to_v0_3(result.message).wire() if legacy else {"message": result.message.wire()}
            return OpenStream(first, None, legacy, True)
        assert result.task is not None
        first = t.task_to_v0_3(result.task).wire() if legacy else {"task": result.task.wire()}
        return OpenStream(first, result.stream, legacy, True)
    legacy = method == "tasks/resubscribe"
    task_id = parse(v0_3.TaskIdParams, params).id if legacy else parse(v1.SubscribeToTaskRequest, params).id
    snapshot, sub = await service.subscribe(ctx.owner, task_id)
    first = t.task_to_v0_3(snapshot).wire() if legacy else {"task": snapshot.wire()}
    return OpenStream(first, sub, legacy, False)
