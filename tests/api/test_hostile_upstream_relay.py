"""Through the proxy, an agent that never ends its SSE line or its body fails the caller's call with the
upstream error, and the gateway stops reading at the limits its settings give (wired from
``A2A_GATEWAY_UPSTREAM_MAX_*``), far below what the agent offers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import envelope, user_message
from tests.outbound.hostile_agent import (
    CHUNKED_HEAD,
    JSON_HEAD,
    SLACK,
    SSE_HEAD,
    Answer,
    HostileAgents,
    Start,
    chunked,
)

LIMIT = 65_536


@pytest.fixture
async def hostile() -> AsyncIterator[Start]:
    """Start hostile agents; all are stopped after the test."""
    agents = HostileAgents()
    yield agents.start
    await agents.close()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, upstream_max_body_bytes=LIMIT, upstream_max_line_bytes=LIMIT)
    app = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        credentials = {"email": "hostile@example.com", "password": "long enough"}
        await client.post("/api/v1/auth/register", json=credentials)
        login = await client.post("/api/v1/auth/login", json=credentials)
        client.headers["Authorization"] = f"Bearer {login.json()['data']['accessToken']}"
        yield client


async def register(gateway: httpx.AsyncClient, url: str) -> str:
    body = {"name": "Hostile", "endpoint": url, "skills": [{"id": "x", "name": "X"}]}
    response = await gateway.post("/api/v1/agents", json=body)
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["data"]["id"]
    return agent_id


def outcome(response: httpx.Response) -> list[dict[str, object]]:
    """The JSON-RPC objects of an answer: one plain JSON body, or each SSE frame's data."""
    if response.headers["content-type"].startswith("application/json"):
        return [orjson.loads(response.content)]
    lines = response.content.decode().splitlines()
    return [orjson.loads(line[5:]) for line in lines if line.startswith("data:")]


@pytest.mark.parametrize(
    ("head", "answer"),
    [(SSE_HEAD, None), (JSON_HEAD, None), (CHUNKED_HEAD, chunked)],
    ids=["line", "body", "chunked"],
)
async def test_a_streaming_call_to_a_hostile_agent_fails_with_the_upstream_error(
    gateway: httpx.AsyncClient, hostile: Start, head: bytes, answer: Answer | None
) -> None:
    agent = await hostile(head, answer)
    agent_id = await register(gateway, agent.url)
    call = envelope("SendStreamingMessage", {"message": user_message("hi")})
    response = await gateway.post(f"/a2a/agents/{agent_id}", json=call, headers={"A2A-Version": "1.0"})
    assert response.status_code == 200
    answers = outcome(response)
    assert await agent.hung_up() < LIMIT + SLACK
    text = orjson.dumps(answers).decode()
    assert f"exceeded {LIMIT} bytes" in text, answers
    # Whichever way the error reached the caller, no task is left working.
    tasks = await gateway.post("/a2a", json=envelope("ListTasks", {}), headers={"A2A-Version": "1.0"})
    for task in tasks.json()["result"]["tasks"]:
        assert task["status"]["state"] == "TASK_STATE_FAILED", task
