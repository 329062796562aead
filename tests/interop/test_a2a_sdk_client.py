"""The official a2a-sdk client talks to a live gateway, once as a 1.0 client and once as a 0.3 client.

The 1.0 client discovers the gateway from its agent card (``create_client(url)``); the 0.3 client is
built from the same card with only its ``protocolVersion: "0.3"`` interface left, which makes the SDK
use its 0.3 compat transport (slash method names, ``kind`` objects). A request hook records what each
client really put on the wire, so every test also proves which protocol was spoken.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytest.importorskip("a2a")

from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory, create_client
from a2a.compat.v0_3 import types as types_v03
from a2a.compat.v0_3.conversions import to_core_agent_card
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError

TIMEOUT = 10.0

V1_METHODS = {
    "send": "SendMessage",
    "stream": "SendStreamingMessage",
    "get": "GetTask",
    "cancel": "CancelTask",
}
V03_METHODS = {
    "send": "message/send",
    "stream": "message/stream",
    "get": "tasks/get",
    "cancel": "tasks/cancel",
}


@dataclass
class Sdk:
    """SDK clients for one protocol version against one live gateway, and the calls they made."""

    version: str
    unary: Client
    streaming: Client
    wire: list[tuple[str | None, str]] = field(default_factory=list)

    @property
    def methods(self) -> dict[str, str]:
        return V1_METHODS if self.version == "1.0" else V03_METHODS

    def called(self, key: str) -> None:
        """The last JSON-RPC call used this operation's method name and this client's version header."""
        assert self.wire, "no JSON-RPC call recorded"
        header, method = self.wire[-1]
        assert method == self.methods[key], self.wire
        assert header == self.version, self.wire


def request(text: str, skill: str | None = None, task_id: str | None = None) -> SendMessageRequest:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    if task_id:
        message.task_id = task_id
    req = SendMessageRequest(message=message)
    if skill:
        req.metadata.update({"skillId": skill})
    return req


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async with asyncio.timeout(TIMEOUT):
        return [event async for event in events]


def kinds(events: list[StreamResponse]) -> list[str]:
    return [str(event.WhichOneof("payload")) for event in events]


@pytest.fixture(params=["1.0", "0.3"])
async def sdk(request: pytest.FixtureRequest, live_server: Callable[..., Any]) -> AsyncIterator[Sdk]:
    server = await live_server()
    wire: list[tuple[str | None, str]] = []

    async def record(http_request: httpx.Request) -> None:
        if http_request.method == "POST":
            body = json.loads(http_request.content)
            wire.append((http_request.headers.get("A2A-Version"), body["method"]))

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        if request.param == "1.0":
            unary = await create_client(server.url, ClientConfig(streaming=False, httpx_client=http))
            streaming = await create_client(server.url, ClientConfig(streaming=True, httpx_client=http))
        else:
            card = await A2ACardResolver(http, server.url).get_agent_card()
            versions = sorted(i.protocol_version for i in card.supported_interfaces)
            assert versions == ["0.3", "1.0"], card
            legacy = AgentCard()
            legacy.CopyFrom(card)
            del legacy.supported_interfaces[:]
            legacy.supported_interfaces.extend(
                i for i in card.supported_interfaces if i.protocol_version == "0.3"
            )
            unary = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(legacy)
            streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(legacy)
        harness = Sdk(request.param, unary, streaming, wire)
        try:
            yield harness
        finally:
            await unary.close()
            await streaming.close()


async def test_send_returns_completed_task_with_echo_artifact(sdk: Sdk) -> None:
    events = await collect(sdk.unary.send_message(request("hello sdk")))
    sdk.called("send")
    assert kinds(events) == ["task"]
    task = events[0].task
    assert task.id and task.context_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [[p.text for p in a.parts] for a in task.artifacts] == [["hello sdk"]]
    assert task.artifacts[0].name == "echo"
    assert task.history[0].role == Role.ROLE_USER


async def test_stream_countdown_events_in_order(sdk: Sdk) -> None:
    events = await collect(sdk.streaming.send_message(request("3", skill="countdown")))
    sdk.called("stream")
    assert kinds(events) == [
        "task",
        "status_update",
        "artifact_update",
        "artifact_update",
        "artifact_update",
        "status_update",
    ]
    task_id = events[0].task.id
    assert events[0].task.status.state == TaskState.TASK_STATE_SUBMITTED
    assert events[1].status_update.status.state == TaskState.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events[2:5]]
    assert [[p.text for p in c.artifact.parts] for c in chunks] == [["3"], ["2"], ["1"]]
    assert [c.append for c in chunks] == [False, True, True]
    assert [c.last_chunk for c in chunks] == [False, False, True]
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert {e.status_update.task_id for e in events[1:] if e.HasField("status_update")} == {task_id}
    assert {c.task_id for c in chunks} == {task_id}


async def test_get_task_by_id(sdk: Sdk) -> None:
    [sent] = await collect(sdk.unary.send_message(request("remember me")))
    task = await sdk.unary.get_task(GetTaskRequest(id=sent.task.id))
    sdk.called("get")
    assert task.id == sent.task.id
    assert task.context_id == sent.task.context_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [[p.text for p in a.parts] for a in task.artifacts] == [["remember me"]]
    assert [p.text for p in task.history[0].parts] == ["remember me"]


async def test_cancel_waiting_task_then_cancel_again_is_not_cancelable(sdk: Sdk) -> None:
    [sent] = await collect(sdk.unary.send_message(request("hi", skill="ask")))
    assert sent.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    task_id = sent.task.id

    canceled = await sdk.unary.cancel_task(CancelTaskRequest(id=task_id))
    sdk.called("cancel")
    assert canceled.id == task_id
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert (
        await sdk.unary.get_task(GetTaskRequest(id=task_id))
    ).status.state == TaskState.TASK_STATE_CANCELED

    with pytest.raises(TaskNotCancelableError):  # JSON-RPC -32002
        await sdk.unary.cancel_task(CancelTaskRequest(id=task_id))
    sdk.called("cancel")


async def test_subscribe_through_input_required_follow_up(sdk: Sdk) -> None:
    """SDK subscribe (SubscribeToTask / tasks/resubscribe) on a paused task, then the follow-up."""
    [sent] = await collect(sdk.unary.send_message(request("hi", skill="ask")))
    task_id = sent.task.id
    assert sent.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED

    subscribed = asyncio.Event()
    watched: list[StreamResponse] = []

    async def watch() -> None:
        async for event in sdk.streaming.subscribe(SubscribeToTaskRequest(id=task_id)):
            watched.append(event)
            subscribed.set()

    watcher = asyncio.create_task(watch())
    try:
        async with asyncio.timeout(TIMEOUT):
            await subscribed.wait()
        [answered] = await collect(sdk.unary.send_message(request("Ada", task_id=task_id)))
        async with asyncio.timeout(TIMEOUT):
            await watcher
    finally:
        watcher.cancel()
    assert answered.task.id == task_id
    assert answered.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [[p.text for p in a.parts] for a in answered.task.artifacts] == [["Hello, Ada!"]]

    assert kinds(watched) == ["task", "status_update", "artifact_update", "status_update"]
    assert watched[0].task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert watched[1].status_update.status.state == TaskState.TASK_STATE_WORKING
    assert [p.text for p in watched[2].artifact_update.artifact.parts] == ["Hello, Ada!"]
    assert watched[3].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    subscribe_method = "SubscribeToTask" if sdk.version == "1.0" else "tasks/resubscribe"
    assert (sdk.version, subscribe_method) in sdk.wire


@pytest.mark.parametrize("card_path", ["agent-card.json", "agent.json"])
async def test_a_0_3_client_reads_the_gateway_card_without_a_version_hint(
    live_server: Callable[..., Any], card_path: str
) -> None:
    """An a2a-sdk 0.3 client's way in: the card with no ``A2A-Version``, read with the 0.3 card model."""
    server = await live_server()
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.get(f"{server.url}/.well-known/{card_path}")
        assert response.status_code == 200 and "A2A-Version" not in response.request.headers
        card = types_v03.AgentCard.model_validate(response.json())
        assert card.url == f"{server.url}/a2a" and card.protocol_version == "0.3.0"
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(
            to_core_agent_card(card)
        )
        try:
            events = await collect(client.send_message(request("plain 0.3", skill="echo")))
        finally:
            await client.close()
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [p.text for a in task.artifacts for p in a.parts] == ["plain 0.3"]
