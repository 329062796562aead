"""The kit's public helper on a plain Starlette app: one account, the gateway's, for an agent's own API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from a2a_gateway.app import GatewayAuth, create_agent_app, create_gateway_app
from a2a_gateway.auth.gateway_identity import GatewayIdentity
from a2a_gateway.auth.jwks_keys import JwksKeys
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.tokens import AccessTokens
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import host_of
from tests.fakes import MemorySigningKeys

PUBLIC = "93.184.216.34"
GW = "gw.test"
PASSWORD = "long enough password"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host in (GW, "engine.example") else []


class Router(httpx.AsyncBaseTransport):
    """gw.test is the gateway in process; counts the calls to its identity routes."""

    def __init__(self, gateway: Starlette) -> None:
        self.gateway = httpx.ASGITransport(app=gateway)
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if host_of(request) != GW:
            raise httpx.ConnectError("connection refused", request=request)
        self.paths.append(request.url.path)
        return await self.gateway.handle_async_request(request)


def api(auth: GatewayAuth) -> Starlette:
    """An agent's own API: one protected route that says who called."""

    @auth.protect
    async def me(request: Request) -> Response:
        return JSONResponse({"user": request.state.caller.user, "scopes": sorted(request.state.scopes)})

    return Starlette(routes=[Route("/me", me)])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=f"http://{GW}", outbound_allowlist=[]), resolver=resolver
    )
    router = Router(gateway)
    async with (
        LifespanManager(gateway),
        httpx.AsyncClient(transport=router, base_url=f"http://{GW}") as gw,
        httpx.AsyncClient(transport=router) as outbound,
    ):
        await gw.post("/api/v1/auth/register", json={"email": "ann@example.com", "password": PASSWORD})
        login = (
            await gw.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        ).json()
        token = login["data"]["accessToken"]
        bearer = {"Authorization": f"Bearer {token}"}
        user_id = (await gw.get("/api/v1/auth/me", headers=bearer)).json()["data"]["id"]
        scopes = ["agents:read", "agents:write", "tasks:write"]
        user_key = (
            await gw.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=bearer)
        ).json()["data"]["key"]
        spec = {
            "name": "Trading engine",
            "endpoint": "https://engine.example/a2a",
            "skills": [{"id": "trade", "name": "Trade", "description": "d"}],
        }
        agent = (await gw.post("/api/v1/agents", json=spec, headers=bearer)).json()["data"]
        agent_key = (
            await gw.post(f"/api/v1/agents/{agent['id']}/api-keys", json={"name": "engine"}, headers=bearer)
        ).json()["data"]["key"]
        settings = make_settings(
            tmp_path / "engine", gateway_url=f"http://{GW}", agent_id=agent["id"], agent_key=agent_key
        )
        auth = GatewayAuth.from_settings(settings, client=outbound)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api(auth)), base_url="http://engine"
        ) as c:
            yield {
                "client": c,
                "router": router,
                "token": token,
                "user_key": user_key,
                "agent_key": agent_key,
                "user_id": user_id,
            }


def unauthorized(response: httpx.Response) -> str:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "UNAUTHENTICATED"
    message: str = error["message"]
    return message


async def test_a_gateway_access_token_is_accepted(world: dict[str, Any]) -> None:
    response = await world["client"].get("/me", headers={"Authorization": f"Bearer {world['token']}"})
    assert response.status_code == 200, response.text
    assert response.json()["user"] == world["user_id"]


async def test_a_user_key_is_accepted_through_introspection_and_cached(world: dict[str, Any]) -> None:
    for _ in range(3):
        response = await world["client"].get("/me", headers={"X-API-Key": world["user_key"]})
        assert response.json() == {
            "user": world["user_id"],
            "scopes": ["agents:read", "agents:write", "tasks:write"],
        }
    assert world["router"].paths.count("/api/v1/auth/introspect") == 1


