"""An agent that never ends its body or its SSE line cannot make the gateway buffer it.

Each hostile agent is a raw TCP server on loopback that writes until the client hangs up (or a cap far
above the limits is reached) and counts the bytes it got rid of. Every upstream read of the A2A client
(stream, subscribe, the httpx and the lean unary paths, ping, cancel) must fail with InvalidAgentResponse
naming the limit, and stop reading: what the server managed to send stays within the limit plus the
kernel's socket buffers, far below what it offered.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import pytest

from a2a_gateway.errors import InvalidAgentResponse
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.lean_http import LeanHttp
from a2a_gateway.outbound.ssrf import SsrfGuard
from a2a_gateway.protocol import v1
from tests.outbound.hostile_agent import (
    CHUNKED_HEAD,
    JSON_HEAD,
    OFFERED,
    SLACK,
    SSE_HEAD,
    Answer,
    Hostile,
    HostileAgents,
    Start,
    chunked,
    many_data_lines,
)

LIMIT = 256 * 1024
BOUND = LIMIT + SLACK


@pytest.fixture
async def hostile() -> AsyncIterator[Start]:
    """Start hostile agents; all are stopped after the test."""
    agents = HostileAgents()
    yield agents.start
    await agents.close()


def request() -> v1.SendMessageRequest:
    return v1.SendMessageRequest(
        message=v1.Message(message_id="m", role=v1.Role.USER, parts=[v1.Part(text="x")])
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def bounded(http: httpx.AsyncClient, lean: LeanHttp | None = None) -> A2AClient:
    return A2AClient(http, timeout=10.0, lean=lean, max_body_bytes=LIMIT, max_line_bytes=LIMIT)


async def _first(events: AsyncGenerator[v1.StreamResponse, None]) -> None:
    try:
        await anext(events)
    finally:
        await events.aclose()


@pytest.mark.parametrize("version", ["1.0", "0.3"])
@pytest.mark.parametrize(
    ("head", "answer"),
    [
        (SSE_HEAD, None),  # one endless line
        (SSE_HEAD, many_data_lines),  # one endless event
        (JSON_HEAD, None),  # not a stream: one endless body, framed by the connection's end
        (CHUNKED_HEAD, chunked),  # not a stream: one endless chunked body
    ],
    ids=["endless-line", "endless-event", "endless-body", "endless-chunked-body"],
)
async def test_stream_and_subscribe_stop_reading_at_the_limit(
    hostile: Start,
    http: httpx.AsyncClient,
    version: str,
    head: bytes,
    answer: Answer | None,
) -> None:
    client = bounded(http)
    for call in (
        lambda url: client.stream(url, version, request()),
        lambda url: client.subscribe(url, version, "t-1"),
    ):
        agent = await hostile(head, answer)
        with pytest.raises(InvalidAgentResponse, match=f"exceeded {LIMIT} bytes"):
            await _first(call(agent.url))
        assert await agent.hung_up() < BOUND


@pytest.mark.parametrize(
    ("head", "answer"), [(JSON_HEAD, None), (CHUNKED_HEAD, chunked)], ids=["close", "chunked"]
)
async def test_unary_calls_stop_reading_at_the_limit(
    hostile: Start, http: httpx.AsyncClient, head: bytes, answer: Answer | None
) -> None:
    client = bounded(http)
    calls = [
        lambda url: client.send(url, "1.0", request()),
        lambda url: client.get_task(url, "0.3", "t-1"),
        lambda url: client.ping(url, "1.0"),
    ]
    for call in calls:
        agent = await hostile(head, answer)
        with pytest.raises(InvalidAgentResponse, match=f"exceeded {LIMIT} bytes"):
            await call(agent.url)
        assert await agent.hung_up() < BOUND


async def test_the_lean_unary_path_stops_reading_at_its_limit(
    hostile: Start, http: httpx.AsyncClient
) -> None:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    lean = LeanHttp(SsrfGuard(["127.0.0.0/8"], resolver=loopback), max_body_bytes=LIMIT)
    client = bounded(http, lean)
    for head, answer in ((JSON_HEAD, None), (CHUNKED_HEAD, chunked)):
        agent = await hostile(head, answer)
        with pytest.raises(InvalidAgentResponse, match=f"exceeded {LIMIT} bytes"):
            await client.send(agent.url, "1.0", request())
        assert await agent.hung_up() < BOUND
    await client.aclose()


async def test_a_declared_length_past_the_limit_is_refused_unread(
    hostile: Start, http: httpx.AsyncClient
) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % OFFERED
    agent = await hostile(head)
    with pytest.raises(InvalidAgentResponse, match=f"exceeded {LIMIT} bytes"):
        await bounded(http).send(agent.url, "1.0", request())
    assert await agent.hung_up() < BOUND


async def test_cancel_never_reads_the_answer(hostile: Start, http: httpx.AsyncClient) -> None:
    agent = await hostile(JSON_HEAD)
    async with asyncio.timeout(10):
        await bounded(http).cancel(agent.url, "1.0", "t-1")  # best effort: returns, raises nothing
    assert await agent.hung_up() < BOUND


async def test_a_compressed_answer_is_refused(hostile: Start, http: httpx.AsyncClient) -> None:
    """Asked for identity, an agent that compresses anyway could inflate a small body past every limit."""
    bomb = gzip.compress(b"0" * (8 * 1024 * 1024))

    async def once(writer: asyncio.StreamWriter, agent: Hostile) -> None:
        writer.write(bomb)
        agent.sent = len(bomb)

    head = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n"
    for media, call in ((b"application/json", "send"), (b"text/event-stream", "stream")):
        agent = await hostile(head % (media, len(bomb)), once)
        client = bounded(http)
        with pytest.raises(InvalidAgentResponse, match="compressed"):
            if call == "send":
                await client.send(agent.url, "1.0", request())
            else:
                await _first(client.stream(agent.url, "1.0", request()))
        await agent.hung_up()


async def test_answers_within_the_limits_still_work(hostile: Start, http: httpx.AsyncClient) -> None:
    def task(task_id: str, pad: int = 0) -> bytes:
        extra = b',"metadata":{"pad":"' + b"p" * pad + b'"}' if pad else b""
        return (b'{"jsonrpc":"2.0","id":1,"result":{"task":{"id":"%s","contextId":"c",'
                b'"status":{"state":"TASK_STATE_WORKING"}%s}}}' % (task_id.encode(), extra))  # fmt: skip

    big = task("t2", LIMIT - 200)
    assert LIMIT - 100 < len(big) <= LIMIT

    async def frames(writer: asyncio.StreamWriter, agent: Hostile) -> None:
        # A comment, a CRLF split across two writes, then one event just under the limit.
        writer.write(b": ping\r")
        await writer.drain()
        writer.write(b"\ndata: " + task("t1") + b"\r\n\r\n")
        writer.write(b"data: " + big + b"\n\n")

    agent = await hostile(SSE_HEAD, frames)
    events = [e async for e in bounded(http).stream(agent.url, "1.0", request())]
    assert [e.task.id for e in events if e.task is not None] == ["t1", "t2"]
    assert len(events) == 2
