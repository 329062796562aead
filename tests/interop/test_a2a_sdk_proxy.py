"""The official a2a-sdk client calls an official a2a-sdk server agent *through* the gateway's proxy.

Path of every call: SDK client --HTTP--> live gateway (uvicorn, loopback) ``/a2a/agents/{id}`` --relay-->
upstream SDK server (``benchmarks.reference_echo.EchoExecutor`` behind the SDK's own card and JSON-RPC
routes), reached in process through the gateway's injected outbound transport as ``http://sdk.test``.

The upstream is registered by card URL, exactly as an owner would. The SDK client then discovers the agent
from the gateway's proxy card (``/a2a/agents/{id}/.well-known/agent-card.json``) and talks 1.0, or 0.3 when
only the card's 0.3 interface is kept (the same trick as ``test_a2a_sdk_client.py``). Two upstreams are
registered: one publishing a 1.0 interface and one publishing only a 0.3 interface (the SDK server's 0.3
compat mode), so each client version is also translated to the other upstream version. A third publishes
the reference card unchanged (``capabilities.streaming: false``): a streaming caller must still be served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("a2a")

from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory, create_client
from a2a.compat.v0_3 import types as types_v03
from a2a.compat.v0_3.conversions import to_core_agent_card
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from starlette.applications import Starlette

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from benchmarks.reference_echo import RPC_PATH, EchoExecutor, agent_card
from tests.conftest import LiveServer, free_port, make_settings

TIMEOUT = 10.0
PUBLIC = "93.184.216.34"
# host -> (protocol version of the card's interface, whether the card advertises streaming)
UPSTREAM_HOSTS = {"sdk.test": ("1.0", True), "sdk03.test": ("0.3", True), "nostream.test": ("1.0", False)}


async def resolver(host: str, port: int) -> list[str]:
    """The SSRF guard's DNS: ``*.test`` names are public addresses (they never leave the process)."""
    return [PUBLIC] if host.endswith(".test") else []


def sdk_upstream(host: str, version: str, streaming: bool) -> Starlette:
    """The reference echo agent on the SDK server, its card's one interface at ``http://{host}/a2a``.

    The reference card says ``streaming: false`` (the SDK server then refuses SendStreamingMessage with
    -32004); ``streaming=True`` turns it on.
    """
    card = agent_card(0)
    del card.supported_interfaces[:]
    card.supported_interfaces.append(
        AgentInterface(url=f"http://{host}{RPC_PATH}", protocol_binding="JSONRPC", protocol_version=version)
    )
    card.capabilities.CopyFrom(AgentCapabilities(streaming=streaming))
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url=RPC_PATH, enable_v0_3_compat=version == "0.3"),
    ]
    return Starlette(routes=routes)


