"""An agent that never ends its body or its SSE line cannot make the gateway buffer it.

Each hostile agent is a raw TCP server on loopback that writes until the client hangs up (or a cap far
above the limits is reached) and counts the bytes it got rid of. Every upstream read of the A2A client
(stream, subscribe, the httpx and the lean unary paths, ping, cancel) must fail with InvalidAgentResponse
naming the limit, and stop reading: what the server managed to send stays within the limit plus the
kernel's socket buffers, far below what it offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from a2a_gateway.errors import GatewayError, InvalidAgentResponse
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.lean_http import LeanHttp
from a2a_gateway.outbound.ssrf import SsrfGuard
from a2a_gateway.protocol import v1

LIMIT = 256 * 1024
OFFERED = 96 * 1024 * 1024  # what a hostile agent would send if nobody stopped reading
# The limit plus what loopback socket buffers can hold on both sides (autotuned up to a few MB each).
BOUND = LIMIT + 24 * 1024 * 1024
BLOCK = b"x" * 65_536


@dataclass
class Hostile:
    """A hostile agent: its URL, and how many body bytes it wrote before the client went away."""

    url: str
    sent: int = 0
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def hung_up(self) -> int:
        """The bytes written once the connection is over."""
        async with asyncio.timeout(10):
            await self.gone.wait()
        return self.sent


Answer = Callable[[asyncio.StreamWriter, Hostile], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(v)
            for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        ),
        0,
    )
    await reader.readexactly(length)


async def _endless(writer: asyncio.StreamWriter, hostile: Hostile, first: bytes = b"") -> None:
    """Write ``first`` and then x's, until the peer is gone or OFFERED bytes are out."""
    writer.write(first)
    hostile.sent += len(first)
    while hostile.sent < OFFERED:
        writer.write(BLOCK)
        await writer.drain()
        hostile.sent += len(BLOCK)


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[bytes, Answer | None], Awaitable[Hostile]]]:
    """Start a hostile agent: it answers every request with ``head`` and then what ``answer`` writes."""
    servers: list[asyncio.Server] = []

    async def start(head: bytes, answer: Answer | None = None) -> Hostile:
        agent = Hostile("")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65_536)
            try:
                await _read_request(reader)
                writer.write(head)
                await (answer or _endless)(writer, agent)
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
                agent.gone.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        agent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/a2a"
        return agent

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"


async def _chunked(writer: asyncio.StreamWriter, hostile: Hostile) -> None:
    while hostile.sent < OFFERED:
        writer.write(b"10000\r\n" + BLOCK + b"\r\n")
        await writer.drain()
        hostile.sent += len(BLOCK)


async def _many_data_lines(writer: asyncio.StreamWriter, hostile: Hostile) -> None:
    """One event that never ends: short data lines with no blank line between them."""
    line = b"data: " + b"y" * 1000 + b"\n"
    block = line * 64
    while hostile.sent < OFFERED:
        writer.write(block)
        await writer.drain()
        hostile.sent += len(block)


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
        (SSE_HEAD, _many_data_lines),  # one endless event
        (JSON_HEAD, None),  # not a stream: one endless body, framed by the connection's end
        (CHUNKED_HEAD, _chunked),  # not a stream: one endless chunked body
    ],
    ids=["endless-line", "endless-event", "endless-body", "endless-chunked-body"],
)
async def test_stream_and_subscribe_stop_reading_at_the_limit(
    hostile: Callable[..., Awaitable[Hostile]],
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
    ("head", "answer"), [(JSON_HEAD, None), (CHUNKED_HEAD, _chunked)], ids=["close", "chunked"]
)
async def test_unary_calls_stop_reading_at_the_limit(
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient, head: bytes, answer: Answer | None
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
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient
) -> None:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    lean = LeanHttp(SsrfGuard(["127.0.0.0/8"], resolver=loopback), max_body_bytes=LIMIT)
    client = bounded(http, lean)
    for head, answer in ((JSON_HEAD, None), (CHUNKED_HEAD, _chunked)):
        agent = await hostile(head, answer)
        # The lean client keeps its own limit (its error does not yet say which limit was passed).
        with pytest.raises(GatewayError):
            await client.send(agent.url, "1.0", request())
        assert await agent.hung_up() < BOUND
    await client.aclose()


async def test_a_declared_length_past_the_limit_is_refused_unread(
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient
) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % OFFERED
    agent = await hostile(head)
    with pytest.raises(InvalidAgentResponse, match=f"exceeded {LIMIT} bytes"):
        await bounded(http).send(agent.url, "1.0", request())
    assert await agent.hung_up() < BOUND


async def test_cancel_never_reads_the_answer(
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient
) -> None:
    agent = await hostile(JSON_HEAD)
    async with asyncio.timeout(10):
        await bounded(http).cancel(agent.url, "1.0", "t-1")  # best effort: returns, raises nothing
    assert await agent.hung_up() < BOUND


async def test_a_compressed_answer_is_refused(
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient
) -> None:
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


async def test_answers_within_the_limits_still_work(
    hostile: Callable[..., Awaitable[Hostile]], http: httpx.AsyncClient
) -> None:
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
