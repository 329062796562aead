"""Server-Sent Events framing: one single-line JSON document per ``data:`` frame, and a line parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


def frame(data: bytes, event: str | None = None) -> bytes:
    """Encode one SSE frame; ``data`` must already be a single line."""
    if b"\n" in data or b"\r" in data:
        raise ValueError("SSE data must be a single line")
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


COMMENT_PING = b": ping\n\n"


@dataclass(slots=True)
class Event:
    """One parsed SSE event."""

    data: str
    event: str = "message"
    id: str | None = None


async def parse(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """Turn a stream of text lines into SSE events (blank line ends an event; comments skipped)."""
    data: list[str] = []
    event = "message"
    event_id: str | None = None
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event(data="\n".join(data), event=event, id=event_id)
            data, event, event_id = [], "message", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
    if data:
        yield Event(data="\n".join(data), event=event, id=event_id)
