"""The nginx test proxy (docs/deploy/nginx.conf) in front of two small real servers: it balances
requests over both, and passes an SSE stream through event by event, not buffered until the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.cluster.nginx import TEMPLATE, running_nginx, site_config
from tests.conftest import LiveServer, free_port

STEP = 10.0  # bound of every wait below
# Larger than nginx's 4 KiB proxy buffer: with proxy_buffering on, nginx holds an event this size until
# more of the response comes (small events happen to pass either way).
PADDING = "x" * 6000


def small_server(name: str, release: asyncio.Event) -> Starlette:
    """Answers /who with ``name``; /events sends one event, waits for ``release``, sends another."""

    async def who(request: Request) -> Response:
        return PlainTextResponse(name)

    async def events(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield f"id: 1\ndata: first from {name} {PADDING}\n\n".encode()
            await asyncio.wait_for(release.wait(), STEP)
            yield b"id: 2\ndata: second\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[Route("/who", who), Route("/events", events)])


@pytest.fixture
async def two_servers() -> AsyncIterator[tuple[list[LiveServer], asyncio.Event]]:
    release = asyncio.Event()
    servers = [LiveServer(small_server(name, release), free_port()) for name in ("one", "two")]
    for server in servers:
        await server.start()
    try:
        yield servers, release
    finally:
        release.set()
        for server in servers:
            await server.stop()


def ports(servers: list[LiveServer]) -> list[int]:
    return [int(server.url.rsplit(":", 1)[1]) for server in servers]


async def test_requests_through_nginx_reach_both_servers(
    tmp_path: Path, two_servers: tuple[list[LiveServer], asyncio.Event]
) -> None:
    servers, _ = two_servers
    async with running_nginx(tmp_path, ports(servers)) as proxy:
        seen = set()
        async with httpx.AsyncClient(base_url=proxy.url, timeout=STEP) as client:
            for _ in range(10):
                answer = await client.get("/who")
                assert answer.status_code == 200, proxy.log_text()
                seen.add(answer.text)
        assert seen == {"one", "two"}


async def test_an_event_stream_passes_nginx_event_by_event(
    tmp_path: Path, two_servers: tuple[list[LiveServer], asyncio.Event]
) -> None:
    servers, release = two_servers
    async with (
        running_nginx(tmp_path, ports(servers)) as proxy,
        httpx.AsyncClient(base_url=proxy.url, timeout=STEP) as client,
        client.stream("GET", "/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        # The server holds the rest of the response until released: a buffering proxy sends nothing.
        first = await asyncio.wait_for(anext(lines), STEP)
        assert first == "id: 1"
        data = await asyncio.wait_for(anext(lines), STEP)
        assert data.startswith("data: first from ") and data.endswith(PADDING)
        assert not release.is_set()
        release.set()
        rest = [line async for line in lines]
    assert rest == ["", "id: 2", "data: second", ""]


def test_the_test_proxy_is_the_documented_one() -> None:
    documented = TEMPLATE.read_text()
    built = site_config([9001, 9002, 9003], 9000)
    for setting in (
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_read_timeout 1h;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ):
        assert setting in documented and setting in built
    for port in (9001, 9002, 9003):
        assert f"server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;" in built
    assert "listen 127.0.0.1:9000;" in built and "8001" not in built and "8002" not in built
