"""A gateway restart does not lose relayed tasks: a task that was waiting on an agent is picked up
again (the upstream task is read, then re-subscribed, or polled) and finishes in the gateway too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import rpc, user_message

CREDENTIALS = {"email": "restart@example.com", "password": "long enough"}


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The echo agent on a real socket: it keeps working while the gateway is down."""
    port = free_port()
    settings = make_settings(tmp_path / "echo", public_url=f"http://127.0.0.1:{port}")
    server = LiveServer(create_agent_app(ECHO_AGENT, settings), port)
    await server.start()
    yield server
    await server.stop()


class Gateway:
    """Start and stop gateway processes (in process) over one data directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self) -> Any:
        return _running(self.settings)


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return Gateway(make_settings(tmp_path / "gw"))


class _running:
    def __init__(self, settings: Settings) -> None:
        self.app = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
        self.lifespan = LifespanManager(self.app)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")
        await self.client.post("/api/v1/auth/register", json=CREDENTIALS)
        login = await self.client.post("/api/v1/auth/login", json=CREDENTIALS)
        self.client.headers["Authorization"] = f"Bearer {login.json()['data']['accessToken']}"
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


async def until(
    gw: httpx.AsyncClient, task_id: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            task: dict[str, Any] = (await rpc(gw, "GetTask", {"id": task_id}))["result"]
            if check(task):
                return task
            await asyncio.sleep(0.02)


async def register(gw: httpx.AsyncClient, upstream: LiveServer) -> str:
    response = await gw.post("/api/v1/agents", json={"cardUrl": upstream.url})
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["data"]["id"]
    return agent_id


async def test_a_working_relayed_task_finishes_after_a_restart(
    gateway: Gateway, upstream: LiveServer
) -> None:
    async with gateway.run() as gw:
        agent_id = await register(gw, upstream)
        params = {
            "message": user_message("8"),
            "configuration": {"returnImmediately": True},
            "metadata": {"agentId": agent_id, "skillId": "countdown"},
        }
        task = (await rpc(gw, "SendMessage", params))["result"]["task"]
        # Wait until the upstream has started counting (the relay knows the upstream task by then).
        await until(gw, task["id"], lambda t: bool(t.get("artifacts")))
    # The gateway is down for a moment while the agent keeps counting.
    await asyncio.sleep(0.2)
    async with gateway.run() as gw:
        done = await until(gw, task["id"], lambda t: t["status"]["state"] != "TASK_STATE_WORKING")
        assert done["status"]["state"] == "TASK_STATE_COMPLETED", done["status"]
        texts = [p["text"] for p in done["artifacts"][0]["parts"]]
        assert texts == [str(i) for i in range(8, 0, -1)]
        routing = (await gw.get(f"/api/v1/tasks/{task['id']}")).json()["data"]["routing"]
        assert routing["outcome"] == "completed" and routing["upstreamTaskId"]


async def test_a_paused_relayed_task_takes_its_follow_up_after_a_restart(
    gateway: Gateway, upstream: LiveServer
) -> None:
    async with gateway.run() as gw:
        agent_id = await register(gw, upstream)
        params = {"message": user_message("hi"), "metadata": {"agentId": agent_id, "skillId": "ask"}}
        asked = (await rpc(gw, "SendMessage", params))["result"]["task"]
        assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    async with gateway.run() as gw:
        still = (await rpc(gw, "GetTask", {"id": asked["id"]}))["result"]
        assert still["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        follow_up = {"message": user_message("Grace", taskId=asked["id"])}
        done = (await rpc(gw, "SendMessage", follow_up))["result"]["task"]
        assert done["status"]["state"] == "TASK_STATE_COMPLETED"
        assert done["artifacts"][0]["parts"] == [{"text": "Hello, Grace!"}]


async def test_a_task_whose_agent_is_gone_fails_after_a_restart(
    gateway: Gateway, upstream: LiveServer
) -> None:
    async with gateway.run() as gw:
        agent_id = await register(gw, upstream)
        params = {"message": user_message("hi"), "metadata": {"agentId": agent_id, "skillId": "ask"}}
        asked = (await rpc(gw, "SendMessage", params))["result"]["task"]
        # The agent is deleted while the gateway is down (here: just before it stops).
        assert (await gw.delete(f"/api/v1/agents/{agent_id}")).status_code in (200, 204)
    async with gateway.run() as gw:
        failed = (await rpc(gw, "GetTask", {"id": asked["id"]}))["result"]
        assert failed["status"]["state"] == "TASK_STATE_FAILED"
        routing = (await gw.get(f"/api/v1/tasks/{asked['id']}")).json()["data"]["routing"]
        assert routing["outcome"] == "lost"
