"""Messages to the gateway that name an agent (``metadata.agentId``) run as gateway tasks relayed to that
agent: unary and streaming, multi-turn, cancel, 0.3 and 1.0 upstreams, and upstream failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import envelope, error_of, host_of, rpc, user_message

PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host.endswith(".test") else []


class Router(httpx.AsyncBaseTransport):
    """In-process hosts: echo.test is a real kit agent, garbage.test answers HTML, down.test refuses."""

    def __init__(self, echo: Starlette) -> None:
        self.echo = httpx.ASGITransport(app=echo)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if host_of(request) == "echo.test":
            return await self.echo.handle_async_request(request)
        if host_of(request) == "garbage.test":
            return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>hi</html>")
        raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=Router(echo),
        resolver=resolver,
    )
    async with (
        LifespanManager(echo),
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=echo), base_url="http://echo.test") as upstream,
    ):
        credentials = {"email": "r@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        owner = {"Authorization": f"Bearer {token}"}

        async def register(**body: Any) -> str:
            response = await gw.post("/api/v1/agents", json=body, headers=owner)
            assert response.status_code == 201, response.text
            agent_id: str = response.json()["data"]["id"]
            return agent_id

        yield {
            "app": gateway,
            "gw": gw,
            "upstream": upstream,
            "v1": await register(cardUrl="http://echo.test"),
            "v03": await register(cardUrl="http://echo.test/.well-known/agent.json?A2A-Version=0.3"),
            "garbage": await register(
                name="G", endpoint="http://garbage.test/a2a", skills=[{"id": "x", "name": "X"}]
            ),
            "down": await register(
                name="D", endpoint="http://down.test/a2a", skills=[{"id": "x", "name": "X"}]
            ),
        }


def routed(agent_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"message": user_message(text), "metadata": {"agentId": agent_id, **extra}}


@pytest.mark.parametrize("which", ["v1", "v03"])
async def test_unary_relay_to_1_0_and_0_3_agents(net: dict[str, Any], which: str) -> None:
    task = (await rpc(net["gw"], "SendMessage", routed(net[which], "relayed")))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "relayed"}]
    upstream = (await rpc(net["upstream"], "ListTasks", {}))["result"]["tasks"]
    assert (
        len(upstream) == 1 and upstream[0]["id"] != task["id"]
    )  # the gateway task mirrors its own upstream task
    again = (await rpc(net["gw"], "GetTask", {"id": task["id"]}))["result"]
    assert again["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_streamed_relay_keeps_order_and_chunks(net: dict[str, Any]) -> None:
    body = envelope("SendStreamingMessage", routed(net["v1"], "3", skillId="countdown"))
    frames: list[dict[str, Any]] = []
    async with net["gw"].stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(orjson.loads(line[6:])["result"])
    kinds = [next(iter(f)) for f in frames]
    assert kinds[0] == "task" and kinds[-1] == "statusUpdate"
    chunks = [f["artifactUpdate"] for f in frames if "artifactUpdate" in f]
    assert [c["artifact"]["parts"][0]["text"] for c in chunks] == ["3", "2", "1"]
    assert [bool(c.get("append")) for c in chunks] == [False, True, True] and chunks[-1]["lastChunk"] is True
    assert frames[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_multi_turn_relay(net: dict[str, Any]) -> None:
    asked = (await rpc(net["gw"], "SendMessage", routed(net["v03"], "hi", skillId="ask")))["result"]["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert asked["status"]["message"]["parts"][0]["text"] == "What is your name?"
    follow_up = {"message": user_message("Ada", taskId=asked["id"])}
    done = (await rpc(net["gw"], "SendMessage", follow_up))["result"]["task"]
    assert done["id"] == asked["id"] and done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done["artifacts"][0]["parts"] == [{"text": "Hello, Ada!"}]


async def test_cancel_reaches_the_upstream_task(net: dict[str, Any]) -> None:
    asked = (await rpc(net["gw"], "SendMessage", routed(net["v1"], "hi", skillId="ask")))["result"]["task"]
    canceled = (await rpc(net["gw"], "CancelTask", {"id": asked["id"]}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    async with asyncio.timeout(5):
        while True:
            upstream = (await rpc(net["upstream"], "ListTasks", {}))["result"]["tasks"]
            if upstream and upstream[0]["status"]["state"] == "TASK_STATE_CANCELED":
                break
            await asyncio.sleep(0.02)


async def test_upstream_failures_are_clear_errors(net: dict[str, Any]) -> None:
    garbage = error_of(await rpc(net["gw"], "SendMessage", routed(net["garbage"])))
    assert garbage["code"] == -32006 and garbage["data"][0]["reason"] == "INVALID_AGENT_RESPONSE"
    down = error_of(await rpc(net["gw"], "SendMessage", routed(net["down"])))
    assert down["code"] == -32051 and "could not be reached" in down["message"]
    unknown = error_of(await rpc(net["gw"], "SendMessage", routed("no-such-agent")))
    assert unknown["code"] == -32602
    # No gateway task is left behind by a call that never started.
    assert (await rpc(net["gw"], "ListTasks", {}))["result"]["totalSize"] == 0


@pytest.mark.parametrize(("caller", "which"), [("1.0", "v03"), (None, "v1"), ("1.0", "v1"), (None, "v03")])
async def test_proxy_endpoint_translates_both_ways(
    net: dict[str, Any], caller: str | None, which: str
) -> None:
    path = f"/a2a/agents/{net[which]}"
    if caller:
        body = await rpc(net["gw"], "SendMessage", {"message": user_message("via proxy")}, path=path)
        task = body["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    else:
        legacy = {
            "kind": "message",
            "messageId": "m",
            "role": "user",
            "parts": [{"kind": "text", "text": "via proxy"}],
        }
        task = (await rpc(net["gw"], "message/send", {"message": legacy}, version=None, path=path))["result"]
        assert task["kind"] == "task" and task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["text"] == "via proxy"
    got = await rpc(
        net["gw"], "GetTask" if caller else "tasks/get", {"id": task["id"]}, version=caller, path=path
    )
    assert got["result"]["id"] == task["id"]


async def test_proxy_card_points_at_the_gateway(net: dict[str, Any]) -> None:
    response = await net["gw"].get(f"/a2a/agents/{net['v1']}/.well-known/agent-card.json")
    card = response.json()
    assert card["name"] == "Echo Agent" and "etag" in response.headers
    assert {i["url"] for i in card["supportedInterfaces"]} == {f"http://testserver/a2a/agents/{net['v1']}"}
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}
    assert [s["id"] for s in card["skills"]] == ["echo", "countdown", "ask", "whoami"]
    legacy = (
        await net["gw"].get(f"/a2a/agents/{net['v1']}/.well-known/agent-card.json?A2A-Version=0.3")
    ).json()
    assert legacy["url"] == f"http://testserver/a2a/agents/{net['v1']}"
    missing = await net["gw"].get("/a2a/agents/nope/.well-known/agent-card.json")
    assert missing.status_code == 404
    unknown = await rpc(net["gw"], "SendMessage", {"message": user_message()}, path="/a2a/agents/nope")
    assert error_of(unknown)["code"] == -32602


async def test_skill_based_routing_picks_the_best_online_agent(net: dict[str, Any]) -> None:
    gw = net["gw"]
    by_stream_tag = {"message": user_message("2"), "metadata": {"skillTags": ["stream"]}}
    # Nobody has sent a heartbeat yet: no agent is online.
    refused = error_of(await rpc(gw, "SendMessage", by_stream_tag))
    assert refused["code"] == -32602 and "No online agent" in refused["message"]
    unknown_skill = error_of(
        await rpc(gw, "SendMessage", {"message": user_message(), "metadata": {"skillId": "ocr"}})
    )
    assert unknown_skill["code"] == -32602 and "ocr" in unknown_skill["message"]
    login = await gw.post("/api/v1/auth/login", json={"email": "r@example.com", "password": "long enough"})
    owner = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
    for name in ("v1", "v03"):
        assert (
            await gw.post(f"/api/v1/agents/{net[name]}/heartbeat", json={}, headers=owner)
        ).status_code == 200
    # Make v03 the more trusted one; trust is server-owned, so set it through the repository.
    agents = net["app"].state.agents
    await agents.set_trust(net["v03"], 80.0)

    task = (await rpc(gw, "SendMessage", by_stream_tag))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and task["metadata"] == {"agentId": net["v03"]}
    # The upstream chose its skill from its own default (echo): the text came back as an artifact.
    assert task["artifacts"][0]["parts"] == [{"text": "2"}]
    # A skill the gateway serves itself stays local.
    local = await rpc(gw, "SendMessage", {"message": user_message("x"), "metadata": {"skillId": "echo"}})
    assert "metadata" not in local["result"]["task"]


def conversation(task: dict[str, Any]) -> list[tuple[str, str]]:
    """A task's history as (role, text) pairs."""
    return [(m["role"], " ".join(p.get("text", "") for p in m["parts"])) for m in task.get("history", [])]


