"""Health routes, Prometheus metrics, request ids and log lines."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from a2a_gateway.api.errors import http_exception_handlers
from a2a_gateway.log import JsonFormatter, RequestIdFilter
from tests.factories import rpc, send_text


async def test_health_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok", "checks": {"database": "ok"}}
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).json() == {"status": "ready"}
    nexus = (await client.get("/api/v1/health")).json()
    assert nexus["data"]["status"] == "ok" and nexus["data"]["timestamp"].endswith("Z")


async def test_health_and_metrics_are_served_under_api_v1_too(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        root, nexus = await client.get(path), await client.get("/api/v1" + path)
        assert root.status_code == nexus.status_code == 200, path
        assert nexus.headers["content-type"] == root.headers["content-type"], path
    assert (await client.get("/api/v1/health/live")).json() == {"status": "ok"}
    assert (await client.get("/api/v1/health/ready")).json() == {"status": "ready"}
    assert "a2a_active_streams" in (await client.get("/api/v1/metrics")).text


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no/such/route"), ("POST", "/api/v1/nothing"), ("GET", "/a2a/agents/x/nothing"), ("GET", "/")],
)
async def test_unknown_routes_answer_the_json_error_body(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": "NOT_FOUND", "message": "Not Found"}}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/a2a", "POST"), ("DELETE", "/health", "GET"), ("PUT", "/.well-known/agent-card.json", "GET")],
)
async def test_wrong_methods_answer_405_with_allow_and_the_json_error_body(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert allowed in response.headers["allow"]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_readiness_fails_when_the_database_is_gone(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError("database down")

    monkeypatch.setattr(AsyncEngine, "connect", broken)
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert (await client.get("/api/v1/health")).json()["data"]["status"] == "degraded"


async def test_metrics_count_calls_tasks_and_latency(client: httpx.AsyncClient) -> None:
    await send_text(client)
    await rpc(client, "GetTask", {"id": "missing"})
    await rpc(client, "Bogus", {})
    text = (await client.get("/metrics")).text
    assert 'a2a_rpc_requests_total{method="SendMessage",outcome="ok"} 1' in text
    assert 'a2a_rpc_requests_total{method="GetTask",outcome="error"} 1' in text
    assert 'a2a_rpc_requests_total{method="other",outcome="error"} 1' in text
    assert 'a2a_rpc_duration_seconds_bucket{method="SendMessage",le="+Inf"} 1' in text
    assert 'a2a_tasks{state="TASK_STATE_COMPLETED"} 1' in text
    assert "a2a_active_streams 0" in text
    assert 'http_requests_total{method="POST",status="200"}' in text


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health/live", headers={"X-Request-ID": "bad id\n"})
    assert made.headers["x-request-id"] != "bad id\n" and len(made.headers["x-request-id"]) == 36


async def test_one_json_log_line_per_call_with_request_id(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("a2a_gateway.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        await client.get("/health/live", headers={"X-Request-ID": "req-42"})
    finally:
        access.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["requestId"] == "req-42" and doc["path"] == "/health/live" and doc["status"] == 200


async def test_an_unexpected_error_answers_the_json_error_body_without_its_text() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(routes=[Route("/boom", boom)], exception_handlers=http_exception_handlers())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INTERNAL", "message": "Internal error"}}


async def test_a_locked_database_outside_any_route_boundary_is_503_with_retry_after() -> None:
    import sqlite3

    async def locked(request: Request) -> Response:
        raise sqlite3.OperationalError("database is locked")

    app = Starlette(routes=[Route("/locked", locked)], exception_handlers=http_exception_handlers())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.get("/locked")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["message"] == "The database is busy; retry shortly"
