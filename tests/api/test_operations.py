"""Health routes, Prometheus metrics, request ids and log lines."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from a2a_gateway.log import JsonFormatter, RequestIdFilter
from tests.factories import rpc, send_text


async def test_health_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok", "checks": {"database": "ok"}}
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).json() == {"status": "ready"}
    nexus = (await client.get("/api/v1/health")).json()
    assert nexus["data"]["status"] == "ok" and nexus["data"]["timestamp"].endswith("Z")


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
