"""The relay's unary calls over httpcore's connection pool (httpx's engine without httpx's request layer).

The same job and interface as ``LeanHttp``, with the HTTP/1.1 parsing left to h11 (through httpcore):
keep-alive connections pooled per origin (scheme, host name, port), no redirects, no proxies, no
retries, the body read as a stream and dropped with its connection once it passes the limit.

DNS pinning: every request is vetted by the SSRF guard, and the address it vetted is handed to the
network backend through a context variable of the calling task (httpcore opens a connection in the
task of the request that needs it). The backend connects to that address and to nothing else; the
URL keeps its name, so the ``Host`` header and the TLS server name (and certificate check) are the
URL's. A pooled connection was pinned when it was opened and is reused only for the same origin.
"""

# httpcore's network stream and backend interface takes each operation's timeout as an argument.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from a2a_gateway.outbound.lean_http import (
    MAX_HEAD_BYTES,
    MAX_IDLE_SECONDS,
    BodyTooLarge,
    Connection,
    LeanHttpError,
    LeanReply,
    Opener,
)
from a2a_gateway.outbound.ssrf import SsrfGuard

MAX_IDLE_CONNECTIONS = 256  # over all origins
# (host name, address to connect to) of the request the current task is making.
_PINNED: ContextVar[tuple[str, str] | None] = ContextVar("pinned_destination", default=None)
_FAILURES = (
    httpcore.ProtocolError,
    httpcore.NetworkError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    OSError,
    ValueError,
)


class _Stream(httpcore.AsyncNetworkStream):
    """An asyncio stream pair as httpcore's network stream (per-operation timeouts when httpcore asks)."""

    def __init__(self, connection: Connection) -> None:
        self._reader, self._writer = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` (b"" at the end of the stream)."""
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except OSError as exc:
            raise httpcore.ReadError(type(exc).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write all of ``buffer``."""
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(type(exc).__name__) from None

    async def aclose(self) -> None:
        """Close the connection (without waiting for the peer)."""
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS in place; ``server_hostname`` is the URL's name (SNI and certificate check)."""
        try:
            await self._writer.start_tls(
                ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout
            )
        except TimeoutError:
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except OSError as exc:  # ssl.SSLError included
            raise httpcore.ConnectError(type(exc).__name__) from None
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a stream; ``is_readable`` on an idle connection means the server left."""
        if info == "is_readable":
            return self._reader.at_eof() or self._writer.is_closing()
        names = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername"}
        return self._writer.get_extra_info(names.get(info, info))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the address the SSRF guard vetted for the current task's request."""

    def __init__(self, opener: Opener) -> None:
        self._open = opener

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the pinned address of ``host``; refused when the task has none for it."""
        pinned = _PINNED.get()
        if pinned is None or pinned[0] != host:
            raise httpcore.ConnectError("destination not vetted")
        try:
            async with asyncio.timeout(timeout):
                return _Stream(await self._open(pinned[1], port, limit=MAX_HEAD_BYTES))
        except TimeoutError:
            raise httpcore.ConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(type(exc).__name__) from None

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Never: upstream agents are reached over TCP."""
        raise httpcore.ConnectError("unix sockets are not used")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)


@dataclass(slots=True, frozen=True)
class _Target:
    """A URL taken apart once: the name it connects by, httpcore's URL and the Host header."""

    host: str
    url: httpcore.URL
    host_header: bytes


def _target(url: str) -> _Target:
    parsed = httpx.URL(url)
    core = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return _Target(parsed.raw_host.decode("ascii"), core, parsed.netloc)


class PooledHttp:
    """Keep-alive HTTP/1.1 POSTs over httpcore's pool, behind the SSRF guard (LeanHttp's interface)."""

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        connect_seconds: float = 30.0,
        answer_seconds: float = 300.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        opener: Opener = asyncio.open_connection,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._guard = guard
        self._deadline = answer_seconds  # the whole exchange, a new connection's connect included
        self._max_body = max_body_bytes
        self._extensions = {"timeout": {"connect": connect_seconds, "pool": connect_seconds}}
        self._targets: dict[str, _Target] = {}
        self._pool = httpcore.AsyncConnectionPool(
            # httpcore would build a context (and load every CA) for each new TLS connection otherwise.
            ssl_context=tls or ssl.create_default_context(),
            max_connections=None,
            max_keepalive_connections=MAX_IDLE_CONNECTIONS,
            keepalive_expiry=MAX_IDLE_SECONDS,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(opener),
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> LeanReply:
        """POST ``body`` and return the response; LeanHttpError when it cannot be had in time."""
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) < 10_000:
                self._targets[url] = target
        address = await self._guard.pin(url)  # raises OutboundRefused; names are resolved every time
        fields = [(b"Host", target.host_header), (b"Content-Length", b"%d" % len(body))]
        fields += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        request = httpcore.Request(
            b"POST", target.url, headers=fields, content=body, extensions=self._extensions
        )
        token = _PINNED.set((target.host, str(address) if address is not None else target.host))
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._pool.handle_async_request(request)
                try:
                    return await self._read(response)
                finally:
                    await response.aclose()  # an unread rest closes the connection instead of pooling it
        except (TimeoutError, httpcore.TimeoutException):
            raise LeanHttpError("timed out") from None
        except _FAILURES as exc:
            raise LeanHttpError(type(exc).__name__) from None
        finally:
            _PINNED.reset(token)

    async def _read(self, response: httpcore.Response) -> LeanReply:
        headers: dict[str, str] = {}
        for raw_name, raw_value in response.headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = value if name not in headers else f"{headers[name]}, {value}"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise BodyTooLarge(self._max_body)
        stream = response.stream
        if not isinstance(stream, AsyncIterable):
            raise LeanHttpError("not an async response")
        body = bytearray()
        async for chunk in stream:
            body += chunk
            if len(body) > self._max_body:
                raise BodyTooLarge(self._max_body)
        return LeanReply(response.status, headers, bytes(body))

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()