class Upstreams(httpx.AsyncBaseTransport):
    """The gateway's outbound transport: ``*.test`` hosts are SDK apps in process; anything else refuses."""

    def __init__(self) -> None:
        self.apps = {
            host: httpx.ASGITransport(app=sdk_upstream(host, *v)) for host, v in UPSTREAM_HOSTS.items()
        }
        self.calls: list[tuple[str, str | None, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Route by the Host header: the SSRF guard may pin the URL to the vetted address.
        host = request.headers.get("Host", request.url.host).split(":")[0]
        app = self.apps.get(host)
        if app is None:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST":
            await request.aread()
            method = json.loads(request.content)["method"]
            self.calls.append((host, request.headers.get("A2A-Version"), method))
        return await app.handle_async_request(request)


@dataclass
class Net:
    """A live gateway with both SDK upstreams registered, and what the upstreams were asked."""

    url: str
    agents: dict[str, str]
    upstream_calls: list[tuple[str, str | None, str]]


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    port = free_port()
    upstreams = Upstreams()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{port}", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=upstreams,
        resolver=resolver,
    )
    server = LiveServer(gateway, port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
            credentials = {"email": "sdk@example.com", "password": "long enough"}
            assert (await http.post("/api/v1/auth/register", json=credentials)).status_code == 201
            token = (await http.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
            owner = {"Authorization": f"Bearer {token}"}
            agents: dict[str, str] = {}
            for host in UPSTREAM_HOSTS:
                response = await http.post(
                    "/api/v1/agents", json={"cardUrl": f"http://{host}"}, headers=owner
                )
                assert response.status_code == 201, response.text
                registered = response.json()["data"]
                assert registered["name"] == "Reference Echo Agent"
                agents[host] = registered["id"]
            # The same non-streaming agent registered by body: the gateway cannot know from a card
            # that it does not stream, and learns it from the agent's refusal.
            body = {"name": "Reference Echo Agent", "endpoint": f"http://nostream.test{RPC_PATH}",
                    "skills": [{"id": "echo", "name": "Echo"}]}  # fmt: skip
            response = await http.post("/api/v1/agents", json=body, headers=owner)
            assert response.status_code == 201, response.text
            agents["nostream-by-body"] = response.json()["data"]["id"]
        yield Net(server.url, agents, upstreams.calls)
    finally:
        await server.stop()


@dataclass
class Sdk:
    """Unary and streaming SDK clients of one protocol version, aimed at one proxied upstream."""

    version: str
    upstream: str
    unary: Client
    streaming: Client
    wire: list[tuple[str | None, str, str]] = field(default_factory=list)


def request(text: str) -> SendMessageRequest:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    return SendMessageRequest(message=message)


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async with asyncio.timeout(TIMEOUT):
        return [event async for event in events]


def texts(task: Any) -> list[list[str]]:
    return [[p.text for p in a.parts] for a in task.artifacts]


@contextlib.asynccontextmanager
async def sdk_clients(net: Net, version: str, upstream: str) -> AsyncIterator[Sdk]:
    """SDK clients built from the gateway's proxy card of ``upstream``: 1.0, or 0.3 (its 0.3 interface)."""
    proxy = f"{net.url}/a2a/agents/{net.agents[upstream]}"
    wire: list[tuple[str | None, str, str]] = []

    async def record(http_request: httpx.Request) -> None:
        if http_request.method == "POST":
            body = json.loads(http_request.content)
            wire.append((http_request.headers.get("A2A-Version"), body["method"], http_request.url.path))

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        if version == "1.0":
            unary = await create_client(proxy, ClientConfig(streaming=False, httpx_client=http))
            streaming = await create_client(proxy, ClientConfig(streaming=True, httpx_client=http))
        else:
            card = await A2ACardResolver(http, proxy).get_agent_card()
            assert card.name == "Reference Echo Agent"
            assert {(i.protocol_version, i.url) for i in card.supported_interfaces} == {
                ("1.0", proxy),
                ("0.3", proxy),
            }
            legacy = AgentCard()
            legacy.CopyFrom(card)
            del legacy.supported_interfaces[:]
            legacy.supported_interfaces.extend(
                i for i in card.supported_interfaces if i.protocol_version == "0.3"
            )
            unary = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(legacy)
            streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(legacy)
        harness = Sdk(version, upstream, unary, streaming, wire)
        try:
            yield harness
        finally:
            await unary.close()
            await streaming.close()


@pytest.fixture(
    params=[("1.0", "sdk.test"), ("1.0", "sdk03.test"), ("0.3", "sdk.test"), ("0.3", "sdk03.test")],
    ids=["sdk1.0-to-upstream1.0", "sdk1.0-to-upstream0.3", "sdk0.3-to-upstream1.0", "sdk0.3-to-upstream0.3"],
)
async def sdk(request: pytest.FixtureRequest, net: Net) -> AsyncIterator[Sdk]:
    async with sdk_clients(net, *request.param) as harness:
        yield harness


def assert_spoken(sdk: Sdk, net: Net, method_v1: str, method_v03: str) -> None:
    """The SDK called the proxy in its own protocol version."""
    header, method, path = sdk.wire[-1]
    assert path == f"/a2a/agents/{net.agents[sdk.upstream]}"
    assert header == sdk.version, sdk.wire
    assert method == (method_v1 if sdk.version == "1.0" else method_v03), sdk.wire


def assert_upstream_got(net: Net, sdk: Sdk, method_v1: str, method_v03: str) -> None:
    """The gateway called the upstream in the upstream's own version (0.3: slash names, no header)."""
    legacy = UPSTREAM_HOSTS[sdk.upstream][0] == "0.3"
    expected = (sdk.upstream, None, method_v03) if legacy else (sdk.upstream, "1.0", method_v1)
    assert net.upstream_calls and net.upstream_calls[-1] == expected, net.upstream_calls


async def test_send_returns_the_upstream_echo_as_a_completed_task(sdk: Sdk, net: Net) -> None:
    events = await collect(sdk.unary.send_message(request("hello upstream")))
    assert_spoken(sdk, net, "SendMessage", "message/send")
    assert_upstream_got(net, sdk, "SendMessage", "message/send")
    assert [e.WhichOneof("payload") for e in events] == ["task"]
    task = events[0].task
    assert task.id and task.context_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert texts(task) == [["echo: hello upstream"]]
    assert task.artifacts[0].name == "echo"


async def test_streaming_send_ends_completed(sdk: Sdk, net: Net) -> None:
    events = await collect(sdk.streaming.send_message(request("streamed")))
    assert_spoken(sdk, net, "SendStreamingMessage", "message/stream")
    assert_upstream_got(net, sdk, "SendStreamingMessage", "message/stream")
    kinds = [str(e.WhichOneof("payload")) for e in events]
    assert kinds[0] == "task" and kinds[-1] == "status_update", kinds
    task_id = events[0].task.id
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert events[-1].status_update.task_id == task_id
    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert [[p.text for p in c.artifact.parts] for c in chunks] == [["echo: streamed"]]
    assert {c.task_id for c in chunks} == {task_id}


async def test_get_task_returns_the_gateway_task(sdk: Sdk, net: Net) -> None:
    [sent] = await collect(sdk.unary.send_message(request("remember me")))
    got = await sdk.unary.get_task(GetTaskRequest(id=sent.task.id))
    assert_spoken(sdk, net, "GetTask", "tasks/get")
    assert got.id == sent.task.id and got.context_id == sent.task.context_id
    assert got.status.state == TaskState.TASK_STATE_COMPLETED
    assert texts(got) == [["echo: remember me"]]
    assert [p.text for p in got.history[0].parts] == ["remember me"]


async def test_streamed_task_can_be_read_back(sdk: Sdk, net: Net) -> None:
    events = await collect(sdk.streaming.send_message(request("later")))
    task_id = events[0].task.id
    got = await sdk.unary.get_task(GetTaskRequest(id=task_id))
    assert got.status.state == TaskState.TASK_STATE_COMPLETED
    assert texts(got) == [["echo: later"]]


@pytest.mark.parametrize("registered", ["nostream.test", "nostream-by-body"])
@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_streaming_caller_of_an_upstream_that_does_not_stream(
    net: Net, version: str, registered: str
) -> None:
    """The proxy card promises streaming for every agent, but this upstream's own card says
    ``streaming: false`` (the reference card as published): the gateway must still serve the streaming
    caller, e.g. with a blocking upstream SendMessage replayed as events (or not promise streaming)."""
    async with sdk_clients(net, version, registered) as sdk:
        events = await collect(sdk.streaming.send_message(request("no stream")))
    last = events[-1]
    if last.HasField("status_update"):
        assert last.status_update.status.state == TaskState.TASK_STATE_COMPLETED
        chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
        assert [[p.text for p in c.artifact.parts] for c in chunks] == [["echo: no stream"]]
    else:  # the SDK fell back to a unary send because the proxy card did not promise streaming
        assert last.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert texts(last.task) == [["echo: no stream"]]


@pytest.mark.parametrize("card_path", ["agent-card.json", "agent.json"])
@pytest.mark.parametrize("upstream", ["sdk.test", "sdk03.test"])
async def test_a_0_3_client_reads_the_proxy_card_without_a_version_hint(
    net: Net, upstream: str, card_path: str
) -> None:
    """What an a2a-sdk 0.3 client does: GET the card with no ``A2A-Version``, validate it with the 0.3
    card model, and call the card's ``url`` with 0.3 methods."""
    proxy = f"{net.url}/a2a/agents/{net.agents[upstream]}"
    methods: list[str] = []

    async def record(http_request: httpx.Request) -> None:
        if http_request.method == "POST":
            methods.append(json.loads(http_request.content)["method"])

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        response = await http.get(f"{proxy}/.well-known/{card_path}")
        assert response.status_code == 200 and "A2A-Version" not in response.request.headers
        card = types_v03.AgentCard.model_validate(response.json())
        assert (
            card.url == proxy and card.protocol_version == "0.3.0" and card.preferred_transport == "JSONRPC"
        )
        assert card.name == "Reference Echo Agent"
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(
            to_core_agent_card(card)
        )
        try:
            events = await collect(client.send_message(request("plain 0.3")))
        finally:
            await client.close()
    assert methods == ["message/send"]
    assert texts(events[-1].task) == [["echo: plain 0.3"]]
