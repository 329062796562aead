"""A lean HTTP/1.1 client for the relay's unary calls (the hot path of every routed call).

httpx costs more CPU per request than the rest of a routed call, and its connection pool scans every
connection and waiting request on each request, which grows with concurrency. This client does only
what an upstream JSON-RPC POST needs: keep-alive connections per destination, the request in one
write, and a response framed by Content-Length, chunked encoding, or the end of the connection.

Every request goes through the SSRF guard first and connects to the address the guard vetted (DNS
pinning): the URL's name travels in the ``Host`` header and, for https, as the TLS server name.
Redirects are not followed, as with the shared httpx client.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import httpx

from a2a_gateway.outbound.ssrf import SsrfGuard

MAX_HEAD_BYTES = 65_536
MAX_IDLE_PER_DESTINATION = 128
# Servers close idle keep-alive connections (uvicorn after 5 s); one idle longer than this is not reused,
# so a request is never written into a connection the server is closing at that moment.
MAX_IDLE_SECONDS = 4.0
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Key = tuple[str, str, int, str]


class LeanHttpError(Exception):
    """The exchange failed: the connection, the server's framing, or the time limit."""


@dataclass(slots=True)
class LeanReply:
    """A response: status, lower-cased headers, and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Target:
    """A URL taken apart once: where to connect and what to put in the request line."""

    scheme: str
    host: str
    port: int
    path: str
    host_header: str


def _target(url: str) -> _Target:
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    path = parsed.raw_path.decode("ascii") or "/"
    return _Target(parsed.scheme, host, port, path, parsed.netloc.decode("ascii"))


class LeanHttp:
    """Keep-alive HTTP/1.1 POSTs behind the SSRF guard."""

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        connect_seconds: float = 30.0,
        answer_seconds: float = 300.0,
        max_body_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._guard = guard
        self._connect_seconds = connect_seconds
        self._answer_seconds = answer_seconds
        self._max_body = max_body_bytes
        self._idle: dict[Key, list[tuple[float, Connection]]] = {}
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> LeanReply:
        """POST ``body`` and return the response; LeanHttpError when it cannot be had in time."""
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) < 10_000:
                self._targets[url] = target
        address = await self._guard.pin(url)  # raises OutboundRefused; names are resolved every time
        key = (target.scheme, str(address) if address is not None else target.host, target.port, target.host)
        head = f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        connection = self._reuse(key)
        try:
            if connection is None:
                async with asyncio.timeout(self._connect_seconds):
                    connection = await self._connect(key)
            async with asyncio.timeout(self._answer_seconds):
                reader, writer = connection
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
                reply, keep = await _read_reply(reader, self._max_body)
        except TimeoutError:
            _close(connection)
            raise LeanHttpError("timed out") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            _close(connection)
            raise LeanHttpError(type(exc).__name__) from None
        except BaseException:
            _close(connection)  # cancelled mid-exchange: the connection's state is unknown
            raise
        idle = self._idle.setdefault(key, [])
        if keep and len(idle) < MAX_IDLE_PER_DESTINATION:
            idle.append((time.monotonic(), connection))
        else:
            _close(connection)
        return reply

    def _reuse(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            since, (reader, writer) = idle.pop()
            # A server that closed an idle connection has left it at EOF: never send on it.
            if now - since < MAX_IDLE_SECONDS and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _connect(self, key: Key) -> Connection:
        scheme, address, port, name = key
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return await asyncio.open_connection(
                address, port, ssl=self._tls, server_hostname=name, limit=MAX_HEAD_BYTES
            )
        return await asyncio.open_connection(address, port, limit=MAX_HEAD_BYTES)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for _, (_, writer) in idle:
                writer.close()
        self._idle.clear()


def _close(connection: Connection | None) -> None:
    if connection is not None:
        connection[1].close()


async def _read_reply(reader: asyncio.StreamReader, max_body: int) -> tuple[LeanReply, bool]:
    """One response and whether the connection may be used again."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status < 200 or status in (204, 304):
        return LeanReply(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return LeanReply(status, headers, await _read_chunked(reader, max_body)), keep
    length = headers.get("content-length")
    if length is not None:
        size = int(length)
        if not 0 <= size <= max_body:
            raise ValueError("body too large")
        return LeanReply(status, headers, await reader.readexactly(size)), keep
    body = await reader.read(max_body + 1)  # framed by the end of the connection
    while len(body) <= max_body and not reader.at_eof():
        more = await reader.read(max_body + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > max_body:
        raise ValueError("body too large")
    return LeanReply(status, headers, body), False


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return bytes(body)
        if len(body) + size > max_body:
            raise ValueError("body too large")
        body += (await reader.readexactly(size + 2))[:-2]
