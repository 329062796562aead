"""Helpers for SSE tests against a real server: open a streaming call, read it frame by frame, strictly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import envelope

STREAM_TIMEOUT = 10.0
"""Upper bound for reading any one stream to its end (every stream in these tests lasts < 2 s)."""


@dataclass(slots=True)
class Frame:
    """One SSE event: its ``event:`` name and the JSON-RPC response carried by its single ``data:`` line."""

    body: dict[str, Any]
    event: str = "message"

    @property
    def result(self) -> Any:
        """The JSON-RPC result (fails the test if the frame carries an error)."""
        assert "result" in self.body and "error" not in self.body, self.body
        return self.body["result"]


def payload_kind(result: dict[str, Any]) -> str:
    """The member name of a 1.0 StreamResponse: task | message | statusUpdate | artifactUpdate."""
    keys = set(result) & {"task", "message", "statusUpdate", "artifactUpdate"}
    assert len(keys) == 1 and len(result) == 1, f"StreamResponse must hold exactly one member: {result}"
    return keys.pop()


def state_of(result: dict[str, Any]) -> str | None:
    """The task state a 1.0 StreamResponse reports (None for artifact updates and messages)."""
    kind = payload_kind(result)
    if kind in ("task", "statusUpdate"):
        state: str = result[kind]["status"]["state"]
        return state
    return None


def walk_keys(value: Any) -> Iterator[str]:
    """Every object key anywhere inside a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from walk_keys(inner)


@dataclass(slots=True)
class SseReader:
    """Reads an open ``text/event-stream`` response line by line with strict framing checks.

    Every ``data:`` line must be one complete JSON document (a JSON-RPC 2.0 response echoing the request
    id); an event may carry only one ``data:`` line; ``:`` comment lines (keep-alives) are skipped.
    """

    response: httpx.Response
    request_id: Any
    frames: list[Frame] = field(default_factory=list)
    closed: bool = False
    _lines: AsyncIterator[str] | None = None

    async def next(self) -> Frame | None:
        """The next frame, or None once the server has closed the stream."""
        if self.closed:
            return None
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        event = "message"
        body: dict[str, Any] | None = None
        async for line in self._lines:
            if line == "":
                if body is not None:
                    frame = Frame(body=body, event=event)
                    self.frames.append(frame)
                    return frame
                event = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                assert body is None, f"more than one data: line in one SSE event: {line!r}"
                decoded = json.loads(value)  # a pretty-printed (multi-line) document would fail here
                assert isinstance(decoded, dict), decoded
                assert decoded.get("jsonrpc") == "2.0", decoded
                assert "id" in decoded and decoded["id"] == self.request_id, decoded
                assert type(decoded["id"]) is type(self.request_id), decoded
                assert ("result" in decoded) != ("error" in decoded), decoded
                body = decoded
            else:
                raise AssertionError(f"unexpected SSE field line: {line!r}")
        self.closed = True
        assert body is None, "stream ended in the middle of an event (no blank line after data:)"
        return None

    async def until(self, stop: Callable[[Frame], bool], timeout: float = STREAM_TIMEOUT) -> list[Frame]:
        """Read frames up to and including the first one for which ``stop`` is true."""
        got: list[Frame] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next()
                assert frame is not None, f"stream closed before the expected frame; got {got}"
                got.append(frame)
                if stop(frame):
                    return got

    async def rest(self, timeout: float = STREAM_TIMEOUT) -> list[Frame]:
        """Read every remaining frame until the server closes the stream."""
        got: list[Frame] = []
        async with asyncio.timeout(timeout):
            while (frame := await self.next()) is not None:
                got.append(frame)
        return got

    async def results(self, timeout: float = STREAM_TIMEOUT) -> list[Any]:
        """Every remaining JSON-RPC result until the stream closes (fails on error frames)."""
        return [frame.result for frame in await self.rest(timeout)]


@asynccontextmanager
async def stream_call(
    http: httpx.AsyncClient,
    method: str,
    params: Any,
    *,
    version: str | None = "1.0",
    request_id: Any = 1,
    path: str = "/a2a",
) -> AsyncIterator[SseReader]:
    """POST a streaming JSON-RPC call and hand back a reader for its SSE response.

    The response is not checked here, so callers can also assert up-front errors (plain JSON).
    Leaving the block closes the response (the client disconnects if the stream is still open).
    """
    headers = {"Accept": "text/event-stream"}
    if version:
        headers["A2A-Version"] = version
    body = envelope(method, params, request_id)
    async with asyncio.timeout(STREAM_TIMEOUT):
        request = http.build_request("POST", path, json=body, headers=headers)
        response = await http.send(request, stream=True)
    try:
        yield SseReader(response=response, request_id=request_id)
    finally:
        await response.aclose()


def assert_event_stream(reader: SseReader) -> None:
    """The response is a 200 ``text/event-stream``."""
    response = reader.response
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers


async def read_plain_error(reader: SseReader) -> dict[str, Any]:
    """The error object of a plain HTTP 200 ``application/json`` JSON-RPC error response (not a stream)."""
    response = reader.response
    async with asyncio.timeout(STREAM_TIMEOUT):
        raw = await response.aread()
    assert response.status_code == 200, raw
    assert response.headers["content-type"].startswith("application/json"), (response.headers, raw)
    body = json.loads(raw)
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == reader.request_id and type(body["id"]) is type(reader.request_id), body
    assert "error" in body and "result" not in body, body
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "data"}, error
    return error


async def wait_for(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll an async ``check`` until it returns something truthy; that value."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(interval)
