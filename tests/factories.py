"""Plain factory functions shared by the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

V1 = {"A2A-Version": "1.0"}


def user_message(text: str = "hello", **extra: Any) -> dict[str, Any]:
    """A 1.0 user message with one text part."""
    return {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}], **extra}


def legacy_message(text: str = "hello", **extra: Any) -> dict[str, Any]:
    """A 0.3 user message with one text part."""
    return {
        "kind": "message",
        "messageId": uuid.uuid4().hex,
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        **extra,
    }


def envelope(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    """A JSON-RPC request body."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


async def rpc(
    client: httpx.AsyncClient,
    method: str,
    params: Any = None,
    *,
    version: str | None = "1.0",
    request_id: Any = 1,
    path: str = "/a2a",
) -> dict[str, Any]:
    """POST one JSON-RPC call and return the decoded response (asserting HTTP 200)."""
    headers = {"A2A-Version": version} if version else {}
    response = await client.post(path, json=envelope(method, params, request_id), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


async def send_text(
    client: httpx.AsyncClient, text: str = "hello", skill: str | None = None, **config: Any
) -> dict[str, Any]:
    """SendMessage (1.0) and return the task of the result."""
    params: dict[str, Any] = {"message": user_message(text)}
    if skill:
        params["metadata"] = {"skillId": skill}
    if config:
        params["configuration"] = config
    body = await rpc(client, "SendMessage", params)
    assert "result" in body, body
    task: dict[str, Any] = body["result"]["task"]
    return task


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    """The error object of a JSON-RPC error response."""
    assert "error" in body and "result" not in body, body
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "data"}
    return error


class Clock:
    """An injectable clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def drop_redis_keys(url: str, prefix: str) -> None:
    """Delete every Redis key under a test's prefix (the server keeps state between runs)."""
    from a2a_gateway.storage.redis_store import connect

    client = connect(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def host_of(request: httpx.Request) -> str:
    """The host a request was addressed to. Outbound requests are pinned to the vetted IP address, so
    in-process test transports route on the Host header, not on the URL."""
    return request.headers["host"].split(":")[0]