async def test_a_token_signed_with_another_key_is_refused(world: dict[str, Any]) -> None:
    other = AccessTokens(KeyRing(MemorySigningKeys()), issuer=f"http://{GW}")
    forged, _ = await other.issue(world["user_id"], ["tasks:write"])
    message = unauthorized(await world["client"].get("/me", headers={"Authorization": f"Bearer {forged}"}))
    assert forged not in message


async def test_no_credential_or_an_agent_key_is_refused(world: dict[str, Any]) -> None:
    unauthorized(await world["client"].get("/me"))
    message = unauthorized(await world["client"].get("/me", headers={"X-API-Key": world["agent_key"]}))
    assert world["agent_key"] not in message
    unauthorized(await world["client"].get("/me", headers={"Authorization": "Basic abc"}))


async def test_an_unreachable_gateway_means_401_not_a_server_error(tmp_path: Path) -> None:
    # The helper's own client is guarded: a loopback gateway outside the allowlist is never reached.
    settings = make_settings(
        tmp_path, gateway_url="http://127.0.0.1:9", outbound_allowlist=[], agent_key=None
    )
    async with GatewayAuth.from_settings(settings) as auth:
        transport = httpx.ASGITransport(app=api(auth))
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            token = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln"
            unauthorized(await client.get("/me", headers={"Authorization": f"Bearer {token}"}))
            unauthorized(await client.get("/me", headers={"X-API-Key": "nex_" + "a" * 43}))


async def test_a_kit_agent_app_exposes_its_helper(tmp_path: Path) -> None:
    app = create_agent_app(ECHO_AGENT, make_settings(tmp_path, gateway_url="http://gw.example"))
    auth = app.state.gateway_auth
    assert isinstance(auth, GatewayAuth) and auth.identity is not None
    assert auth.identity is app.state.gateway_auth.identity
    alone = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "alone"))
    assert alone.state.gateway_auth.identity is None


# --- WebSocket ------------------------------------------------------------------------------------------


class Published:
    """The JWKS of a key ring, as a JwksSource."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def fetch(self) -> dict[str, Any]:
        return await self.ring.jwks()


async def websocket(app: Starlette, query: str, extensions: dict[str, Any]) -> list[MutableMapping[str, Any]]:
    """Open a WebSocket to ``app`` straight over ASGI; the messages the app sent."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await incoming.get()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            await incoming.put({"type": "websocket.disconnect", "code": message.get("code", 1000)})

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/feed",
        "raw_path": b"/feed",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"engine")],
        "client": ("127.0.0.1", 5000),
        "server": ("engine", 80),
        "subprotocols": [],
        "extensions": extensions,
    }
    await app(scope, receive, send)
    return sent


async def test_a_websocket_takes_the_token_as_a_query_parameter_and_refuses_without_one() -> None:
    ring = KeyRing(MemorySigningKeys())
    tokens = AccessTokens(ring, issuer="https://gw.example")
    token, _ = await tokens.issue("user-5", ["tasks:read"])
    identity = GatewayIdentity(
        JwksKeys(Published(ring)).lookup, issuer="https://gw.example", audience=lambda: None
    )
    auth = GatewayAuth(identity)

    @auth.protect
    async def feed(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_json({"user": socket.state.caller.user})
        await socket.close()

    app = Starlette(routes=[WebSocketRoute("/feed", feed)])
    accepted = await websocket(app, f"token={token}", {})
    assert [m["type"] for m in accepted] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(accepted[1]["text"]) == {"user": "user-5"}

    denied = await websocket(app, "", {"websocket.http.response": {}})
    assert denied[0]["type"] == "websocket.http.response.start" and denied[0]["status"] == 401
    body = b"".join(m.get("body", b"") for m in denied[1:])
    assert json.loads(body)["error"]["code"] == "UNAUTHENTICATED"

    closed = await websocket(app, "token=forged", {})  # a server without denial responses: closed, 1008
    assert [(m["type"], m.get("code")) for m in closed] == [("websocket.close", 1008)]
