"""Live run events for the streams that follow runs driven in this process.

Stored events are the record (a stream that reconnects with ``Last-Event-ID`` reads what it missed from
the store); the hub only hands new events to streams already open, in the order they were emitted.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from a2a_gateway.workflows.models import RunEvent

QUEUE_LIMIT = 1000


class Follower:
    """One stream's queue of a run's live events; ``overflowed`` when it fell too far behind."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[RunEvent] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False


class RunEventHub:
    """Fan-out of each run's new events to the streams following it."""

    def __init__(self) -> None:
        self._followers: dict[str, set[Follower]] = defaultdict(set)

    def follow(self, run_id: str) -> Follower:
        """Start receiving ``run_id``'s events (call ``leave`` when done)."""
        follower = Follower()
        self._followers[run_id].add(follower)
        return follower

    def leave(self, run_id: str, follower: Follower) -> None:
        """Stop receiving a run's events."""
        followers = self._followers.get(run_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[run_id]

    def publish(self, events: list[RunEvent]) -> None:
        """Hand events (of one or more runs) to their followers; a full queue marks its follower
        overflowed and it catches up from the store instead."""
        for event in events:
            for follower in tuple(self._followers.get(event.run_id, ())):
                if follower.overflowed:
                    continue
                try:
                    follower.queue.put_nowait(event)
                except asyncio.QueueFull:
                    follower.overflowed = True

    def following(self, run_id: str) -> int:
        """How many streams follow ``run_id``."""
        return len(self._followers.get(run_id, ()))
