"""The server builder: data-directory lock, port binding, proxy trust, header timeout, per-client cap.

The limits are tested against a real uvicorn server on a free loopback port, with raw sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from a2a_gateway.server import AppServer, StartupError, listen, lock_data_dir
from a2a_gateway.settings import Settings

HEAD_TIMEOUT = 0.2
CAP = 3
Scope = dict[str, Any]
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class EchoClient:
    """A bare ASGI app answering each request with the client address it sees; /hold waits for a release."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/hold":
            await self.release.wait()
        body = scope["client"][0].encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "header_timeout_seconds": HEAD_TIMEOUT,
        "max_connections_per_client": CAP,
        "log_level": "WARNING",
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[AppServer, EchoClient]]]]:
    """Factory: an AppServer for a fresh EchoClient app on a free loopback port, stopped afterwards."""
    started: list[tuple[AppServer, socket.socket]] = []

    async def start(**overrides: Any) -> tuple[AppServer, EchoClient]:
        app = EchoClient()
        sock = listen("127.0.0.1", 0)
        server = AppServer(app, settings_for(tmp_path, **overrides), sock)
        await server.start()
        started.append((server, sock))
        return server, app

    yield start
    for server, sock in started:
        server.stop(force=True)
        await server.wait()
        sock.close()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[AppServer], Awaitable[Conn]]]:
    """Factory: a raw loopback connection to a server; every one is closed after the test."""
    opened: list[asyncio.StreamWriter] = []

    async def open_one(server: AppServer) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        opened.append(writer)
        return reader, writer

    yield open_one
    for writer in opened:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str = "/", extra: bytes = b""
) -> tuple[bytes, bytes]:
    """Send one keep-alive GET; the status line and the body."""
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n")
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        return head.split(b"\r\n", 1)[0], await reader.readexactly(length)


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        return await reader.read()


async def test_forwarded_for_is_not_believed_by_default(serve: Any, connect: Any) -> None:
    server, _ = await serve()
    reader, writer = await connect(server)
    _, seen = await get(reader, writer, extra=b"X-Forwarded-For: 203.0.113.9\r\n")
    assert seen == b"127.0.0.1"
    writer.close()


async def test_forwarded_for_is_believed_from_a_trusted_proxy(serve: Any, connect: Any) -> None:
    server, _ = await serve(trusted_proxies=["127.0.0.1"])
    reader, writer = await connect(server)
    _, seen = await get(reader, writer, extra=b"X-Forwarded-For: 203.0.113.9\r\n")
    assert seen == b"203.0.113.9"
    writer.close()


async def test_one_address_gets_at_most_the_cap_of_connections(serve: Any, connect: Any) -> None:
    server, _ = await serve()
    held = [await connect(server) for _ in range(CAP)]
    for reader, writer in held:  # answered, and still open (keep-alive)
        assert await get(reader, writer) == (b"HTTP/1.1 200 OK", b"127.0.0.1")
    assert server.connections_from("127.0.0.1") == CAP

    reader, _ = await connect(server)
    refused = await read_to_end(reader)
    assert refused.startswith(b"HTTP/1.1 503") and b"too many connections" in refused
    for reader, writer in held:  # the held ones still work
        assert (await get(reader, writer))[0] == b"HTTP/1.1 200 OK"

    held[0][1].close()
    async with asyncio.timeout(5):  # the server notices the close
        while server.connections_from("127.0.0.1") == CAP:
            await asyncio.sleep(0.01)
    reader, writer = await connect(server)
    assert (await get(reader, writer))[0] == b"HTTP/1.1 200 OK"
    for _, w in [*held[1:], (reader, writer)]:
        w.close()
    async with asyncio.timeout(5):  # every count is given back
        while server.connections_from("127.0.0.1"):
            await asyncio.sleep(0.01)


async def test_a_request_head_that_does_not_arrive_in_time_is_closed(serve: Any, connect: Any) -> None:
    server, _ = await serve()
    partial_reader, partial = await connect(server)
    partial.write(b"GET / HTTP/1.1\r\nHost: test\r\n")  # and never the blank line
    idle_reader, _ = await connect(server)  # sends nothing at all
    assert (await read_to_end(partial_reader)).startswith(b"HTTP/1.1 408")
    assert (await read_to_end(idle_reader)).startswith(b"HTTP/1.1 408")
    async with asyncio.timeout(5):
        while server.connections_from("127.0.0.1"):
            await asyncio.sleep(0.01)


async def test_the_head_timeout_applies_to_every_request_on_a_kept_alive_connection(
    serve: Any, connect: Any
) -> None:
    server, _ = await serve()
    reader, writer = await connect(server)
    assert (await get(reader, writer))[0] == b"HTTP/1.1 200 OK"
    writer.write(b"GET / HTTP/1.1\r\nHo")
    assert (await read_to_end(reader)).startswith(b"HTTP/1.1 408")


async def test_the_head_timeout_does_not_cut_a_request_in_progress(serve: Any, connect: Any) -> None:
    server, app = await serve()
    reader, writer = await connect(server)
    writer.write(b"GET /hold HTTP/1.1\r\nHost: test\r\n\r\n")
    slow_reader, slow = await connect(server)
    slow.write(b"GET / HTTP/1.1\r\n")
    assert (await read_to_end(slow_reader)).startswith(b"HTTP/1.1 408")  # the timeout has passed
    app.release.set()
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_an_app_whose_startup_fails_is_a_startup_error(tmp_path: Path) -> None:
    async def broken(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with listen("127.0.0.1", 0) as sock:
        server = AppServer(broken, settings_for(tmp_path), sock)
        with pytest.raises(StartupError, match="failed to start"):
            await server.start()


def test_a_taken_port_is_a_one_line_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartupError) as error:
            listen("127.0.0.1", port)
    assert str(error.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def test_a_data_directory_is_locked_by_one_holder_at_a_time(tmp_path: Path) -> None:
    with lock_data_dir(tmp_path):
        with pytest.raises(StartupError) as error:
            lock_data_dir(tmp_path)
        assert str(error.value) == (
            f"data directory {tmp_path} is in use by another process (pid {os.getpid()}); "
            "stop it or choose another data directory"
        )
    lock_data_dir(tmp_path).release()  # free again once released


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from a2a_gateway.server import lock_data_dir; "
        "lock = lock_data_dir(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with pytest.raises(StartupError, match=f"pid {holder.pid}"):
            lock_data_dir(tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()
    lock_data_dir(tmp_path).release()


def test_served_websockets_are_not_compressed_and_take_small_client_messages(tmp_path: Path) -> None:
    from a2a_gateway.server import WS_MAX_BYTES, build_config
    from tests.conftest import make_settings

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = build_config(app, make_settings(tmp_path))
    assert config.ws_per_message_deflate is False
    assert config.ws_max_size == WS_MAX_BYTES == 64 * 1024
