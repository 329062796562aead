"""Elsewhere: what a task service does for tasks another gateway process holds (decision 0020).

With several processes on one database, a task lives in the process that holds it. Another process
subscribes to it from the store's snapshot and the bus, passes a cancel or a follow-up to its holder
and answers from the task's events as they come back, and takes over a task whose holder stopped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from a2a_gateway.errors import (
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    Unavailable,
    UnsupportedOperation,
)
from a2a_gateway.protocol import v1
from a2a_gateway.tasks import state
from a2a_gateway.tasks.broker import Delivery, TaskEventBroker
from a2a_gateway.tasks.models import Positioned
from a2a_gateway.tasks.ports import TaskEventBus, TaskHolders, TaskRepository
from a2a_gateway.tasks.results import SendResult, Subscribed
from a2a_gateway.tasks.state import readable

if TYPE_CHECKING:
    from a2a_gateway.tasks.service import TaskService

CANCEL_WAIT_S: Final = 10.0  # how long a cancel passed on to the task's holder waits for its end
HOLDER_CHECK_S: Final = 1.0  # how often a follow-up passed on looks whether its holder still runs
REPLY_WAIT_S: Final = 300.0  # how long a blocking follow-up passed on waits for the task to stop
_DEFAULT_CONFIG: Final = v1.SendMessageConfiguration()


class Elsewhere:
    """The cross-process side of one task service."""

    def __init__(
        self,
        service: TaskService,
        repo: TaskRepository,
        broker: TaskEventBroker,
        bus: TaskEventBus | None,
        holders: TaskHolders | None,
        *,
        history_default: int | None,
    ) -> None:
        self._service = service
        self._repo = repo
        self._broker = broker
        self._bus = bus
        self._holders = holders
        self._history_default = history_default

    async def subscribe(self, owner: str, task_id: str, after: int | None) -> Subscribed:
        """Subscribe to a task this process does not run: from the store's snapshot, then its events as
        another process publishes them (the bus), numbered on from the snapshot's."""
        service = self._service
        found = await self._repo.positioned(task_id, owner, self._history_default)
        if found is None:
            raise TaskNotFound(f"Task {task_id} not found")
        if service.is_live(task_id):
            return await service.subscribe_resumable(owner, task_id, after)  # taken in here meanwhile
        stored = found.task
        if stored.status.state.terminal:
            raise UnsupportedOperation(f"Task {task_id} is in terminal state {readable(stored.status.state)}")
        if self._bus is None:
            if not stored.status.state.interrupted:
                raise UnsupportedOperation(f"Task {task_id} is not running in this gateway")
            # Paused before a restart: its events go on once a follow-up brings its skill back.
            return Subscribed(stored, self._broker.subscribe(task_id, after=found.seq), found.seq, False)
        # Start at the older of the snapshot and the client's last event, so a resuming client's stream
        # also carries what happened between the two (a client ahead of the stored snapshot skips it).
        start = found.seq if after is None else min(after, found.seq)
        kept = await self._bus.since(task_id, start)
        whole = start == found.seq or _contiguous_from(kept, start)
        resumed = after is not None and whole
        if not whole:
            start = found.seq
            kept = [d for d in kept if d.seq > start]
        if service.is_live(task_id):
            return await service.subscribe_resumable(owner, task_id, after)
        # No await from here on: what the bus kept, then what this process's reader brings.
        self._broker.retain(task_id)
        self._bus.follow(task_id, start)
        sub = self._broker.subscribe(task_id, after=start, preload=[d for d in kept if d.seq > start])
        return Subscribed(stored, sub, found.seq, resumed)

    async def held(self, owner: str, task_id: str) -> Positioned | None:
        """The task as stored when a live process other than this one holds it; None when it is this
        process's to answer (a stopped holder's task is taken over first, a task no process holds is
        claimed, so two processes never revive it both)."""
        holders = self._holders
        if holders is None:
            return None
        found = await self._repo.positioned(task_id, owner, None)
        if found is None or found.task.status.state.terminal or found.holder == holders.holder:
            return None
        if found.holder is not None:
            if await holders.alive(found.holder):
                return found
            await holders.take_over(task_id)
            if self._service.is_live(task_id):
                return None
        if not await holders.claim(task_id, None):
            raise Unavailable("Another gateway process is answering this task right now; try again")
        return None

    async def send(
        self, owner: str, request: v1.SendMessageRequest, found: Positioned, streaming: bool
    ) -> SendResult:
        """A follow-up to a task whose skill waits on another process: checked here as the holder would,
        passed on to it, and answered from the task's events as they come back on the bus."""
        service, holders = self._service, self._holders
        assert holders is not None and found.holder is not None
        task_id = found.task.id
        message = request.message
        if message.context_id and message.context_id != found.task.context_id:
            raise InvalidParams(
                "contextId does not match the task's contextId",
                violations=[{"field": "message.contextId", "description": "differs from the task's"}],
            )
        if not found.task.status.state.interrupted:
            raise UnsupportedOperation(f"Task {task_id} is working and does not take messages until it asks")
        config = request.configuration or _DEFAULT_CONFIG
        history = config.history_length if config.history_length is not None else self._history_default
        opened = await service.subscribe_resumable(owner, task_id, None, retain=False)
        opened.sub.stop_at_interrupted = True
        try:
            await holders.ask_reply(found.holder, owner, message)
            # The holder answers with the task's next event; a holder that stopped before it took the
            # follow-up never will: once its lease is gone the task is taken over, and sent to again.
            while not await opened.sub.wait_first(HOLDER_CHECK_S):
                if not await holders.alive(found.holder):
                    opened.sub.close()
                    return await service.send(owner, request, streaming=streaming)
            if streaming:
                return SendResult(task=state.snapshot(opened.snapshot, history), stream=opened.sub)
            async with asyncio.timeout(REPLY_WAIT_S):
                async for delivery in opened.sub.deliveries():
                    if config.return_immediately or delivery.terminal or delivery.interrupted:
                        break
        except TimeoutError:
            raise Unavailable(
                "The gateway process running this task did not take the follow-up in time; read the task "
                "to see its state"
            ) from None
        except BaseException:
            opened.sub.close()
            raise
        opened.sub.close()
        return SendResult(task=await service.get(owner, task_id, history))

    async def cancel(self, owner: str, task_id: str, holder: str) -> v1.Task:
        """Cancel a task another process runs: that process is asked to, and the end is heard on the
        bus; a task whose process stopped is taken over here first, then canceled like any other."""
        service, holders = self._service, self._holders
        assert holders is not None
        if not await holders.alive(holder):
            await holders.take_over(task_id)
            if service.is_live(task_id):
                return await service.cancel(owner, task_id)
        else:
            try:
                opened = await service.subscribe_resumable(owner, task_id, None, retain=False)
            except UnsupportedOperation:
                opened = None  # ended meanwhile
            if opened is not None:
                try:
                    await holders.ask_cancel(holder, owner, task_id)
                    async with asyncio.timeout(CANCEL_WAIT_S):
                        async for _ in opened.sub:
                            pass
                except TimeoutError:
                    raise Unavailable(
                        "The gateway process running this task did not confirm the cancel in time; "
                        "read the task to see its state"
                    ) from None
                finally:
                    opened.sub.close()
        task = await service.get(owner, task_id, None)
        if task.status.state is not v1.TaskState.CANCELED:
            raise TaskNotCancelable(
                f"Task {task_id} is in state {readable(task.status.state)} and cannot be canceled"
            )
        return task


def _contiguous_from(kept: list[Delivery], after: int) -> bool:
    """Whether ``kept`` (events numbered ``after`` and above) holds every event after ``after``."""
    return bool(kept) and (kept[0].seq == after or (after == 0 and kept[0].seq == 1))
