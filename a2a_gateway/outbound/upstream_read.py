"""Bounded reads of an upstream agent's answers: a whole body, or the events of a stream.

An agent is not trusted to end its body or its lines: a body is read up to a byte limit, a stream is cut
into lines without ever holding more than one line (and one event) of a limited size, and bytes are read
raw, so a compressed answer cannot inflate past the limits (the client asks for ``identity``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from a2a_gateway.errors import InvalidAgentResponse

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 4 * 1024 * 1024
NOT_ENCODED = {"", "identity"}
_BOM = b"\xef\xbb\xbf"


def too_large(limit: int) -> InvalidAgentResponse:
    """The error of an answer past a limit (the caller sees it as -32006, invalid agent response)."""
    return InvalidAgentResponse(f"The agent's answer exceeded {limit} bytes")


def _not_encoded(response: httpx.Response) -> None:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in NOT_ENCODED:
        raise InvalidAgentResponse("The agent's answer is compressed, though it was asked for identity")


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive, undecoded."""
    if response.is_stream_consumed:
        # In-process transports may hand over an answer built whole; it is measured all the same.
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (a declared length is refused before reading)."""
    _not_encoded(response)
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in _raw(response):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


class SseParser:
    """Cuts an event stream into the ``data`` of its events (comments and other fields skipped).

    Lines end in LF, CR or CRLF, wherever the chunks are split. A line, and the data of one event over all
    its lines, may hold at most ``max_line`` bytes; past that the stream is refused.
    """

    def __init__(self, max_line: int) -> None:
        self._max = max_line
        self._partial = bytearray()
        self._after_cr = False
        self._started = False
        self._data: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events completed by this chunk."""
        if not self._started and chunk:
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
            self._after_cr = False
        if chunk:
            self._after_cr = chunk.endswith(b"\r")
        events: list[bytes] = []
        for piece in chunk.splitlines(keepends=True):
            if piece[-1:] not in (b"\n", b"\r"):
                self._partial += piece  # only the last piece can lack its end
                if len(self._partial) > self._max:
                    raise too_large(self._max)
                continue
            line = piece.rstrip(b"\r\n")
            if self._partial:
                self._partial += line
                line = bytes(self._partial)
                self._partial.clear()
            if len(line) > self._max:
                raise too_large(self._max)
            self._line(line, events)
        return events

    def finish(self) -> list[bytes]:
        """What the end of the stream completes: a last line without its end, a last event without its
        blank line."""
        events: list[bytes] = []
        if self._partial:
            self._line(bytes(self._partial), events)
            self._partial.clear()
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data, self._size = [], 0
            return
        name, _, value = line.partition(b":")
        if name != b"data":
            return
        value = value.removeprefix(b" ")
        self._size += len(value) + 1
        if self._size > self._max:
            raise too_large(self._max)
        self._data.append(value)


async def sse_data(response: httpx.Response, max_line: int) -> AsyncIterator[bytes]:
    """The data of each event of a streamed answer, read with the limits of ``SseParser``."""
    _not_encoded(response)
    parser = SseParser(max_line)
    async for chunk in _raw(response):
        for data in parser.feed(chunk):
            yield data
    for data in parser.finish():
        yield data
