"""Relays against real servers. A relayed task's first frame goes out as soon as the upstream accepts it;
a relayed task past its size limits fails and its upstream task is cancelled; a relayed subscription
keeps a rolling window, streams every event, and ends when its caller cancels it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from a2a_gateway.agent import AgentDefinition, AgentEvent, ArtifactChunk, SkillContext, Status, skill
from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.protocol import v1
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import envelope, rpc, user_message

Events = AsyncGenerator[AgentEvent, v1.Message | None]


@skill("flood", "Flood", "A new artifact per event until cancelled")
async def flood(ctx: SkillContext) -> Events:
    n = 0
    while True:
        n += 1
        yield ArtifactChunk.of_text(f"#{n}", artifact_id=f"a{n}")
        await asyncio.sleep(0)


@skill("quotes", "Quotes", "A quote per event until cancelled", subscription=True)
async def quotes(ctx: SkillContext) -> Events:
    n = 0
    while True:
        n += 1
        yield ArtifactChunk.of_text(f"quote {n}", artifact_id=f"q{n}")
        await asyncio.sleep(0)


GATE = asyncio.Event()


@skill("gated", "Gated", "Starts working without a word, then waits until the test opens the gate")
async def gated(ctx: SkillContext) -> Events:
    yield Status(v1.TaskState.WORKING)
    await GATE.wait()
    yield ArtifactChunk.of_text("after the gate")


FEED = AgentDefinition(name="Feed", description="Streams", skills=[flood, quotes, gated])


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    # A real server: the gateway must see the agent's events as they are sent, not once it is done.
    port = free_port()
    settings = make_settings(tmp_path / "feed", public_url=f"http://127.0.0.1:{port}")
    feed = LiveServer(create_agent_app(FEED, settings), port)
    await feed.start()
    gw_port = free_port()
    gateway = LiveServer(
        create_gateway_app(
            make_settings(
                tmp_path / "gw",
                public_url=f"http://127.0.0.1:{gw_port}",
                task_max_artifacts=20,
                subscription_window=5,
            )
        ),
        gw_port,
    )
    await gateway.start()
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as gw,
        httpx.AsyncClient(base_url=feed.url, timeout=10) as up,
    ):
        credentials = {"email": "f@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        created = await gw.post(
            "/api/v1/agents", json={"cardUrl": feed.url}, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201, created.text
        try:
            yield {"gw": gw, "up": up, "feed": created.json()["data"]["id"]}
        finally:
            await gateway.stop()
            await feed.stop()


async def upstream_state(up: httpx.AsyncClient) -> str:
    tasks = (await rpc(up, "ListTasks", {}))["result"]["tasks"]
    assert len(tasks) == 1
    state: str = tasks[0]["status"]["state"]
    return state


async def test_a_relayed_task_past_its_artifact_limit_fails_and_cancels_upstream(net: dict[str, Any]) -> None:
    gw = net["gw"]
    params = {"message": user_message("go"), "metadata": {"agentId": net["feed"], "skillId": "flood"}}
    body = envelope("SendStreamingMessage", params)
    async with gw.stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        frames = [
            orjson.loads(line[6:])["result"] async for line in response.aiter_lines() if line[:6] == "data: "
        ]
    final = frames[-1]["statusUpdate"]["status"]
    assert final["state"] == "TASK_STATE_FAILED"
    assert final["message"]["parts"][0]["text"] == "The task exceeded its limit of 20 artifacts"
    task = (await rpc(gw, "GetTask", {"id": frames[0]["task"]["id"]}))["result"]
    assert len(task["artifacts"]) == 20
    # The upstream was still running (its own limit is 1000): the gateway cancelled it.
    async with asyncio.timeout(10):
        while await upstream_state(net["up"]) != "TASK_STATE_CANCELED":
            await asyncio.sleep(0.01)


async def test_a_relayed_subscription_streams_live_keeps_a_window_and_ends_on_cancel(
    net: dict[str, Any],
) -> None:
    gw = net["gw"]
    params = {"message": user_message("go"), "metadata": {"agentId": net["feed"], "skillId": "quotes"}}
    body = envelope("SendStreamingMessage", params)
    seen: list[str] = []
    task_id = ""
    async with gw.stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            result = orjson.loads(line[6:])["result"]
            task_id = task_id or result.get("task", {}).get("id", "")
            if "artifactUpdate" in result:
                seen.append(result["artifactUpdate"]["artifact"]["parts"][0]["text"])
                if len(seen) == 60:  # three times the artifact limit: a plain task would have failed
                    break
    assert seen == [f"quote {n}" for n in range(1, 61)]
    task = (await rpc(gw, "GetTask", {"id": task_id}))["result"]
    assert task["status"]["state"] == "TASK_STATE_WORKING" and len(task["artifacts"]) == 5
    canceled = (await rpc(gw, "CancelTask", {"id": task_id}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    async with asyncio.timeout(10):
        while await upstream_state(net["up"]) != "TASK_STATE_CANCELED":
            await asyncio.sleep(0.01)


async def test_the_first_frame_goes_out_before_the_upstream_does_anything_else(net: dict[str, Any]) -> None:
    GATE.clear()
    params = {"message": user_message("go"), "metadata": {"agentId": net["feed"], "skillId": "gated"}}
    body = envelope("SendStreamingMessage", params)
    shapes: list[str] = []
    try:
        async with net["gw"].stream("POST", "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
            # Before the fix nothing came until the gate opened (the upstream's task and its WORKING
            # without a word were held back): the read timed out.
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    shapes.append(next(iter(orjson.loads(line[6:])["result"])))
                    if len(shapes) == 2:
                        break
            assert shapes == ["task", "statusUpdate"]
            GATE.set()
            async for line in lines:
                if line.startswith("data: "):
                    shapes.append(next(iter(orjson.loads(line[6:])["result"])))
    finally:
        GATE.set()
    assert shapes[-2:] == ["artifactUpdate", "statusUpdate"]
