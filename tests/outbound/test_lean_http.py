"""The lean HTTP/1.1 client of the relay's unary calls, against real sockets: keep-alive reuse, the
vetted (pinned) address with the name in the Host header, SSRF refusals, response framings, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from a2a_gateway.errors import OutboundRefused
from a2a_gateway.outbound.lean_http import LeanHttp, LeanHttpError
from a2a_gateway.outbound.ssrf import SsrfGuard

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def loopback_resolver(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == "agent.test" else []


def guard(allow: bool = True) -> SsrfGuard:
    return SsrfGuard(["127.0.0.0/8"] if allow else [], resolver=loopback_resolver)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start raw TCP servers on loopback; their port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(srv)
        port: int = srv.sockets[0].getsockname()[1]
        return port

    yield start
    for srv in servers:
        srv.close()


def keep_alive_json(seen: list[Any]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head, body = await read_request(reader)
                seen.append((peer, head, body))
                answer = b'{"ok":true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(answer), answer)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


async def test_connections_are_reused_and_pinned_with_the_name_kept(server: Any) -> None:
    seen: list[Any] = []
    port = await server(keep_alive_json(seen))
    client = LeanHttp(guard())
    try:
        for n in range(3):
            reply = await client.post(
                f"http://agent.test:{port}/a2a", b'{"n":%d}' % n, {"A2A-Version": "1.0"}
            )
            assert reply.status == 200 and reply.body == b'{"ok":true}'
    finally:
        await client.aclose()
    assert len({peer for peer, _, _ in seen}) == 1  # one connection for all three
    head = seen[0][1].decode()
    assert head.startswith("POST /a2a HTTP/1.1\r\n") and f"\r\nHost: agent.test:{port}\r\n" in head
    assert "\r\nA2A-Version: 1.0\r\n" in head and [b for _, _, b in seen] == [
        b'{"n":0}',
        b'{"n":1}',
        b'{"n":2}',
    ]


async def test_forbidden_destinations_are_refused_before_connecting(server: Any) -> None:
    seen: list[Any] = []
    port = await server(keep_alive_json(seen))
    client = LeanHttp(guard(allow=False))
    for url in (
        f"http://127.0.0.1:{port}/a2a",
        f"http://agent.test:{port}/a2a",
        "http://169.254.169.254/a2a",
    ):
        with pytest.raises(OutboundRefused):
            await client.post(url, b"{}", {})
    assert seen == []


async def test_chunked_and_connection_framed_bodies(server: Any) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n'
        )
        await writer.drain()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n[1,2,3]")
        writer.close()

    client = LeanHttp(guard())
    assert (await client.post(f"http://127.0.0.1:{await server(chunked)}/", b"{}", {})).body == b'{"a":1}'
    assert (await client.post(f"http://127.0.0.1:{await server(until_close)}/", b"{}", {})).body == b"[1,2,3]"
    await client.aclose()


async def test_a_connection_the_server_closed_is_not_reused(server: Any) -> None:
    peers: list[Any] = []

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # without saying "Connection: close"

    port = await server(one_shot)
    client = LeanHttp(guard())
    for _ in range(2):
        assert (await client.post(f"http://127.0.0.1:{port}/", b"{}", {})).body == b"{}"
        await asyncio.sleep(0.05)  # the close reaches the client's connection
    await client.aclose()
    assert len(set(peers)) == 2


async def test_time_limit_and_size_limit(server: Any) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 999999999\r\n\r\n")
        await writer.drain()

    client = LeanHttp(guard(), answer_seconds=0.2, max_body_bytes=1024)
    with pytest.raises(LeanHttpError, match="timed out"):
        await client.post(f"http://127.0.0.1:{await server(silent)}/", b"{}", {})
    with pytest.raises(LeanHttpError):
        await client.post(f"http://127.0.0.1:{await server(huge)}/", b"{}", {})
    with pytest.raises(LeanHttpError):
        await client.post("http://127.0.0.1:9/", b"{}", {})  # nothing listens on the discard port
    await client.aclose()
