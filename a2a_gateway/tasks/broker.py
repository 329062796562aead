"""Per-task ordered fan-out of events to any number of subscribers (in-process).

Each event carries its task's number (``seq``, from 1), given by the task's runner and stored with the
task, so it means the same on every gateway process and after a restart. A task whose stream a client
may resume (the REST stream asks with :meth:`TaskEventBroker.retain`) keeps its last
:data:`RECENT_EVENTS` events, so a subscriber that names the last number it saw gets what it missed.
Numbers and recent events live while the task does in this process: they go with its terminal event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from a2a_gateway.errors import GatewayError, Unavailable
from a2a_gateway.protocol import v1

log = logging.getLogger(__name__)

RECENT_EVENTS: Final = 256


@dataclass(slots=True)
class Delivery:
    """One event with what it means for the stream that carries it."""

    event: v1.StreamResponse
    terminal: bool = False
    interrupted: bool = False
    seq: int = 0  # the task's event number, set when published
    # The event serialized once per output shape, shared by every stream that carries it (api/).
    frames: dict[int, bytes] | None = None


PING: Final = Delivery(v1.StreamResponse.model_construct())
"""Queued to an idle subscription now and then (:meth:`Subscription.ping`): its stream writes a keep-alive
and learns whether its client is still there. Only :meth:`Subscription.get` hands it out."""
CUT_GRACE_S: Final = 5.0  # a dropped slow reader's writer is cut off this long after, if still blocked


class Inbox:
    """A subscription's queue: a deque and, while its reader waits, one future. Lighter than an
    ``asyncio.Queue`` (four deques and an event each), which counts with 10,000 subscribers."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Delivery | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Delivery | None) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> Delivery | None:
        return self._items.popleft()

    async def get(self) -> Delivery | None:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's ordered view of one task's events; iterate it, close it when done."""

    task_id: str
    broker: TaskEventBroker
    limit: int
    queue: Inbox = field(default_factory=Inbox)
    stop_at_interrupted: bool = False
    error: GatewayError | None = None
    # The number of the last event queued: an event numbered at or below it is one this subscriber has
    # (the snapshot reflects it, or it came already by another path), so each event arrives once.
    after: int = 0
    _closed: bool = field(default=False)
    _head: Delivery | None = None  # taken off the queue by wait_first, handed out first
    # The task writing this subscription to its connection (set by the stream), cut off when the
    # subscription is dropped as a slow reader and the writer is still blocked on the connection.
    writer: asyncio.Task[Any] | None = None
    dropped: bool = False
    heard: bool = False  # an event came since the last keep-alive round: no ping needed

    async def wait_first(self, within_s: float) -> bool:
        """Wait up to ``within_s`` seconds for the next event without handing it out; whether one came
        (or the subscription ended)."""
        if self._head is not None:
            return True
        try:
            async with asyncio.timeout(within_s):
                got = await self.queue.get()
        except TimeoutError:
            return False
        if got is None:
            self.queue.put_nowait(None)
            return True
        self._head = got
        return True

    def push(self, delivery: Delivery) -> None:
        """Queue a delivery; a reader that fell too far behind is cut off rather than slowing others."""
        if self._closed or (delivery.seq and delivery.seq <= self.after):
            return
        if delivery.seq:
            self.after = delivery.seq
        self.heard = True
        if self.queue.qsize() < self.limit:
            self.queue.put_nowait(delivery)
        else:
            self.drop()

    def drop(self) -> None:
        """Cut off a reader that fell too far behind (counted and logged): what it has queued goes, it
        gets a last error telling it to resubscribe, and a writer still blocked on its connection a
        little later is cancelled, so the connection closes."""
        if self._closed:
            return
        self.dropped = True
        self.broker.dropped += 1
        log.warning("slow subscriber dropped", extra={"taskId": self.task_id})
        while not self.queue.empty():
            self.queue.get_nowait()
        self.end(
            Unavailable("This stream fell too far behind and was closed; resubscribe with SubscribeToTask")
        )
        if self.writer is not None:
            asyncio.get_running_loop().call_later(CUT_GRACE_S, self._cut)

    def _cut(self) -> None:
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()

    def ping(self) -> None:
        """Queue a keep-alive for an idle reader (none when events are waiting anyway)."""
        if not self._closed and self.queue.empty() and self._head is None:
            self.queue.put_nowait(PING)

    async def get(self) -> Delivery | None:
        """The next delivery, or :data:`PING`, or None at the end (after the stop event, or when
        ended); raises the error the subscription was ended with."""
        head, self._head = self._head, None
        delivery = head if head is not None else await self.queue.get()
        if delivery is None:
            self.queue.put_nowait(None)  # every later get ends too
            if self.error is not None:
                raise self.error
        return delivery

    def stops_at(self, delivery: Delivery) -> bool:
        """Whether the stream ends after this delivery."""
        return delivery.terminal or (delivery.interrupted and self.stop_at_interrupted)

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
        async for delivery in self.deliveries():
            yield delivery.event

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """The deliveries themselves (each event with its number), in order."""
        try:
            while True:
                delivery = await self.get()
                if delivery is None:
                    return
                if delivery is PING:
                    continue
                yield delivery
                if self.stops_at(delivery):
                    return
        finally:
            self.close()


class TaskEventBroker:
    """Fans each task's events out, in publish order, to that task's subscribers."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}
        self._seq: dict[str, int] = {}
        self._recent: dict[str, deque[Delivery]] = {}
        self.dropped = 0  # slow readers cut off so far

    def subscribe(
        self,
        task_id: str,
        stop_at_interrupted: bool = False,
        *,
        after: int | None = None,
        preload: Iterable[Delivery] = (),
    ) -> Subscription:
        """Start receiving a task's events from now on; with ``after`` (see :meth:`covers`), first the
        kept events numbered above it. ``preload``: events fetched from elsewhere (another process's
        stream), in order, queued before the kept ones; each event is queued once whatever its path."""
        sub = Subscription(
            task_id=task_id,
            broker=self,
            limit=self._queue_size,
            stop_at_interrupted=stop_at_interrupted,
            after=after or 0,
        )
        for delivery in preload:
            sub.push(delivery)
        if after is not None:
            for delivery in self._recent.get(task_id, ()):
                if delivery.seq > after:
                    sub.push(delivery)
        self._subscribers.setdefault(task_id, set()).add(sub)
        return sub

    def retain(self, task_id: str) -> None:
        """Keep the task's recent events from now on, for subscribers that resume."""
        self._recent.setdefault(task_id, deque(maxlen=RECENT_EVENTS))

    def covers(self, task_id: str, after: int, current: int) -> bool:
        """Whether every event numbered above ``after`` up to ``current`` (the task's last) is still kept
        (so a subscriber resuming after it misses nothing)."""
        if after > current:
            return False
        if after == current:
            return True
        recent = self._recent.get(task_id)
        return recent is not None and len(recent) > 0 and recent[0].seq <= after + 1

    def publish(self, task_id: str, delivery: Delivery) -> None:
        """Send one event (numbered by its task's runner) to every current subscriber of the task; an
        event older than the last one published here (it came by two paths) is dropped."""
        if delivery.seq <= self._seq.get(task_id, 0):
            return
        self._seq[task_id] = delivery.seq
        recent = self._recent.get(task_id)
        if recent is not None:
            recent.append(delivery)
        subs = self._subscribers.get(task_id)
        if delivery.terminal:
            self._subscribers.pop(task_id, None)
            self._seq.pop(task_id, None)
            self._recent.pop(task_id, None)
        if not subs:
            return
        for sub in tuple(subs):
            sub.push(delivery)

    def has_subscribers(self, task_id: str) -> bool:
        """Whether anyone listens to this task now, or may resume its stream (its events are kept)."""
        return task_id in self._subscribers or task_id in self._recent

    def remove(self, sub: Subscription) -> None:
        """Forget one subscriber."""
        subs = self._subscribers.get(sub.task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.task_id]

    def ping_all(self) -> None:
        """Queue a keep-alive to every subscription that heard nothing since the last round (one timer
        for all, not one per stream; a stream that gets events needs none)."""
        for subs in self._subscribers.values():
            for sub in subs:
                if sub.heard:
                    sub.heard = False
                else:
                    sub.ping()

    def close_all(self) -> None:
        """End every subscription (shutdown): streams finish what is queued and close cleanly."""
        for subs in list(self._subscribers.values()):
            for sub in tuple(subs):
                sub.end()
        self._subscribers.clear()
        self._recent.clear()
