"""A kit agent started with a gateway URL and an owner key registers itself, heartbeats, and on restart
updates its existing entry instead of creating a second one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import host_of

PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host in ("gw.test", "echo.test") else []


class Router(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app named by its host."""

    def __init__(self) -> None:
        self.apps: dict[str, Starlette] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.apps[host_of(request)]).handle_async_request(request)


async def test_agent_registers_itself_and_keeps_one_entry(tmp_path: Path) -> None:
    router = Router()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=router,
        resolver=resolver,
    )
    router.apps["gw.test"] = gateway
    async with LifespanManager(gateway), httpx.AsyncClient(transport=router, base_url="http://gw.test") as gw:
        await gw.post("/api/v1/auth/register", json={"email": "owner@example.com", "password": "long enough"})
        login = await gw.post(
            "/api/v1/auth/login", json={"email": "owner@example.com", "password": "long enough"}
        )
        bearer = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
        key = (
            await gw.post(
                "/api/v1/api-keys",
                json={"name": "agents", "scopes": ["agents:read", "agents:write"]},
                headers=bearer,
            )
        ).json()["data"]["key"]

        async def start_agent(name: str) -> Any:
            settings = make_settings(
                tmp_path / name,
                public_url="http://echo.test",
                gateway_url="http://gw.test",
                gateway_key=key,
                heartbeat_seconds=0.05,
                outbound_allowlist=[],
            )
            agent = create_agent_app(ECHO_AGENT, settings, outbound_transport=router, resolver=resolver)
            router.apps["echo.test"] = agent
            return agent

        async def listed() -> list[dict[str, Any]]:
            body: list[dict[str, Any]] = (await gw.get("/api/v1/agents", headers=bearer)).json()["data"]
            return body

        first = await start_agent("echo1")
        async with LifespanManager(first):
            async with asyncio.timeout(5):
                while not (agents := await listed()) or agents[0]["status"] != "online":
                    await asyncio.sleep(0.02)
            assert agents[0]["name"] == "Echo Agent" and agents[0]["endpoint"] == "http://echo.test/a2a"
            first_id = agents[0]["id"]
            beat = agents[0]["lastHeartbeat"]
            async with asyncio.timeout(5):
                while (await listed())[0]["lastHeartbeat"] == beat:
                    await asyncio.sleep(0.02)
        second = await start_agent("echo2")
        async with LifespanManager(second):
            await asyncio.sleep(0.2)
            agents = await listed()
            assert len(agents) == 1 and agents[0]["id"] == first_id
            assert [s["id"] for s in agents[0]["skills"]] == ["echo", "countdown", "ask", "whoami"]
