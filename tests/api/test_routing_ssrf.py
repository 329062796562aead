"""The SSRF guard holds when an agent is CALLED, not only when it registers: an agent whose name moves to a
loopback, private or metadata address after registration is refused at call time, before any byte reaches
it, on ``/a2a`` (``metadata.agentId``) and on the proxy ``/a2a/agents/{id}``; allowlisting the address lets
the call through. Registration refusals not covered in test_registry.py (loopback, names) are here too."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import error_of, rpc, user_message

PUBLIC = "93.184.216.34"
FORBIDDEN = [("127.0.0.1", "127.0.0.0/8"), ("10.0.0.1", "10.0.0.0/8"), ("169.254.169.254", "169.254.169.254")]
ENDPOINT = "http://agent.test/a2a"


class Dns:
    """A resolver the test controls: a name answers what the table says at the moment it is looked up."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class Upstream(httpx.AsyncBaseTransport):
    """The network behind the guard: records every request that gets this far, and hands it to a real kit
    agent (whatever address the URL was pinned to, the Host header still names the agent)."""

    def __init__(self, agent: Starlette) -> None:
        self.agent = httpx.ASGITransport(app=agent)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.agent.handle_async_request(request)


@dataclass
class Net:
    gw: httpx.AsyncClient
    dns: Dns
    upstream: Upstream
    owner: dict[str, str]

    async def register(self, **body: Any) -> httpx.Response:
        return await self.gw.post("/api/v1/agents", json=body, headers=self.owner)

    async def register_agent(self, endpoint: str = ENDPOINT) -> str:
        response = await self.register(name="A", endpoint=endpoint, skills=[{"id": "echo", "name": "Echo"}])
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["data"]["id"]
        return agent_id

    async def send(self, agent_id: str, via: str) -> dict[str, Any]:
        """SendMessage to the agent through the gateway: routed by metadata.agentId, or through the proxy."""
        if via == "routed":
            params = {"message": user_message("hi"), "metadata": {"agentId": agent_id}}
            return await rpc(self.gw, "SendMessage", params)
        return await rpc(
            self.gw, "SendMessage", {"message": user_message("hi")}, path=f"/a2a/agents/{agent_id}"
        )


@asynccontextmanager
async def network(tmp_path: Path, allowlist: list[str]) -> AsyncIterator[Net]:
    """A gateway with the given outbound allowlist, an owner logged in, and one kit agent behind the guard."""
    agent = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "agent", public_url="http://agent.test"))
    upstream, dns = Upstream(agent), Dns()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=allowlist),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=upstream,
        resolver=dns,
    )
    async with (
        LifespanManager(agent),
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        credentials = {"email": "ssrf@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        token = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        yield Net(gw, dns, upstream, {"Authorization": f"Bearer {token}"})


VIAS = ["routed", "proxy"]


@pytest.mark.parametrize("address", [a for a, _ in FORBIDDEN])
async def test_agent_whose_name_moves_to_a_forbidden_address_is_not_called(
    tmp_path: Path, address: str
) -> None:
    async with network(tmp_path, allowlist=[]) as net:
        net.dns.table["agent.test"] = [PUBLIC]
        agent_id = await net.register_agent()
        for via in VIAS:
            task = (await net.send(agent_id, via))["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", via
        assert len(net.upstream.requests) == 2

        net.dns.table["agent.test"] = [address]  # the owner's DNS now points somewhere inside
        for via in VIAS:
            error = error_of(await net.send(agent_id, via))
            assert error["code"] == -32051, (via, error)
            # The caller is not told what the agent's name resolves to.
            assert "not allowed" in error["message"] and address not in error["message"], (via, error)
        assert len(net.upstream.requests) == 2  # nothing more reached the network


@pytest.mark.parametrize(("address", "allowed"), FORBIDDEN)
async def test_allowlisted_address_is_called_and_pinned(tmp_path: Path, address: str, allowed: str) -> None:
    async with network(tmp_path, allowlist=[allowed]) as net:
        net.dns.table["agent.test"] = [PUBLIC]
        agent_id = await net.register_agent()
        net.dns.table["agent.test"] = [address]
        for via in VIAS:
            task = (await net.send(agent_id, via))["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", via
            assert task["artifacts"][0]["parts"] == [{"text": "hi"}]
        # Each call went to the address the guard vetted, still naming the agent's host.
        assert [r.url.host for r in net.upstream.requests] == [address, address]
        assert {r.headers["host"] for r in net.upstream.requests} == {"agent.test"}


@pytest.mark.parametrize(
    ("endpoint", "resolves_to"),
    [
        ("http://127.0.0.1:9/a2a", None),
        ("http://agent.test/a2a", "127.0.0.1"),
        ("http://agent.test/a2a", "10.0.0.1"),
        ("http://agent.test/a2a", "169.254.169.254"),
    ],
)
async def test_registration_refuses_forbidden_endpoints(
    tmp_path: Path, endpoint: str, resolves_to: str | None
) -> None:
    # Literal 10.0.0.1 and 169.254.169.254 are refused in test_registry.py; loopback is allowlisted there.
    async with network(tmp_path, allowlist=[]) as net:
        if resolves_to:
            net.dns.table["agent.test"] = [resolves_to]
        response = await net.register(name="A", endpoint=endpoint, skills=[{"id": "echo", "name": "Echo"}])
        assert response.status_code in (400, 422), response.text
        assert "endpoint" in response.json()["error"]["message"]
        # A card URL on such a host is refused before anything is fetched.
        card = await net.register(cardUrl=endpoint.removesuffix("/a2a"))
        assert card.status_code in (400, 422), card.text
        assert net.upstream.requests == []
