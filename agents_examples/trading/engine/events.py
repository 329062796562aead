"""Position events, fanned out per trading agent to every live follower (WebSocket or A2A stream).

A message is Nexgent's WebSocket envelope, ``{"type", "data", "timestamp"}``, already rendered as JSON
values (numbers, strings): ``position_update`` (``{eventType: position_created|position_updated,
position}`` or ``{eventType: position_closed, positionId}``), ``price_update_batch`` (``{updates:
[{tokenAddress, price, priceUsd}]}``, at most one per tick and agent: the engine batches before it
publishes), ``risk_event`` and ``order_update`` (our extensions), ``error``.

Each follower has a bounded queue. Publishing never waits: a follower whose queue is full is marked
dropped and removed (its reader ends, and a WebSocket closes with a "too slow" reason), so one stalled
client cannot hold up trading or the others.

A published message is shared by all its followers and must not be changed afterwards: the hub wraps it
in an :class:`Event` (still a dict), whose JSON text :func:`json_text` makes once, on first use, for
every WebSocket that sends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

QUEUE_SIZE: Final = 256


class Event(dict[str, Any]):
    """A published message: a plain dict to its readers, remembering its JSON text once it is made."""

    __slots__ = ("_text",)
    _text: str


def json_text(message: dict[str, Any]) -> str:
    """``message`` as compact JSON text, made once per published :class:`Event` however many send it."""
    if not isinstance(message, Event):
        return orjson.dumps(message).decode()
    try:
        return message._text
    except AttributeError:
        message._text = text = orjson.dumps(message).decode()
        return text


def envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A message in Nexgent's envelope, stamped with the wall-clock time (ISO 8601, UTC)."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": kind, "data": data, "timestamp": stamp}


@dataclass(eq=False, slots=True)
class Follower:
    """One live follower of one trading agent: its queue, and whether it was dropped for lagging."""

    agent_id: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """The follower's messages until it is closed or dropped."""
        while True:
            message = await self.queue.get()
            if message is None:
                return
            yield message


class PositionEvents:
    """The hub: trading agent id -> its followers."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._followers: dict[str, set[Follower]] = {}
        self._queue_size = queue_size

    def follow(self, agent_id: str) -> Follower:
        """A new follower of ``agent_id``; :meth:`leave` it when done."""
        follower = Follower(agent_id, asyncio.Queue(self._queue_size))
        self._followers.setdefault(agent_id, set()).add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        """Forget ``follower`` (no error when already gone)."""
        found = self._followers.get(follower.agent_id)
        if found is not None:
            found.discard(follower)
            if not found:
                del self._followers[follower.agent_id]

    def followed(self, agent_id: str) -> bool:
        """Whether anyone follows ``agent_id`` (so a batch need not be built for nobody)."""
        return agent_id in self._followers

    @property
    def count(self) -> int:
        """Live followers, all agents together."""
        return sum(len(found) for found in self._followers.values())

    def publish(self, agent_id: str, message: dict[str, Any]) -> None:
        """Queue ``message`` for each follower of ``agent_id``; drop the ones that cannot take it."""
        found = self._followers.get(agent_id)
        if not found:
            return
        shared = message if isinstance(message, Event) else Event(message)
        for follower in list(found):
            try:
                follower.queue.put_nowait(shared)
            except asyncio.QueueFull:
                self._drop(follower)

    def close_all(self) -> None:
        """End every follower's stream (shutdown)."""
        for found in list(self._followers.values()):
            for follower in list(found):
                self._end(follower)
        self._followers.clear()

    def _drop(self, follower: Follower) -> None:
        follower.dropped = True
        self.leave(follower)
        self._end(follower)

    @staticmethod
    def _end(follower: Follower) -> None:
        # Make room for the end marker: a dropped follower's backlog is of no use any more.
        while True:
            try:
                follower.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                follower.queue.get_nowait()
