"""An app finishes its background database work before it closes the database: a relayed task that has
just ended still stores its agent's health, and no database connection (nor its worker thread) outlives
the app that opened it.

The case that leaked: a relayed task paused across a restart follows the upstream task's stream once it is
taken back; when the follow-up ends it, the blocking caller is answered while the relay is still closing
that stream, and the relay's health write used to start after the gateway had closed its database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import rpc, user_message

CREDENTIALS = {"email": "stop@example.com", "password": "long enough"}


def database_threads() -> set[threading.Thread]:
    """The worker threads of open aiosqlite connections (one per connection, named after its target)."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


def still_running(threads: set[threading.Thread]) -> list[str]:
    """Those of ``threads`` that do not end within a few seconds (a closed connection's ends at once)."""
    for thread in threads:
        thread.join(timeout=3)
    return sorted(t.name for t in threads if t.is_alive())


@pytest.fixture
async def echo(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The echo agent on a real socket, so that a relay holds a real upstream stream."""
    port = free_port()
    settings = make_settings(tmp_path / "echo", public_url=f"http://127.0.0.1:{port}")
    server = LiveServer(create_agent_app(ECHO_AGENT, settings), port)
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, started, with a logged-in client; stopped on leaving the block."""
    app = create_gateway_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as gw,
    ):
        await gw.post("/api/v1/auth/register", json=CREDENTIALS)
        login = await gw.post("/api/v1/auth/login", json=CREDENTIALS)
        gw.headers["Authorization"] = f"Bearer {login.json()['data']['accessToken']}"
        yield gw


async def test_a_gateway_stopped_as_a_relayed_task_ends_leaves_no_database_work(
    tmp_path: Path, echo: LiveServer
) -> None:
    settings = make_settings(tmp_path / "gw")
    before = database_threads()
    async with running(settings) as gw:
        response = await gw.post("/api/v1/agents", json={"cardUrl": echo.url})
        assert response.status_code == 201, response.text
        agent_id = response.json()["data"]["id"]
        params = {"message": user_message("hi"), "metadata": {"agentId": agent_id, "skillId": "ask"}}
        asked = (await rpc(gw, "SendMessage", params))["result"]["task"]
        assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    async with running(settings) as gw:
        follow_up = {"message": user_message("Ada", taskId=asked["id"])}
        done = (await rpc(gw, "SendMessage", follow_up))["result"]["task"]
        assert done["status"]["state"] == "TASK_STATE_COMPLETED"
        # The gateway stops at once, while the relay is still closing the upstream stream.
    assert still_running(database_threads() - before) == []
    # The health write the relay started as it ended landed before the database closed.
    async with running(settings) as gw:
        stored = (await gw.get(f"/api/v1/agents/{agent_id}")).json()["data"]
        assert stored["health"]["latencyMs"] is not None
    assert still_running(database_threads() - before) == []
