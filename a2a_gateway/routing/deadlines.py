"""Deadlines of gateway tasks: a task still running when its time is up fails, and its relay cancels the
upstream task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Expiring(Protocol):
    """What a deadline acts on (the task service)."""

    async def expire(self, owner: str, task_id: str, reason: str) -> bool:
        """Fail a task that ran out of time; False when it had already stopped."""
        ...

    def is_live(self, task_id: str) -> bool:
        """Whether the task is still running or paused here (a task that ended needs no deadline)."""
        ...


class Deadlines:
    """One timer per task with a time limit; the limit runs from the moment the deadline is set, which the
    caller does as it creates the task."""

    def __init__(self, tasks: Expiring, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._tasks = tasks
        self._sleep = sleep
        self._timers: dict[str, asyncio.Task[None]] = {}

    def set(self, owner: str, task_id: str, seconds: float) -> None:
        """Fail ``task_id`` if it is still running ``seconds`` from now."""
        self.clear(task_id)
        if not self._tasks.is_live(task_id):
            return  # it ended already (its end was announced before the deadline was set)
        timer = asyncio.create_task(self._expire_later(owner, task_id, seconds))
        self._timers[task_id] = timer
        timer.add_done_callback(lambda done: self._forget(task_id, done))

    def clear(self, task_id: str) -> None:
        """Drop the deadline of a task, if it has one."""
        timer = self._timers.pop(task_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()  # (the timer that is expiring the task lets itself finish)

    def pending(self) -> int:
        """How many deadlines are set."""
        return len(self._timers)

    async def close(self) -> None:
        """Cancel every timer (at shutdown)."""
        timers = list(self._timers.values())
        self._timers.clear()
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)

    async def _expire_later(self, owner: str, task_id: str, seconds: float) -> None:
        await self._sleep(seconds)
        shown = int(seconds) if float(seconds).is_integer() else seconds
        await self._tasks.expire(owner, task_id, f"The task timed out after {shown} s")

    def _forget(self, task_id: str, done: asyncio.Task[None]) -> None:
        if self._timers.get(task_id) is done:
            del self._timers[task_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("expiring a task failed", exc_info=done.exception(), extra={"taskId": task_id})
