"""A lean HTTP/1.1 client for the relay's unary calls (the hot path of every routed call).

httpx costs more CPU per request than the rest of a routed call, and its connection pool scans every
connection and waiting request on each request, which grows with concurrency. This client does only
what an upstream JSON-RPC POST needs: keep-alive connections per destination, the request in one
write, and a response framed by Content-Length, chunked encoding, or the end of the connection.

Every request goes through the SSRF guard first and connects to the address the guard vetted (DNS
pinning): the URL's name travels in the ``Host`` header and, for https, as the TLS server name.
Redirects are not followed, as with the shared httpx client.

The response parser is strict: a status line, header or chunk that is not well formed, a head or a
body past its limit, and interim (1xx) responses without end all fail the exchange with LeanHttpError
and close the connection, so a hostile upstream can neither grow memory nor leave a half-read response
for the next request on the same connection. ``tests/outbound/test_lean_http_fuzz.py`` fuzzes it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

import httpx

from a2a_gateway.outbound.ssrf import SsrfGuard

MAX_HEAD_BYTES = 65_536
MAX_HEADERS = 100  # header (or trailer) lines of one response
MAX_INTERIM = 8  # 1xx responses before the final one
MAX_IDLE_PER_DESTINATION = 128
# Servers close idle keep-alive connections (uvicorn after 5 s); one idle longer than this is not reused,
# so a request is never written into a connection the server is closing at that moment.
MAX_IDLE_SECONDS = 4.0
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Key = tuple[str, str, int, str]

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\x00-\x08\x0a-\x1f\x7f]*)?")
# Each pattern is linear in its input (no nested or competing quantifiers): the value is stripped apart.
_HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([^\x00-\x08\x0a-\x1f\x7f]*)")
_DIGITS = re.compile(rb"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")


class LeanHttpError(Exception):
    """The exchange failed: the connection, the server's framing, or the time limit."""


class BodyTooLarge(LeanHttpError):
    """The response body (declared or read so far) passed the client's limit; the connection is dropped."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body exceeded {limit} bytes")
        self.limit = limit


@dataclass(slots=True)
class LeanReply:
    """A response: status, lower-cased headers, and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class UnaryHttp(Protocol):
    """What the upstream A2A client needs for its unary calls (LeanHttp, PooledHttp)."""

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> LeanReply:
        """POST ``body``; the whole response, or LeanHttpError (OutboundRefused from the SSRF guard)."""
        ...

    async def aclose(self) -> None:
        """Close idle connections."""
        ...


class UnaryHttpFactory(Protocol):
    """Builds a unary client behind the SSRF guard (LeanHttp and PooledHttp are such factories)."""

    def __call__(self, guard: SsrfGuard, *, max_body_bytes: int) -> UnaryHttp:
        """A client reading at most ``max_body_bytes`` of a body."""
        ...


class Opener(Protocol):
    """Opens a connection as ``asyncio.open_connection`` does (TLS when ``ssl`` is given); a test seam."""

    def __call__(
        self,
        host: str,
        port: int,
        *,
        limit: int,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Awaitable[Connection]:
        """The reader and writer of a new connection to ``host:port``."""
        ...


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
        opener: Opener = asyncio.open_connection,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._guard = guard
        self._connect_seconds = connect_seconds
        self._answer_seconds = answer_seconds
        self._max_body = max_body_bytes
        self._open = opener
        self._idle: dict[Key, list[tuple[float, Connection]]] = {}
        self._targets: dict[str, _Target] = {}
        self._tls = tls  # the system's trust store by default, built on the first https call

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
                reply, keep = await read_reply(reader, self._max_body)
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
            return await self._open(address, port, limit=MAX_HEAD_BYTES, ssl=self._tls, server_hostname=name)
        return await self._open(address, port, limit=MAX_HEAD_BYTES)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for _, (_, writer) in idle:
                writer.close()
        self._idle.clear()


def _close(connection: Connection | None) -> None:
    if connection is not None:
        connection[1].close()


class _Malformed(ValueError):
    """The response breaks HTTP/1.1 framing (the message names what, never the bytes)."""


async def read_reply(reader: asyncio.StreamReader, max_body: int) -> tuple[LeanReply, bool]:
    """One final response and whether the connection may be used again.

    Raises ValueError when the response is malformed, BodyTooLarge past ``max_body``, and the reader's
    own errors (end of stream, a head or chunk-size line past its limit).
    """
    for _ in range(MAX_INTERIM + 1):
        status, http11, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        if status >= 200:
            break
        if status == 101:
            raise _Malformed("protocol switch")
    else:
        raise _Malformed("too many interim responses")
    keep = http11 and headers.get("connection", "").lower() != "close"
    if status in (204, 304):
        return LeanReply(status, headers, b""), keep
    coding = headers.get("transfer-encoding")
    if coding is not None:
        # Transfer-Encoding wins over Content-Length (which then must not be trusted for reuse either).
        keep = keep and "content-length" not in headers
        if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
            return LeanReply(status, headers, await _read_chunked(reader, max_body)), keep
        return LeanReply(status, headers, await _read_to_end(reader, max_body)), False
    length = headers.get("content-length")
    if length is not None:
        size = _content_length(length)
        if size > max_body:
            raise BodyTooLarge(max_body)
        return LeanReply(status, headers, await reader.readexactly(size)), keep
    return LeanReply(status, headers, await _read_to_end(reader, max_body)), False


def _parse_head(head: bytes) -> tuple[int, bool, dict[str, str]]:
    """Status, whether it is HTTP/1.1, and the headers (lower-cased names, repeats joined by ", ")."""
    lines = head[:-4].split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise _Malformed("too many headers")
    first = _STATUS_LINE.fullmatch(lines[0])
    if first is None:
        raise _Malformed("bad status line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        field = _HEADER.fullmatch(line)
        if field is None:
            raise _Malformed("bad header line")
        name = field[1].decode("ascii").lower()
        value = field[2].strip(b" \t").decode("latin-1")
        seen = headers.get(name)
        headers[name] = value if seen is None else f"{seen}, {value}"
    return int(first[2]), first[1] == b"1", headers


def _content_length(value: str) -> int:
    """The length a Content-Length names; repeats (joined by commas) must all agree."""
    sizes = {part.strip() for part in value.split(",")}
    if len(sizes) != 1:
        raise _Malformed("conflicting content lengths")
    size = sizes.pop().encode("latin-1")
    if _DIGITS.fullmatch(size) is None:
        raise _Malformed("bad content length")
    return int(size) if len(size) <= 18 else 1 << 62


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        sized = _CHUNK_SIZE.fullmatch(await reader.readuntil(b"\r\n"))
        if sized is None:
            raise _Malformed("bad chunk size")
        size = int(sized[1], 16)
        if size == 0:
            break
        if len(body) + size > max_body:
            raise BodyTooLarge(max_body)
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise _Malformed("chunk without its line end")
        body += memoryview(chunk)[:-2]
    for _ in range(MAX_HEADERS + 1):  # trailers, up to the empty line
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            return bytes(body)
        if _HEADER.fullmatch(line[:-2]) is None:
            raise _Malformed("bad trailer line")
    raise _Malformed("too many trailers")


async def _read_to_end(reader: asyncio.StreamReader, max_body: int) -> bytes:
    """A body framed by the end of the connection, at most ``max_body`` bytes."""
    body = await reader.read(max_body + 1)
    while len(body) <= max_body and not reader.at_eof():
        more = await reader.read(max_body + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > max_body:
        raise BodyTooLarge(max_body)
    return body
