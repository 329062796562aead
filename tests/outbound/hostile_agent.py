"""Hostile agents for tests: raw TCP servers on loopback that never end their answer and count what
they managed to send before the client hung up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

OFFERED = 96 * 1024 * 1024  # what a hostile agent would send if nobody stopped reading
# What loopback socket buffers can hold on both sides (autotuned up to a few MB each).
SLACK = 24 * 1024 * 1024
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


Start = Callable[[bytes, Answer | None], Awaitable[Hostile]]


class HostileAgents:
    """Starts hostile agents: each answers every request with ``head`` and then what ``answer`` writes
    (by default x's without end)."""

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []

    async def start(self, head: bytes, answer: Answer | None = None) -> Hostile:
        """A new hostile agent on a free loopback port."""
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
        self._servers.append(server)
        agent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/a2a"
        return agent

    async def close(self) -> None:
        """Stop every server."""
        for server in self._servers:
            server.close()
            await server.wait_closed()


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"


async def chunked(writer: asyncio.StreamWriter, hostile: Hostile) -> None:
    while hostile.sent < OFFERED:
        writer.write(b"10000\r\n" + BLOCK + b"\r\n")
        await writer.drain()
        hostile.sent += len(BLOCK)


async def many_data_lines(writer: asyncio.StreamWriter, hostile: Hostile) -> None:
    """One event that never ends: short data lines with no blank line between them."""
    line = b"data: " + b"y" * 1000 + b"\n"
    block = line * 64
    while hostile.sent < OFFERED:
        writer.write(block)
        await writer.drain()
        hostile.sent += len(block)
