"""RedisTaskEventBus: task events between gateway processes on Redis Streams (implements
tasks.ports.TaskEventBus; decision 0020).

Each task has one stream, ``{prefix}task:{id}``. An event is added with the stream id ``{seq}-1``, its
task's own number, so the ids say where each event stands and Redis refuses an event numbered at or
below the last one (a process whose task was taken over while it stalled cannot add to it). The stream
keeps a rolling window (``MAXLEN ~``), and expires a while after the task's terminal event: anything
older is in the task store, which the snapshot a subscriber starts from is read from.

Events are queued and sent by one background sender, in order, pipelined, and handed to this process's
own subscribers once Redis has them, so no client sees an event a process taking the task over would
not find; one reader per followed task per process (``XREAD BLOCK``) brings what other processes
publish into this process's broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker

log = logging.getLogger(__name__)

WINDOW: Final = 1000  # events kept per task stream (about: trimming is approximate)
ENDED_TTL_S: Final = 300  # how long a stream outlives its task's terminal event
BLOCK_MS: Final = (
    2000  # one blocking read (under the client's 5 s socket timeout); who listens is looked at this often
)
BATCH: Final = 500  # events per pipelined send
MAX_EVENT_BYTES: Final = 4 * 1024 * 1024  # an event read back larger than this is skipped (logged)

_TERMINAL = b"t"
_INTERRUPTED = b"i"


class RedisTaskEventBus:
    """Publishes this process's task events and follows other processes' tasks for local subscribers."""

    def __init__(self, client: aioredis.Redis, prefix: str, broker: TaskEventBroker) -> None:
        self._client = client
        self._prefix = prefix
        self._broker = broker
        self._outbox: deque[tuple[str, Delivery]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self.published = 0
        self.refused = 0

    def key(self, task_id: str) -> str:
        """The stream of one task."""
        return f"{self._prefix}task:{task_id}"

    # --- publishing ----------------------------------------------------------------------------------

    def publish(self, task_id: str, delivery: Delivery) -> None:
        """Queue one event for the stream; the sender adds events in the order they were queued."""
        if self._closing:
            return
        self._outbox.append((task_id, delivery))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
            pipe = self._client.pipeline(transaction=False)
            for task_id, delivery in batch:
                key = self.key(task_id)
                pipe.xadd(key, _fields(delivery), id=f"{delivery.seq}-1", maxlen=WINDOW, approximate=True)
                if delivery.terminal:
                    pipe.expire(key, ENDED_TTL_S)
            try:
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError):
                # Redis is away: this process's own subscribers still hear of their tasks.
                log.exception("task events could not be sent to Redis (%d not shared)", len(batch))
                for task_id, delivery in batch:
                    self._broker.publish(task_id, delivery)
                continue
            added = iter(results)
            for task_id, delivery in batch:
                result = next(added)
                if delivery.terminal:
                    next(added)  # the EXPIRE
                if isinstance(result, Exception):
                    # Numbered at or below the stream's last event: this process lost the task to
                    # another (it stalled past its lease), whose events the subscribers follow.
                    self.refused += 1
                    log.warning("Redis refused a task event: %s", result, extra={"taskId": task_id})
                    continue
                self.published += 1
                self._broker.publish(task_id, delivery)

    async def flush(self) -> None:
        """Wait until every queued event is sent."""
        while self._outbox or (self._sender is not None and not self._sender.done()):
            if self._sender is None or self._sender.done():
                self._sender = asyncio.create_task(self._send())
            await asyncio.shield(self._sender)

    # --- reading -------------------------------------------------------------------------------------

    async def since(self, task_id: str, after: int) -> list[Delivery]:
        """The kept events numbered ``after`` and above, in order."""
        entries: Any = await self._client.xrange(
            self.key(task_id), min=f"{after}-0", max="+", count=WINDOW + 1
        )
        return [
            d for d in (_delivery(task_id, raw_id, fields) for raw_id, fields in entries) if d is not None
        ]

    async def last(self, task_id: str) -> int:
        """The number of the task's last event in its stream (0: none)."""
        await self.flush()  # this process's own queued events count too
        entries: Any = await self._client.xrevrange(self.key(task_id), count=1)
        if not entries:
            return 0
        raw = entries[0][0]
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        number = text.partition("-")[0]
        return int(number) if number.isdigit() else 0

    def follow(self, task_id: str, after: int) -> None:
        """Start this process's reader of the task's stream unless it runs already."""
        if self._closing:
            return
        reader = self._readers.get(task_id)
        if reader is not None and not reader.done():
            return
        self._readers[task_id] = asyncio.create_task(self._read(task_id, after))

    async def _read(self, task_id: str, after: int) -> None:
        key, last = self.key(task_id), f"{after}-1"
        try:
            while self._broker.has_subscribers(task_id):
                try:
                    found: Any = await self._client.xread({key: last}, count=BATCH, block=BLOCK_MS)
                except (RedisError, OSError):
                    log.warning("reading a task's events from Redis failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                for _stream, entries in found or ():
                    for raw_id, fields in entries:
                        last = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                        delivery = _delivery(task_id, raw_id, fields)
                        if delivery is None:
                            continue
                        self._broker.publish(task_id, delivery)
                        if delivery.terminal:
                            return
        finally:
            if self._readers.get(task_id) is asyncio.current_task():
                del self._readers[task_id]

    def following(self) -> int:
        """How many tasks this process reads from the bus now."""
        return len(self._readers)

    async def close(self) -> None:
        """Send what is queued, stop the readers."""
        await self.flush()
        self._closing = True
        readers = list(self._readers.values())
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _fields(delivery: Delivery) -> dict[Any, Any]:
    flags = _TERMINAL if delivery.terminal else _INTERRUPTED if delivery.interrupted else b""
    return {b"e": delivery.event.wire_json(), b"f": flags}


def _delivery(task_id: str, raw_id: Any, fields: dict[Any, Any]) -> Delivery | None:
    """One stream entry as a delivery; None (logged) for an entry this version cannot read."""
    text = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    seq_text, _, _ = text.partition("-")
    body = fields.get(b"e")
    flags = fields.get(b"f", b"")
    if not seq_text.isdigit() or not isinstance(body, bytes) or len(body) > MAX_EVENT_BYTES:
        log.warning("skipped an unreadable task event on the bus", extra={"taskId": task_id})
        return None
    try:
        event = v1.StreamResponse.model_validate(orjson.loads(body))
    except ValueError:
        log.warning("skipped an unreadable task event on the bus", extra={"taskId": task_id})
        return None
    return Delivery(event, terminal=flags == _TERMINAL, interrupted=flags == _INTERRUPTED, seq=int(seq_text))
