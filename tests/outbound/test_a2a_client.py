"""The upstream A2A client: an agent's own A2A errors reach the caller as those errors; anything else
the agent says that is not A2A is an invalid agent response; a refusal to stream is recognised."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from a2a_gateway.errors import (
    InvalidAgentResponse,
    InvalidParams,
    TaskNotFound,
    UnsupportedOperation,
    UpstreamUnavailable,
)
from a2a_gateway.outbound.a2a_client import A2AClient, StreamingRefused
from a2a_gateway.protocol import v1

URL = "http://agent.test/a2a"


def client_answering(status: int, body: Any) -> A2AClient:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(status, content=content, headers={"content-type": "application/json"})
    )
    return A2AClient(httpx.AsyncClient(transport=transport))


def request() -> v1.SendMessageRequest:
    return v1.SendMessageRequest(
        message=v1.Message(message_id="m", role=v1.Role.USER, parts=[v1.Part(text="x")])
    )


def rpc_error(code: int, message: str = "no") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (-32602, InvalidParams),
        (-32001, TaskNotFound),
        (-32004, UnsupportedOperation),
        (-32099, InvalidAgentResponse),
    ],
)
async def test_agent_errors_on_send(code: int, expected: type[Exception]) -> None:
    with pytest.raises(expected) as raised:
        await client_answering(200, rpc_error(code, "about the request")).send(URL, "1.0", request())
    assert "about the request" in str(raised.value.args[0])


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b"oops", UpstreamUnavailable),
        (200, b"{not json", InvalidAgentResponse),
        (200, [1, 2], InvalidAgentResponse),
    ],
)
async def test_transport_and_garbage_errors(status: int, body: Any, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        await client_answering(status, body).send(URL, "1.0", request())


@pytest.mark.parametrize("code", [-32004, -32601])
async def test_a_refused_stream_is_recognised(code: int) -> None:
    events = client_answering(200, rpc_error(code)).stream(URL, "1.0", request())
    with pytest.raises(StreamingRefused):
        await events.__anext__()


async def test_ping_accepts_any_json_rpc_answer_and_refuses_garbage() -> None:
    await client_answering(200, rpc_error(-32001)).ping(URL, "1.0")
    await client_answering(200, {"jsonrpc": "2.0", "id": 1, "result": {}}).ping(URL, "0.3")
    with pytest.raises(InvalidAgentResponse):
        await client_answering(200, b"<html>").ping(URL, "1.0")
    with pytest.raises(UpstreamUnavailable):
        await client_answering(503, b"").ping(URL, "1.0")
