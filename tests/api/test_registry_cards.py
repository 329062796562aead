"""Registering agents from their published cards (1.0 and 0.3), fetched through the SSRF guard."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import host_of

PUBLIC = "93.184.216.34"


async def public_resolver(host: str, port: int) -> list[str]:
    known = {
        "echo.test": [PUBLIC],
        "garbage.test": [PUBLIC],
        "bomb.test": [PUBLIC],
        "internal.test": ["10.1.2.3"],
    }
    return known.get(host, [])


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    garbage = httpx.MockTransport(lambda request: httpx.Response(200, content=b"<html>not a card</html>"))

    async def route(request: httpx.Request) -> httpx.Response:
        if host_of(request) == "bomb.test":
            # 64 MiB of JSON whitespace in a few KB of gzip, sent compressed whatever was asked for.
            bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}")
            return httpx.Response(200, headers={"content-encoding": "gzip"}, content=bomb)
        if host_of(request) == "echo.test":
            return await httpx.ASGITransport(app=echo).handle_async_request(request)
        return await garbage.handle_async_request(request)

    gw = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=httpx.MockTransport(route),
        resolver=public_resolver,
    )
    transport = httpx.ASGITransport(app=gw)
    credentials = {"email": "c@example.com", "password": "long enough"}
    async with (
        LifespanManager(echo),
        LifespanManager(gw),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
    ):
        await client.post("/api/v1/auth/register", json=credentials)
        login = await client.post("/api/v1/auth/login", json=credentials)
        client.headers["Authorization"] = f"Bearer {login.json()['data']['accessToken']}"
        yield client


async def test_import_a_1_0_card(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/api/v1/agents", json={"cardUrl": "http://echo.test", "tags": ["demo"], "pricePerTask": 3}
    )
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()["data"]
    assert agent["name"] == "Echo Agent" and agent["endpoint"] == "http://echo.test/a2a"
    assert agent["protocolVersion"] == "1.0" and agent["tags"] == ["demo"] and agent["pricePerTask"] == 3
    assert [s["id"] for s in agent["skills"]] == ["echo", "countdown", "ask", "whoami"]
    found = (await gateway.get("/api/v1/discover", params={"skillTags": "stream"})).json()["data"]
    assert [a["id"] for a in found] == [agent["id"]]


async def test_import_a_0_3_card(gateway: httpx.AsyncClient) -> None:
    # The query asks the kit agent for its pure 0.3 card, which names only its 0.3 interface.
    url = "http://echo.test/.well-known/agent.json?A2A-Version=0.3"
    response = await gateway.post("/api/v1/agents", json={"cardUrl": url})
    assert response.status_code == 201, response.text
    agent = response.json()["data"]
    assert agent["protocolVersion"] == "0.3" and agent["endpoint"] == "http://echo.test/a2a"
    assert agent["cardUrl"] == url


@pytest.mark.parametrize("path", ["/.well-known/agent.json", "/.well-known/agent-card.json", ""])
async def test_import_the_card_both_versions_read(gateway: httpx.AsyncClient, path: str) -> None:
    """Without a version hint a kit agent serves 1.0 and 0.3 fields together: read as 1.0, its 1.0
    interface is preferred."""
    response = await gateway.post("/api/v1/agents", json={"cardUrl": "http://echo.test" + path})
    assert response.status_code == 201, response.text
    agent = response.json()["data"]
    assert agent["protocolVersion"] == "1.0" and agent["endpoint"] == "http://echo.test/a2a"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # Address refusals never say what a name resolves to (or whether it resolves): the log does.
        ("http://internal.test", "endpoint not allowed"),
        ("http://127.0.0.1:9", "endpoint not allowed"),
        ("http://169.254.169.254", "endpoint not allowed"),
        ("http://garbage.test", "not JSON"),
        ("http://bomb.test", "compressed"),
        ("http://nowhere.test", "endpoint not allowed"),
        ("http://echo.test/missing.json", "HTTP 404"),
        ("file:///etc/passwd", "scheme"),
    ],
)
async def test_import_refusals(gateway: httpx.AsyncClient, url: str, why: str) -> None:
    response = await gateway.post("/api/v1/agents", json={"cardUrl": url})
    assert response.status_code == 400, response.text
    assert why in response.json()["error"]["message"]
    assert (await gateway.get("/api/v1/agents")).json()["data"] == []


async def test_kit_agents_serve_no_gateway_rest_routes(tmp_path: Path) -> None:
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path))
    async with (
        LifespanManager(echo),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=echo), base_url="http://e") as c,
    ):
        assert (await c.get("/api/v1/agents")).status_code == 404
        assert (await c.post("/api/v1/auth/login", json={})).status_code == 404
        assert (await c.get("/.well-known/agent-card.json")).json()["name"] == "Echo Agent"
