"""The engine's ``/auth`` and ``/api-keys`` routes forwarded to a real gateway, in the seed's style.

The gateway runs in process (``create_gateway_app`` through httpx's ASGI transport); the engine checks
credentials with the kit's real :class:`~a2a_gateway.app.GatewayAuth` against that gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.routing import Mount

from a2a_gateway.app import GatewayAuth, create_gateway_app
from agents_examples.trading.engine.api.forward import MAX_ANSWER_BYTES, GatewayForwarder
from agents_examples.trading.engine.api.routes import EngineApi
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore
from tests.conftest import make_settings
from tests.trading.engine.api_support import FakeAuth, FakeExchange, running_engine, session

GATEWAY = "http://gw.test"
CREDENTIALS = {"email": "ann@example.com", "password": "long enough password"}


@dataclass
class Stack:
    engine: httpx.AsyncClient
    gateway: httpx.AsyncClient


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    gateway_app = create_gateway_app(
        make_settings(tmp_path / "gw", public_url=GATEWAY, outbound_allowlist=[])
    )
    async with (
        LifespanManager(gateway_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway_app), base_url=GATEWAY) as to_gateway,
    ):
        settings = make_settings(tmp_path / "engine", gateway_url=GATEWAY, outbound_allowlist=[])
        auth = GatewayAuth.from_settings(settings, to_gateway)
        service = EngineService(EngineStore(tmp_path / "engine-data"), FakeExchange())
        api = EngineApi(service, auth, GatewayForwarder(to_gateway, GATEWAY), version="1")
        app = Starlette(routes=[Mount("/api/v1", routes=api.routes())])
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://engine.test"
            ) as engine:
                yield Stack(engine, to_gateway)
        finally:
            service.store.close()


async def test_register_login_and_me_through_the_engine_answer_in_the_seed_style(stack: Stack) -> None:
    registered = await stack.engine.post("/api/v1/auth/register", json=CREDENTIALS)
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert user["email"] == CREDENTIALS["email"] and "data" not in user and "password" not in registered.text

    login = await stack.engine.post("/api/v1/auth/login", json=CREDENTIALS)
    assert login.status_code == 200
    session = login.json()
    assert session["tokenType"] == "Bearer" and session["user"]["id"] == user["id"]
    assert session["accessToken"] and session["refreshToken"]
    assert "set-cookie" not in login.headers

    bearer = {"Authorization": f"Bearer {session['accessToken']}"}
    me = await stack.engine.get("/api/v1/auth/me", headers=bearer)
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    # The engine's own routes take the same token.
    assert (await stack.engine.get("/api/v1/agents", headers=bearer)).json() == []

    refreshed = await stack.engine.post(
        "/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert refreshed.status_code == 200 and refreshed.json()["accessToken"]
    new_bearer = {"Authorization": f"Bearer {refreshed.json()['accessToken']}"}
    out = await stack.engine.post(
        "/api/v1/auth/logout", json={"refreshToken": refreshed.json()["refreshToken"]}, headers=new_bearer
    )
    assert out.status_code == 200 and out.json() == {"loggedOut": True}


async def test_gateway_refusals_become_seed_errors(stack: Stack) -> None:
    await stack.engine.post("/api/v1/auth/register", json=CREDENTIALS)
    wrong = await stack.engine.post(
        "/api/v1/auth/login", json={**CREDENTIALS, "password": "not the password"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Invalid email or password", "code": "UNAUTHENTICATED"}
    again = await stack.engine.post("/api/v1/auth/register", json=CREDENTIALS)
    assert again.status_code == 409 and set(again.json()) >= {"error", "code"}
    invalid = await stack.engine.post("/api/v1/auth/login", json={"email": "x"})
    assert invalid.status_code == 400
    body = invalid.json()
    assert isinstance(body["error"], str) and isinstance(body["code"], str) and body["errors"]
    broken = await stack.engine.post("/api/v1/auth/login", content=b"{nope")
    assert broken.status_code == 400 and broken.json()["code"] == "INVALID_JSON"


async def test_api_keys_are_created_listed_and_revoked_through_the_engine(stack: Stack) -> None:
    await stack.engine.post("/api/v1/auth/register", json=CREDENTIALS)
    token = (await stack.engine.post("/api/v1/auth/login", json=CREDENTIALS)).json()["accessToken"]
    bearer = {"Authorization": f"Bearer {token}"}
    created = await stack.engine.post(
        "/api/v1/api-keys", json={"name": "signals bot", "scopes": ["tasks:write"]}, headers=bearer
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith("nex_") and key["name"] == "signals bot"

    listed = await stack.engine.get("/api/v1/api-keys", headers=bearer)
    assert listed.status_code == 200 and [k["id"] for k in listed.json()] == [key["id"]]
    assert key["key"] not in listed.text

    revoked = await stack.engine.delete(f"/api/v1/api-keys/{key['id']}", headers=bearer)
    assert revoked.status_code == 200 and revoked.json() == {"id": key["id"], "revoked": True}
    [listed_key] = (await stack.engine.get("/api/v1/api-keys", headers=bearer)).json()
    assert listed_key["revokedAt"]
    unknown = await stack.engine.delete("/api/v1/api-keys/no-such-key", headers=bearer)
    assert unknown.status_code == 404 and set(unknown.json()) == {"error", "code"}
    dotted = await stack.engine.delete("/api/v1/api-keys/%2E%2E", headers=bearer)
    assert dotted.status_code == 404 and dotted.json()["code"] == "API_KEY_NOT_FOUND"


def _engine_over(
    transport: httpx.AsyncBaseTransport, tmp_path: Path
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    to_gateway = httpx.AsyncClient(transport=transport)
    service = EngineService(EngineStore(tmp_path), FakeExchange())
    api = EngineApi(service, FakeAuth(), GatewayForwarder(to_gateway, GATEWAY), version="1")
    app = Starlette(routes=[Mount("/api/v1", routes=api.routes())])
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://engine.test"
    ), to_gateway


async def test_an_unreachable_or_misbehaving_gateway_is_gateway_unavailable(tmp_path: Path) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" + b"1," * MAX_ANSWER_BYTES + b"1]")

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    for n, handler in enumerate((unreachable, huge, not_json)):
        engine, to_gateway = _engine_over(httpx.MockTransport(handler), tmp_path / str(n))
        async with engine, to_gateway:
            answer = await engine.post("/api/v1/auth/login", json=CREDENTIALS)
        assert answer.status_code == 502, handler.__name__
        assert answer.json()["code"] == "GATEWAY_UNAVAILABLE"


async def test_the_forwarded_request_carries_the_credential_and_body_but_no_cookie(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            429,
            json={"error": {"code": "RATE_LIMITED", "message": "Slow down"}},
            headers={"Retry-After": "7"},
        )

    engine, to_gateway = _engine_over(httpx.MockTransport(gateway), tmp_path)
    async with engine, to_gateway:
        answer = await engine.get(
            "/api/v1/api-keys?limit=5",
            headers={"Authorization": "Bearer t-ann", "Cookie": "nexus_session=abc"},
        )
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert answer.json() == {"error": "Slow down", "code": "RATE_LIMITED"}
    [request] = seen
    assert str(request.url) == f"{GATEWAY}/api/v1/api-keys?limit=5"
    assert request.headers["authorization"] == "Bearer t-ann" and "cookie" not in request.headers


async def test_without_a_gateway_the_account_routes_are_unavailable(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        answer = await engine.client.post("/api/v1/auth/login", json=CREDENTIALS)
        assert answer.status_code == 502 and answer.json()["code"] == "GATEWAY_UNAVAILABLE"
        me = await engine.client.get("/api/v1/auth/me", headers=session("ann"))
        assert me.status_code == 502
