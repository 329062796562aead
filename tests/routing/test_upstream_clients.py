"""Routed calls over each client of unary upstream calls: httpx (through the injected transport, as most
API tests run), the hand-written LeanHttp and httpcore's pool (PooledHttp), the last two over real
connections served by uvicorn's HTTP/1.1 protocol (``tests/upstream_sockets.py``).

The same representative calls run over each: unary sends to 1.0 and 0.3 agents, keep-alive reuse,
multi-turn, cancel, the proxy endpoint in both caller versions, a stream next to unary calls, and
every kind of upstream failure. Streams, cancels and card fetches always go through httpx; the
records of what each host received show which way every call took.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.outbound.lean_http import LeanHttp, UnaryHttpFactory
from a2a_gateway.outbound.pooled_http import PooledHttp
from agents_examples.echo import ECHO_AGENT
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import envelope, error_of, legacy_message, rpc, user_message
from tests.upstream_sockets import UpstreamHosts, fixed

BODY_LIMIT = 65_536
CLIENTS: dict[str, type[LeanHttp] | type[PooledHttp] | None] = {
    "httpx": None,
    "lean": LeanHttp,
    "pooled": PooledHttp,
}


@pytest.fixture(params=list(CLIENTS))
async def net(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The gateway with agents on in-process hosts, its unary calls made by the client under test."""
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    hosts = UpstreamHosts(
        {
            "echo.test": echo,
            "garbage.test": fixed(200, b"text/html", b"<html>hi</html>"),
            "http500.test": fixed(500, b"text/plain", b"Internal Server Error"),
            "badjson.test": fixed(200, b"application/json", b"{not json"),
            "huge.test": fixed(200, b"application/json", b"[" + b"1," * BODY_LIMIT + b"1]"),
            "down.test": None,
        }
    )
    kind = CLIENTS[request.param]
    unary: UnaryHttpFactory | None = None
    if kind is not None:
        unary = functools.partial(kind, opener=hosts.open_connection)
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[], upstream_max_body_bytes=BODY_LIMIT),
        outbound_transport=hosts.transport(),
        resolver=hosts.resolver,
        unary_client=unary,
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(LifespanManager(echo))
        stack.push_async_callback(hosts.aclose)  # after the gateway has closed its connections
        await stack.enter_async_context(LifespanManager(gateway))
        gw = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw")
        )
        upstream = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=echo), base_url="http://echo.test")
        )
        credentials = {"email": "u@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        owner = {"Authorization": f"Bearer {token}"}

        async def register(**body: Any) -> str:
            response = await gw.post("/api/v1/agents", json=body, headers=owner)
            assert response.status_code == 201, response.text
            agent_id: str = response.json()["data"]["id"]
            return agent_id

        def broken(host: str) -> dict[str, Any]:
            return {"name": host, "endpoint": f"http://{host}/a2a", "skills": [{"id": "x", "name": "X"}]}

        yield {
            "gw": gw,
            "upstream": upstream,
            "hosts": hosts,
            # The way unary calls reach an agent with this client.
            "unary_via": "transport" if kind is None else "socket",
            "v1": await register(cardUrl="http://echo.test"),
            "v03": await register(cardUrl="http://echo.test/.well-known/agent.json?A2A-Version=0.3"),
            **{name: await register(**broken(f"{name}.test")) for name in ("garbage", "http500", "badjson")},
            "huge": await register(**broken("huge.test")),
            "down": await register(**broken("down.test")),
        }


def routed(agent_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"message": user_message(text), "metadata": {"agentId": agent_id, **extra}}


@pytest.mark.parametrize(
    ("which", "expected"), [("v1", ("1.0", "SendMessage")), ("v03", (None, "message/send"))]
)
async def test_unary_send_to_1_0_and_0_3_agents(
    net: dict[str, Any], which: str, expected: tuple[str | None, str]
) -> None:
    task = (await rpc(net["gw"], "SendMessage", routed(net[which], "relayed")))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "relayed"}]
    assert net["hosts"].methods("echo.test", net["unary_via"]) == [expected]
    again = (await rpc(net["gw"], "GetTask", {"id": task["id"]}))["result"]
    assert again["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_unary_calls_keep_their_connection_alive(net: dict[str, Any]) -> None:
    for n in range(4):
        task = (await rpc(net["gw"], "SendMessage", routed(net["v1"], f"call {n}")))["result"]["task"]
        assert task["artifacts"][0]["parts"] == [{"text": f"call {n}"}]
    opened = net["hosts"].connections["echo.test"]
    assert opened == (0 if net["unary_via"] == "transport" else 1)
    assert len(net["hosts"].methods("echo.test", net["unary_via"])) == 4


async def test_multi_turn(net: dict[str, Any]) -> None:
    asked = (await rpc(net["gw"], "SendMessage", routed(net["v03"], "hi", skillId="ask")))["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert asked["status"]["message"]["parts"][0]["text"] == "What is your name?"
    follow_up = {"message": user_message("Ada", taskId=asked["id"])}
    done = (await rpc(net["gw"], "SendMessage", follow_up))["result"]["task"]
    assert done["id"] == asked["id"] and done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done["artifacts"][0]["parts"] == [{"text": "Hello, Ada!"}]
    assert net["hosts"].methods("echo.test", net["unary_via"]) == [(None, "message/send")] * 2


async def test_cancel_reaches_the_upstream_task(net: dict[str, Any]) -> None:
    asked = (await rpc(net["gw"], "SendMessage", routed(net["v1"], "hi", skillId="ask")))["result"]["task"]
    canceled = (await rpc(net["gw"], "CancelTask", {"id": asked["id"]}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    upstream = (await rpc(net["upstream"], "ListTasks", {}))["result"]["tasks"]
    assert [t["status"]["state"] for t in upstream] == ["TASK_STATE_CANCELED"]
    assert ("1.0", "CancelTask") in net["hosts"].methods("echo.test", "transport")


@pytest.mark.parametrize("which", ["v1", "v03"])
async def test_proxy_endpoint_in_both_caller_versions(net: dict[str, Any], which: str) -> None:
    path = f"/a2a/agents/{net[which]}"
    modern = (await rpc(net["gw"], "SendMessage", {"message": user_message("new")}, path=path))["result"]
    assert modern["task"]["artifacts"][0]["parts"][0]["text"] == "new"
    legacy = await rpc(net["gw"], "message/send", {"message": legacy_message("old")}, version=None, path=path)
    assert legacy["result"]["kind"] == "task" and legacy["result"]["status"]["state"] == "completed"
    assert legacy["result"]["artifacts"][0]["parts"][0]["text"] == "old"
    upstream = ("1.0", "SendMessage") if which == "v1" else (None, "message/send")
    assert net["hosts"].methods("echo.test", net["unary_via"]) == [upstream] * 2


async def test_a_stream_next_to_unary_calls(net: dict[str, Any]) -> None:
    body = envelope("SendStreamingMessage", routed(net["v1"], "2", skillId="countdown"))
    frames: list[dict[str, Any]] = []
    async with net["gw"].stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(orjson.loads(line[6:])["result"])
    assert frames[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    task = (await rpc(net["gw"], "SendMessage", routed(net["v1"], "after")))["result"]["task"]
    assert task["artifacts"][0]["parts"] == [{"text": "after"}]
    assert net["hosts"].methods("echo.test", "transport")[0] == ("1.0", "SendStreamingMessage")
    assert ("1.0", "SendMessage") in net["hosts"].methods("echo.test", net["unary_via"])


@pytest.mark.parametrize(
    ("which", "code", "reason", "says"),
    [
        ("garbage", -32006, "INVALID_AGENT_RESPONSE", "not a JSON-RPC response"),
        ("badjson", -32006, "INVALID_AGENT_RESPONSE", "not a JSON-RPC response"),
        ("huge", -32006, "INVALID_AGENT_RESPONSE", f"exceeded {BODY_LIMIT} bytes"),
        ("http500", -32051, "UPSTREAM_UNAVAILABLE", "HTTP 500"),
        ("down", -32051, "UPSTREAM_UNAVAILABLE", "could not be reached"),
    ],
)
async def test_upstream_failures_are_clear_errors(
    net: dict[str, Any], which: str, code: int, reason: str, says: str
) -> None:
    error = error_of(await rpc(net["gw"], "SendMessage", routed(net[which])))
    assert error["code"] == code and error["data"][0]["reason"] == reason
    assert says in error["message"]
    if which != "down":
        assert net["hosts"].methods(f"{which}.test", net["unary_via"]) == [("1.0", "SendMessage")]
    assert (await rpc(net["gw"], "ListTasks", {}))["result"]["totalSize"] == 0


@pytest.mark.parametrize("name", ["lean", "pooled"])
async def test_the_setting_names_the_client_of_real_connections(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without injected seams the gateway makes unary calls over TCP with the client its setting names."""
    kind = CLIENTS[name]
    assert kind is not None
    posted: list[str] = []
    original = kind.post

    async def counted(self: Any, url: str, body: bytes, headers: dict[str, str]) -> Any:
        posted.append(url)
        return await original(self, url, body, headers)

    monkeypatch.setattr(kind, "post", counted)
    port = free_port()
    echo = LiveServer(
        create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url=f"http://127.0.0.1:{port}")),
        port,
    )
    await echo.start()
    gateway = create_gateway_app(make_settings(tmp_path / "gw", upstream_http=name))
    try:
        async with (
            LifespanManager(gateway),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
        ):
            credentials = {"email": "u@example.com", "password": "long enough"}
            await gw.post("/api/v1/auth/register", json=credentials)
            token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
            created = await gw.post(
                "/api/v1/agents", json={"cardUrl": echo.url}, headers={"Authorization": f"Bearer {token}"}
            )
            agent = created.json()["data"]["id"]
            task = (await rpc(gw, "SendMessage", routed(agent, "over tcp")))["result"]["task"]
            assert task["artifacts"][0]["parts"] == [{"text": "over tcp"}]
    finally:
        await echo.stop()
    assert posted == [f"{echo.url}/a2a"]
