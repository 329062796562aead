"""Per-task ordered fan-out of events to any number of subscribers (in-process)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from a2a_gateway.errors import GatewayError, Unavailable
from a2a_gateway.protocol import v1

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """One event with what it means for the stream that carries it."""

    event: v1.StreamResponse
    terminal: bool = False
    interrupted: bool = False


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's ordered view of one task's events; iterate it, close it when done."""

    task_id: str
    broker: TaskEventBroker
    limit: int
    queue: asyncio.Queue[Delivery | None] = field(default_factory=asyncio.Queue)
    stop_at_interrupted: bool = False
    error: GatewayError | None = None
    _closed: bool = field(default=False)

    def push(self, delivery: Delivery) -> None:
        """Queue a delivery; a reader that fell too far behind is cut off rather than slowing others."""
        if self._closed:
            return
        if self.queue.qsize() < self.limit:
            self.queue.put_nowait(delivery)
        else:
            log.warning("slow subscriber dropped", extra={"taskId": self.task_id})
            while not self.queue.empty():
                self.queue.get_nowait()
            self.end(
                Unavailable(
                    "This stream fell too far behind and was closed; resubscribe with SubscribeToTask"
                )
            )

    def end(self, error: GatewayError | None = None) -> None:
        """Stop after what is already queued; the reader then gets ``error`` if one is given."""
        if self._closed:
            return
        self._closed = True
        self.error = error
        self.queue.put_nowait(None)

    def close(self) -> None:
        """Unsubscribe; the broker forgets this subscriber and other subscribers are unaffected."""
        self.end()
        self.broker.remove(self)

    async def __aiter__(self) -> AsyncIterator[v1.StreamResponse]:
        try:
            while True:
                delivery = await self.queue.get()
                if delivery is None:
                    if self.error is not None:
                        raise self.error
                    return
                yield delivery.event
                if delivery.terminal or (delivery.interrupted and self.stop_at_interrupted):
                    return
        finally:
            self.close()


class TaskEventBroker:
    """Fans each task's events out, in publish order, to that task's subscribers."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, task_id: str, stop_at_interrupted: bool = False) -> Subscription:
        """Start receiving a task's events from now on."""
        sub = Subscription(
            task_id=task_id,
            broker=self,
            limit=self._queue_size,
            stop_at_interrupted=stop_at_interrupted,
        )
        self._subscribers.setdefault(task_id, set()).add(sub)
        return sub

    def publish(self, task_id: str, delivery: Delivery) -> None:
        """Send one event to every current subscriber of the task."""
        subs = self._subscribers.get(task_id)
        if not subs:
            return
        for sub in tuple(subs):
            sub.push(delivery)
        if delivery.terminal:
            self._subscribers.pop(task_id, None)

    def has_subscribers(self, task_id: str) -> bool:
        """Whether anyone listens to this task now."""
        return task_id in self._subscribers

    def remove(self, sub: Subscription) -> None:
        """Forget one subscriber."""
        subs = self._subscribers.get(sub.task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.task_id]

    def close_all(self) -> None:
        """End every subscription (shutdown): streams finish what is queued and close cleanly."""
        for subs in list(self._subscribers.values()):
            for sub in tuple(subs):
                sub.end()
        self._subscribers.clear()