@pytest.mark.parametrize("which", ["v1", "v03"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_relayed_task_holds_every_message_of_the_exchange(
    net: dict[str, Any], which: str, streaming: bool
) -> None:
    gw = net["gw"]
    config = {"returnImmediately": False}
    first = {**routed(net[which], "hi", skillId="ask"), "configuration": config}
    if streaming:
        body = envelope("SendStreamingMessage", first)
        async with gw.stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
            frames = [
                orjson.loads(line[6:])["result"]
                async for line in response.aiter_lines()
                if line[:6] == "data: "
            ]
        task_id = frames[0]["task"]["id"]
    else:
        task_id = (await rpc(gw, "SendMessage", first))["result"]["task"]["id"]
    await rpc(gw, "SendMessage", {"message": user_message("Ada", taskId=task_id)})
    mine = (await rpc(gw, "GetTask", {"id": task_id}))["result"]
    assert mine["status"]["state"] == "TASK_STATE_COMPLETED"
    upstream_tasks = (await rpc(net["upstream"], "ListTasks", {"historyLength": 100}))["result"]["tasks"]
    theirs = (await rpc(net["upstream"], "GetTask", {"id": upstream_tasks[0]["id"]}))["result"]
    assert conversation(mine) == conversation(theirs)
    assert [r for r, _ in conversation(mine)] == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]
    assert (await rpc(gw, "GetTask", {"id": task_id, "historyLength": 1}))["result"]["history"] == [
        mine["history"][-1]
    ]


@pytest.mark.parametrize("which", ["v1", "v03"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_relayed_task_keeps_the_agents_progress_messages(
    net: dict[str, Any], which: str, streaming: bool
) -> None:
    gw = net["gw"]
    params = routed(net[which], "2", skillId="countdown")
    if streaming:
        body = envelope("SendStreamingMessage", params)
        async with gw.stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
            frames = [
                orjson.loads(line[6:])["result"]
                async for line in response.aiter_lines()
                if line[:6] == "data: "
            ]
        task_id = frames[0]["task"]["id"]
    else:
        task_id = (await rpc(gw, "SendMessage", params))["result"]["task"]["id"]
    mine = (await rpc(gw, "GetTask", {"id": task_id}))["result"]
    upstream_tasks = (await rpc(net["upstream"], "ListTasks", {}))["result"]["tasks"]
    theirs = (await rpc(net["upstream"], "GetTask", {"id": upstream_tasks[0]["id"]}))["result"]
    assert (
        conversation(mine)
        == conversation(theirs)
        == [
            ("ROLE_USER", "2"),
            ("ROLE_AGENT", "Counting down from 2"),
        ]
    )


def frame_shape(frame: dict[str, Any]) -> tuple[str, ...]:
    """A stream frame without ids or times: its kind, state or artifact text, and status text."""
    if "task" in frame:
        return ("task", frame["task"]["status"]["state"])
    if "statusUpdate" in frame:
        status = frame["statusUpdate"]["status"]
        said = " ".join(p.get("text", "") for p in status.get("message", {}).get("parts", []))
        return ("status", status["state"], said)
    parts = frame["artifactUpdate"]["artifact"]["parts"]
    return ("artifact", " ".join(p.get("text", "") for p in parts))


async def test_the_proxy_streams_the_same_frames_as_the_agent_itself(net: dict[str, Any]) -> None:
    """Every upstream event is relayed as it comes: none held back, none added."""

    async def frames(client: httpx.AsyncClient, path: str) -> list[tuple[str, ...]]:
        params = {"message": user_message("2"), "metadata": {"skillId": "countdown"}}
        body = envelope("SendStreamingMessage", params)
        async with client.stream("POST", path, json=body, headers={"A2A-Version": "1.0"}) as response:
            return [
                frame_shape(orjson.loads(line[6:])["result"])
                async for line in response.aiter_lines()
                if line.startswith("data: ")
            ]

    direct = await frames(net["upstream"], "/a2a")
    proxied = await frames(net["gw"], f"/a2a/agents/{net['v1']}")
    assert proxied == direct
    assert direct == [
        ("task", "TASK_STATE_SUBMITTED"),
        ("status", "TASK_STATE_WORKING", "Counting down from 2"),
        ("artifact", "2"),
        ("artifact", "1"),
        ("status", "TASK_STATE_COMPLETED", ""),
    ]
