"""A task that is still in memory: running, or paused waiting for the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime

from a2a_gateway.agent import AgentEvent
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.models import TaskWrite

Handler = AsyncGenerator[AgentEvent, v1.Message | None]


class Crash:
    """Stands for a handler that raised before its first event."""


Pending = tuple[Handler, AgentEvent | Crash | None, v1.Message | None]
"""A run about to start: the handler, its first event (new task) or the follow-up (resumed task)."""


def _new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False, slots=True)
class LiveTask:
    """The in-memory side of a task the service is driving."""

    task: v1.Task
    owner: str
    created_at: datetime
    saved_messages: int = 0
    push_configs: list[v1.TaskPushNotificationConfig] = field(default_factory=list)
    generator: Handler | None = None
    pending: Pending | None = None
    runner: asyncio.Task[None] | None = None
    settled: asyncio.Future[None] = field(default_factory=_new_future)
    resumable: bool = False

    @property
    def state(self) -> v1.TaskState:
        """The task's current state."""
        return self.task.status.state

    def changes(self, artifact_id: str | None = None) -> TaskWrite:
        """What to persist now: the task row, history not yet saved, and a touched artifact."""
        write = TaskWrite(
            task=self.task,
            owner=self.owner,
            created_at=self.created_at,
            messages_from=self.saved_messages,
            artifact_ids={artifact_id} if artifact_id else set(),
        )
        self.saved_messages = len(self.task.history or ())
        return write

    def settle(self) -> None:
        """Wake whoever waits for the task to stop (terminal or interrupted)."""
        if not self.settled.done():
            self.settled.set_result(None)

    def rearm(self) -> None:
        """Start a new segment of work after a follow-up message."""
        if self.settled.done():
            self.settled = _new_future()
