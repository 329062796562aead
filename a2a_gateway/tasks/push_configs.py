"""Push-notification configs of tasks: validation, storage and attachment to running tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from a2a_gateway.errors import (
    InvalidParams,
    OutboundRefused,
    OutboundUnresolved,
    PushNotificationNotSupported,
    TaskNotFound,
)
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.ids import new_id
from a2a_gateway.tasks.live import LiveTask
from a2a_gateway.tasks.ports import PushNotifier, TaskRepository

Visible = Callable[[str, str], Awaitable[LiveTask | v1.Task]]


class PushConfigs:
    """CRUD of a task's webhooks; the task must be visible to the caller."""

    def __init__(self, repo: TaskRepository, notifier: PushNotifier | None, visible: Visible) -> None:
        self._repo = repo
        self._notifier = notifier
        self._visible = visible

    async def check(self, config: v1.TaskPushNotificationConfig) -> None:
        """Refuse a config when push is off or its URL may not be called.

        A blocked literal address, or a name resolving to a blocked one, is refused now. A name that does
        not resolve yet is accepted: every delivery resolves, checks and pins it again anyway.
        """
        if self._notifier is None:
            raise PushNotificationNotSupported()
        try:
            await self._notifier.check_url(config.url)
        except OutboundUnresolved:
            return
        except OutboundRefused as refused:
            raise InvalidParams(
                f"Push notification url refused: {refused.message}",
                violations=[{"field": "url", "description": refused.message}],
            ) from None

    async def attach(
        self, live: LiveTask, config: v1.TaskPushNotificationConfig
    ) -> v1.TaskPushNotificationConfig:
        """Store a config for a live task and start delivering its events there."""
        stored = config.model_copy(update={"id": config.id or new_id(), "task_id": live.task.id})
        # The task row may still be queued; the config refers to it.
        await self._repo.flush()
        await self._repo.put_push_config(live.task.id, stored)
        live.push_configs = [c for c in live.push_configs if c.id != stored.id] + [stored]
        return stored

    async def create(
        self, owner: str, config: v1.TaskPushNotificationConfig
    ) -> v1.TaskPushNotificationConfig:
        """CreateTaskPushNotificationConfig."""
        self._require()
        if not config.task_id:
            raise InvalidParams(
                "taskId is required", violations=[{"field": "taskId", "description": "required"}]
            )
        target = await self._visible(owner, config.task_id)
        await self.check(config)
        if isinstance(target, LiveTask):
            return await self.attach(target, config)
        stored = config.model_copy(update={"id": config.id or new_id()})
        await self._repo.put_push_config(config.task_id, stored)
        return stored

    async def get(self, owner: str, task_id: str, config_id: str) -> v1.TaskPushNotificationConfig:
        """GetTaskPushNotificationConfig."""
        self._require()
        await self._visible(owner, task_id)
        found = await self._repo.get_push_config(task_id, config_id)
        if found is None:
            raise TaskNotFound(f"Push notification config {config_id} not found for task {task_id}")
        return found

    async def list_configs(self, owner: str, task_id: str) -> list[v1.TaskPushNotificationConfig]:
        """ListTaskPushNotificationConfigs."""
        self._require()
        await self._visible(owner, task_id)
        return await self._repo.list_push_configs(task_id)

    async def delete(self, owner: str, task_id: str, config_id: str) -> None:
        """DeleteTaskPushNotificationConfig; deleting a missing config is not an error."""
        self._require()
        target = await self._visible(owner, task_id)
        await self._repo.delete_push_config(task_id, config_id)
        if isinstance(target, LiveTask):
            target.push_configs = [c for c in target.push_configs if c.id != config_id]

    def _require(self) -> None:
        if self._notifier is None:
            raise PushNotificationNotSupported()
