"""Ports the task service talks through; the composition root (app/) fills them with adapters."""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from typing import Protocol

from a2a_gateway.protocol import v1
from a2a_gateway.tasks.broker import Delivery
from a2a_gateway.tasks.models import Positioned, TaskOrigin, TaskPage, TaskQuery, TaskWrite


class TaskRepository(Protocol):
    """Durable store of tasks, their history, artifacts and push configs (owner-scoped reads)."""

    def submit(self, change: TaskWrite) -> Awaitable[None]:
        """Queue a write; the awaitable resolves once it is committed."""
        ...

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        ...

    async def get(self, task_id: str, owner: str, history_length: int | None) -> v1.Task | None:
        """The task if it exists and belongs to ``owner``."""
        ...

    async def list_tasks(self, query: TaskQuery) -> TaskPage:
        """A page of the owner's tasks, newest status first."""
        ...

    async def positioned(self, task_id: str, owner: str, history_length: int | None) -> Positioned | None:
        """Like :meth:`get`, with the number of the task's last event the snapshot includes and its
        holder, read as of one moment."""
        ...

    async def get_routed(self, task_id: str, agent_id: str, history_length: int | None) -> v1.Task | None:
        """One task routed to ``agent_id`` (by its routed-call record), whoever its owner is."""
        ...

    async def list_routed(self, agent_id: str, query: TaskQuery) -> TaskPage:
        """A page of the tasks routed to ``agent_id``, newest status first (``query.owner`` unused)."""
        ...

    async def origin(self, task_id: str, owner: str) -> TaskOrigin | None:
        """The skill and request a task of ``owner`` started from, when it was stored."""
        ...

    async def fail_inflight(
        self,
        status: v1.TaskStatus,
        keep: Collection[str] = (),
        paused_skills: Collection[str] = (),
    ) -> int:
        """Mark every non-terminal task failed with ``status``; return how many.

        Spared: the tasks in ``keep``, and paused tasks (input or auth required) whose origin names one of
        ``paused_skills``: those hold no work in flight and are answered after the restart.
        """
        ...

    async def put_push_config(self, task_id: str, config: v1.TaskPushNotificationConfig) -> None:
        """Create or replace a push config of a task."""
        ...

    async def get_push_config(self, task_id: str, config_id: str) -> v1.TaskPushNotificationConfig | None:
        """One push config of a task."""
        ...

    async def list_push_configs(self, task_id: str) -> list[v1.TaskPushNotificationConfig]:
        """Every push config of a task, oldest first."""
        ...

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        """Remove a push config; False when there was none."""
        ...


class PushNotifier(Protocol):
    """Delivers task events to webhooks."""

    async def check_url(self, url: str) -> None:
        """Raise OutboundRefused when a webhook URL may not be called."""
        ...

    def enqueue(self, config: v1.TaskPushNotificationConfig, event: v1.StreamResponse) -> None:
        """Deliver one event to one webhook in the background."""
        ...


class TaskEventBus(Protocol):
    """Carries task events between the gateway processes that share one database (decision 0020)."""

    def publish(self, task_id: str, delivery: Delivery) -> None:
        """Pass one event (numbered) on to every process, in order; queued, never raises. This
        process's own subscribers get it once it is on the bus."""
        ...

    async def flush(self) -> None:
        """Wait until every queued event is on the bus (and with this process's subscribers)."""
        ...

    async def since(self, task_id: str, after: int) -> list[Delivery]:
        """The task's kept events numbered ``after`` and above, in order (the one numbered ``after``
        itself, when kept, shows that nothing between it and the rest was let go)."""
        ...

    async def last(self, task_id: str) -> int:
        """The number of the task's last event on the bus (0: none kept)."""
        ...

    def follow(self, task_id: str, after: int) -> None:
        """Bring the task's events numbered above ``after`` into this process's broker as they come:
        one reader per task per process, which stops at the task's end or once no one here listens."""
        ...


class TaskHolders(Protocol):
    """The gateway processes that run tasks, when several share one database (decision 0020)."""

    holder: str  # this process

    async def alive(self, holder: str) -> bool:
        """Whether the process ``holder`` still holds its lease."""
        ...

    async def ask_cancel(self, holder: str, owner: str, task_id: str) -> None:
        """Ask the process that runs a task to cancel it (it answers by ending the task)."""
        ...

    async def ask_reply(self, holder: str, owner: str, message: v1.Message) -> None:
        """Pass a follow-up message to the process whose paused task it answers."""
        ...

    async def claim(self, task_id: str, was: str | None) -> bool:
        """Make this process the task's holder if ``was`` still holds it (one of several wins)."""
        ...

    async def take_over(self, task_id: str) -> bool:
        """Take a task whose process stopped over now (as the orphan sweep would); False when another
        process has it or it ended."""
        ...
