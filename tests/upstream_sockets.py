"""In-process upstream hosts reachable both ways the gateway calls agents: through an injected httpx
transport (streams, cancels, card fetches) and through real connections of the unary clients.

Each named host is an ASGI app (or ``None``: the connection is refused) and gets its own public address
from ``resolver``, so the SSRF guard vets it and the unary clients connect to that address. The
``open_connection`` opener (the clients' test seam) makes a socket pair and serves one end with
uvicorn's own HTTP/1.1 protocol, as a real server would, with keep-alive; no TCP port is opened. Every
request a host receives is recorded with the way it came in (``socket`` or ``transport``).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from a2a_gateway.outbound.lean_http import Connection
from tests.factories import host_of


@dataclass(frozen=True)
class Received:
    """One request a host received: how it came in, its JSON-RPC method and A2A-Version header."""

    host: str
    via: str
    method: str | None
    version: str | None


def fixed(status: int, content_type: bytes, body: bytes) -> ASGIApp:
    """An ASGI app that answers every request with the same response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class UpstreamHosts:
    """Named in-process hosts, each on its own public address (see the module docstring)."""

    def __init__(self, apps: dict[str, ASGIApp | None]) -> None:
        self.addresses = {name: f"93.184.216.{10 + n}" for n, name in enumerate(apps)}
        self._by_address = {address: name for name, address in self.addresses.items()}
        self._apps = apps
        self.received: list[Received] = []
        self.connections: dict[str, int] = dict.fromkeys(apps, 0)
        self._state = ServerState()
        self._configs: dict[str, uvicorn.Config] = {}
        self._transports = {
            name: httpx.ASGITransport(app=self._recorded(name, "transport", app))
            for name, app in apps.items()
            if app is not None
        }
        self._clients: list[asyncio.StreamWriter] = []

    async def resolver(self, host: str, port: int) -> list[str]:
        """The SSRF guard's resolver: each named host has one address; other names do not resolve."""
        return [self.addresses[host]] if host in self.addresses else []

    async def open_connection(
        self, host: str, port: int, *, limit: int, ssl: Any = None, server_hostname: str | None = None
    ) -> Connection:
        """The unary clients' opener: a connection served by uvicorn's HTTP/1.1 protocol in process."""
        name = self._by_address.get(host)
        app = self._apps.get(name) if name is not None else None
        if name is None or app is None:
            raise ConnectionRefusedError(f"nothing listens on {host}:{port}")
        if ssl is not None:
            raise OSError("the in-process hosts speak plain HTTP")
        config = self._configs.get(name)
        if config is None:
            config = uvicorn.Config(
                self._recorded(name, "socket", app), lifespan="off", log_config=None, access_log=False
            )
            config.load()
            self._configs[name] = config
        ours, theirs = socket.socketpair()
        self.connections[name] += 1
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(
            lambda: H11Protocol(config=config, server_state=self._state, app_state={}), ours
        )
        reader, writer = await asyncio.open_connection(sock=theirs, limit=limit)
        self._clients.append(writer)
        return reader, writer

    def transport(self) -> httpx.AsyncBaseTransport:
        """The httpx transport of the same hosts: requests go to the app their Host header names."""
        return _ByHost(self._transports)

    def methods(self, host: str, via: str | None = None) -> list[tuple[str | None, str | None]]:
        """(A2A-Version, JSON-RPC method) of the POSTs a host received, optionally only one way in."""
        return [(r.version, r.method) for r in self.received if r.host == host and via in (None, r.via)]

    async def aclose(self) -> None:
        """Close the server side of every connection (as uvicorn does at shutdown) and wait for it."""
        for protocol in list(self._state.connections):
            protocol.shutdown()
        if self._state.tasks:
            await asyncio.wait(list(self._state.tasks), timeout=5)
        for writer in self._clients:
            writer.close()
        for transport in self._transports.values():
            await transport.aclose()

    def _recorded(self, name: str, via: str, app: ASGIApp) -> ASGIApp:
        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await app(scope, receive, send)
                return
            body = bytearray()
            headers = dict(scope["headers"])
            version = headers.get(b"a2a-version")

            async def receive_and_record() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    body.extend(message.get("body", b""))
                    if not message.get("more_body"):
                        try:
                            method = orjson.loads(bytes(body)).get("method")
                        except (orjson.JSONDecodeError, AttributeError):
                            method = None
                        self.received.append(
                            Received(name, via, method, version.decode() if version else None)
                        )
                return message

            await app(scope, receive_and_record, send)

        return recording


class _ByHost(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app of its Host header (requests are pinned to addresses)."""

    def __init__(self, transports: dict[str, httpx.ASGITransport]) -> None:
        self._transports = transports

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports.get(host_of(request))
        if transport is None:
            raise httpx.ConnectError("connection refused", request=request)
        return await transport.handle_async_request(request)
