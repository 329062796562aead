"""The lean A2A stream response: frames built once per event, slow readers dropped with a last frame,
a blocked writer cut off, the drain's reconnect frame, and the client hanging up."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from a2a_gateway.api.errors import rpc_failure
from a2a_gateway.api.health import Drain
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.sse_stream import CONNECTION, RpcEventStream
from a2a_gateway.api.streaming import OpenStream
from a2a_gateway.errors import GatewayError
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.version import ProtocolVersion
from a2a_gateway.tasks import broker as broker_module
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker


def status(n: int, state: v1.TaskState = v1.TaskState.WORKING) -> Delivery:
    event = v1.TaskStatusUpdateEvent(
        task_id="t", context_id="c", status=v1.TaskStatus(state=state), metadata={"n": n}
    )
    return Delivery(v1.StreamResponse(status_update=event), terminal=state.terminal, seq=n)


def failure(exc: Exception) -> bytes:
    assert isinstance(exc, GatewayError)
    return orjson.dumps(rpc_failure(7, exc, ProtocolVersion.V1_0))


class Client:
    """The ASGI side of one connection: what was sent, and a receive that hangs up on demand."""

    def __init__(self, block_after: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.gone = asyncio.Event()
        self._block_after = block_after

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if self._block_after is not None and len(self.bodies) >= self._block_after:
            await asyncio.Event().wait()  # a reader that stopped reading: the transport stays paused
        if message.get("more_body"):
            self.bodies.append(message["body"])
        else:
            self.ended = True

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def frames(self) -> list[dict[str, Any]]:
        out = []
        for body in self.bodies:
            if body.startswith(b"data: "):
                out.append({"data": orjson.loads(body[6:])})
            elif body.startswith(b"event: error\ndata: "):
                out.append({"error": orjson.loads(body[len(b"event: error\ndata: ") :])})
        return out


def stream(
    broker: TaskEventBroker, drain: Drain | None = None, metrics: Metrics | None = None
) -> RpcEventStream:
    sub = broker.subscribe("t")
    opened = OpenStream({"task": {"id": "t"}}, sub, legacy=False, closes_at_interrupted=False)
    return RpcEventStream(
        opened,
        b"7",
        ProtocolVersion.V1_0,
        drain=drain or Drain(),
        metrics=metrics or Metrics(),
        failure=failure,
    )


async def test_every_stream_carries_the_same_bytes_serialized_once_per_event() -> None:
    broker = TaskEventBroker()
    responses = [stream(broker) for _ in range(3)]
    clients = [Client() for _ in responses]
    running = [
        asyncio.create_task(r({"type": "http"}, c.receive, c.send))
        for r, c in zip(responses, clients, strict=True)
    ]
    await asyncio.sleep(0)
    first, last = status(1), status(2, v1.TaskState.COMPLETED)
    broker.publish("t", first)
    broker.publish("t", last)
    await asyncio.gather(*running)
    assert all(c.ended for c in clients)
    assert len({tuple(c.bodies) for c in clients}) == 1
    frames = clients[0].frames()
    assert [f["data"]["id"] for f in frames] == [7, 7, 7]
    assert frames[2]["data"]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    # One serialization of each event, shared by the three streams.
    assert first.frames is not None and len(first.frames) == 1


async def test_a_slow_reader_is_dropped_with_a_last_error_frame_and_counted() -> None:
    broker = TaskEventBroker(queue_size=2)
    metrics = Metrics()
    response = stream(broker, metrics=metrics)
    metrics.slow_drops = lambda: broker.dropped
    client = Client()
    for n in range(1, 4):  # the third overflows the two the subscription may queue
        broker.publish("t", status(n))
    await response({"type": "http"}, client.receive, client.send)
    frames = client.frames()
    assert "task" in frames[0]["data"]["result"]
    assert "fell too far behind" in frames[-1]["error"]["error"]["message"]
    assert client.ended and broker.dropped == 1
    assert "a2a_stream_slow_reader_drops_total 1" in metrics.render({})


async def test_a_dropped_reader_whose_connection_stays_blocked_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broker_module, "CUT_GRACE_S", 0.0)
    broker = TaskEventBroker(queue_size=2)
    response = stream(broker)
    client = Client(block_after=1)  # takes the first frame, then never reads again
    running = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    await asyncio.sleep(0)
    for n in range(1, 5):
        broker.publish("t", status(n))
    async with asyncio.timeout(5):
        await running  # returns: the unfinished response makes the server close the connection
    assert not client.ended and broker.dropped == 1 and not running.cancelled()


async def test_the_drain_ends_a_stream_with_a_frame_telling_the_client_to_resubscribe() -> None:
    broker = TaskEventBroker()
    drain = Drain()
    response = stream(broker, drain=drain)
    client = Client()
    running = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    await asyncio.sleep(0)
    drain.start()
    await running
    error = client.frames()[-1]["error"]["error"]
    assert error["code"] == -32052 and "resubscribe with SubscribeToTask" in error["message"]
    assert client.ended


async def test_a_client_that_hangs_up_ends_its_stream_only() -> None:
    broker = TaskEventBroker()
    leaving, staying = Client(), Client()
    metrics = Metrics()
    gone = asyncio.create_task(
        stream(broker, metrics=metrics)({"type": "http"}, leaving.receive, leaving.send)
    )
    stays = asyncio.create_task(
        stream(broker, metrics=metrics)({"type": "http"}, staying.receive, staying.send)
    )
    await asyncio.sleep(0)
    leaving.gone.set()
    await gone
    assert metrics.streams_open == 1 and broker.has_subscribers("t")
    broker.publish("t", status(1, v1.TaskState.COMPLETED))
    await stays
    assert len(staying.frames()) == 2 and metrics.streams_open == 0


async def test_an_idle_stream_gets_a_keep_alive_from_the_one_timer() -> None:
    broker = TaskEventBroker()
    client = Client()
    running = asyncio.create_task(stream(broker)({"type": "http"}, client.receive, client.send))
    await asyncio.sleep(0)
    broker.ping_all()
    broker.ping_all()  # queued once: a ping waits already
    broker.publish("t", status(1, v1.TaskState.COMPLETED))
    await running
    assert client.bodies.count(b": ping\n\n") == 1


def test_a_stream_that_heard_an_event_since_the_last_round_gets_no_keep_alive() -> None:
    broker = TaskEventBroker()
    sub = broker.subscribe("t")
    broker.publish("t", status(1))
    broker.ping_all()  # it heard event 1 this round
    assert sub.queue.qsize() == 1
    sub.queue.get_nowait()
    broker.ping_all()  # quiet since: pinged
    assert sub.queue.qsize() == 1


class FakeFlow:
    def __init__(self) -> None:
        self.write_paused = False


class FakeCycle:
    def __init__(self) -> None:
        self.flow = FakeFlow()
        self.chunked_encoding = True
        self.disconnected = False


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing


async def test_with_the_servers_connection_frames_go_straight_onto_it_as_chunks() -> None:
    broker = TaskEventBroker()
    cycle, transport = FakeCycle(), FakeTransport()
    scope = {
        "type": "http",
        "extensions": {CONNECTION: {"protocol": type("P", (), {"cycle": cycle, "transport": transport})()}},
    }
    client = Client()
    running = asyncio.create_task(stream(broker)(scope, client.receive, client.send))
    await asyncio.sleep(0)
    cycle.flow.write_paused = True  # a reader that is behind: through send, which waits for the drain
    broker.publish("t", status(1))
    await asyncio.sleep(0)
    cycle.flow.write_paused = False
    broker.publish("t", status(2, v1.TaskState.COMPLETED))
    await running
    first, last = transport.written
    size, _, rest = first.partition(b"\r\n")
    assert int(size, 16) == len(rest) - 2 and rest.startswith(
        b'data: {"jsonrpc":"2.0","id":7,"result":{"task"'
    )
    assert b"TASK_STATE_COMPLETED" in last and last.endswith(b"\n\n\r\n")
    assert len(client.bodies) == 1 and b"TASK_STATE_WORKING" in client.bodies[0] and client.ended


async def test_with_the_servers_connection_a_client_gone_is_seen_at_the_next_write() -> None:
    broker = TaskEventBroker()
    cycle, transport = FakeCycle(), FakeTransport()
    scope = {
        "type": "http",
        "extensions": {CONNECTION: {"protocol": type("P", (), {"cycle": cycle, "transport": transport})()}},
    }
    client = Client()
    metrics = Metrics()
    running = asyncio.create_task(stream(broker, metrics=metrics)(scope, client.receive, client.send))
    await asyncio.sleep(0)
    cycle.disconnected = True
    broker.ping_all()  # the keep-alive round: the write finds the client gone
    await running
    assert metrics.streams_open == 0 and not broker.has_subscribers("t")
