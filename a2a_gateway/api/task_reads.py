"""Task reads as a caller may make them: an owner reads its own tasks, a per-agent key those routed to it."""

from __future__ import annotations

from a2a_gateway.auth.models import Principal
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.service import TaskService


async def read_task(
    service: TaskService, principal: Principal, task_id: str, history_length: int | None
) -> v1.Task:
    """One task the caller may read; any other is TaskNotFound."""
    if principal.agent_id is not None:
        return await service.get_routed(principal.agent_id, task_id, history_length)
    return await service.get(principal.id, task_id, history_length)


async def list_readable(
    service: TaskService, principal: Principal, request: v1.ListTasksRequest
) -> v1.ListTasksResponse:
    """A page of the tasks the caller may read, newest status first."""
    if principal.agent_id is not None:
        return await service.list_routed(principal.agent_id, request)
    return await service.list_tasks(principal.id, request)
