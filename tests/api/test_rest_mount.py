"""The REST mount: one error boundary for every resource it holds, and nothing else in the URL table
changes (404 and 405 keep the JSON body, routes after the mount are still reached, JSON-RPC keeps its
error shapes)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.errors import http_exception_handlers
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.middleware import RequestLogMiddleware
from a2a_gateway.api.rest.bodies import data
from a2a_gateway.api.rest.mount import rest_mount
from a2a_gateway.app import create_gateway_app
from a2a_gateway.errors import RateLimited
from a2a_gateway.log import JsonFormatter, RequestIdFilter
from tests.conftest import make_settings


class Gadgets:
    """A resource whose endpoints fail in the ways the boundary must answer."""

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/gadgets", self.list_all, methods=["GET"]),
            Route("/api/v1/gadgets/limited", self.limited, methods=["POST"]),
            Route("/api/v1/gadgets/broken", self.broken, methods=["GET"]),
        ]

    async def list_all(self, request: Request) -> Response:
        return data([])

    async def limited(self, request: Request) -> Response:
        raise RateLimited("Rate limit exceeded for gadgets", retry_after=2.4, limit=5, remaining=0)

    async def broken(self, request: Request) -> Response:
        raise RuntimeError("secret detail")


async def plain(request: Request) -> Response:
    return PlainTextResponse("outside the mount")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[rest_mount(Gadgets()), Route("/api/v1/other", plain, methods=["GET"])],
        middleware=[Middleware(RequestLogMiddleware, metrics=Metrics())],
        exception_handlers=http_exception_handlers(),
    )
    # Exceptions the app lets escape would fail the test (raise_app_exceptions stays on).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_a_gateway_error_becomes_the_rest_error_body_with_its_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/gadgets/limited")
    assert response.status_code == 429
    assert response.json() == {
        "error": {"code": "RATE_LIMITED", "message": "Rate limit exceeded for gadgets"}
    }
    assert response.headers["retry-after"] == "2" and response.headers["x-ratelimit-limit"] == "5"


async def test_an_unexpected_error_is_a_generic_500_logged_with_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    errors = logging.getLogger("a2a_gateway.api.errors")
    errors.addHandler(handler)
    try:
        response = await client.get("/api/v1/gadgets/broken", headers={"X-Request-ID": "req-7"})
    finally:
        errors.removeHandler(handler)
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INTERNAL", "message": "Internal error"}}
    assert "secret" not in response.text
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [doc["requestId"] for doc in logged] == ["req-7"]
    assert "secret detail" in logged[0]["exc"]


async def test_the_mount_claims_only_its_own_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/gadgets")).json() == {"data": []}
    other = await client.get("/api/v1/other")
    assert other.status_code == 200 and other.text == "outside the mount"
    wrong_method = await client.delete("/api/v1/gadgets")
    assert wrong_method.status_code == 405 and set(wrong_method.headers["allow"].split(", ")) == {
        "GET",
        "HEAD",
    }
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    unknown = await client.get("/api/v1/gadgets/none")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gateway_app(make_settings(tmp_path))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


async def test_in_the_gateway_rest_and_json_rpc_keep_their_own_error_shapes(
    gateway: httpx.AsyncClient,
) -> None:
    rest = await gateway.get("/api/v1/agents/no-such-agent")
    assert rest.status_code in (401, 404) and set(rest.json()) == {"error"}
    assert (await gateway.put("/api/v1/api-keys")).headers["allow"] == "POST"
    rpc = await gateway.post("/api/v1/a2a", content=b"{", headers={"Content-Type": "application/json"})
    assert rpc.json()["jsonrpc"] == "2.0" and rpc.json()["error"]["code"] == -32700
