"""A2A 1.0 JSON-RPC methods: params parsed into 1.0 models, results as 1.0 ProtoJSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from a2a_gateway.api.context import CallContext
from a2a_gateway.api.errors import from_validation
from a2a_gateway.api.task_reads import list_readable, read_task
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol import v1
from a2a_gateway.tasks.service import TaskService

Handler = Callable[[CallContext, dict[str, Any]], Awaitable[Any]]
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], params: dict[str, Any]) -> M:
    """Validate params into a model, or raise InvalidParams naming the fields."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise from_validation(exc) from None


def send_result(message: v1.Message | None, task: v1.Task | None) -> dict[str, Any]:
    """SendMessageResponse: {"message": ...} or {"task": ...}, pre-serialized for orjson."""
    if message is not None:
        return {"message": orjson.Fragment(message.wire_json())}
    assert task is not None
    return {"task": orjson.Fragment(task.wire_json())}


def build(service: TaskService, extended_card: Callable[[], Any]) -> dict[str, Handler]:
    """The unary 1.0 method table."""

    async def send_message(ctx: CallContext, params: dict[str, Any]) -> Any:
        request = parse(v1.SendMessageRequest, params)
        result = await service.send(ctx.owner, request, streaming=False, caller=ctx.caller)
        return send_result(result.message, result.task)

    async def get_task(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v1.GetTaskRequest, params)
        task = await read_task(service, ctx.principal, req.id, req.history_length)
        return orjson.Fragment(task.wire_json())

    async def list_tasks(ctx: CallContext, params: dict[str, Any]) -> Any:
        return (await list_readable(service, ctx.principal, parse(v1.ListTasksRequest, params))).wire()

    async def cancel_task(ctx: CallContext, params: dict[str, Any]) -> Any:
        return (await service.cancel(ctx.owner, parse(v1.CancelTaskRequest, params).id)).wire()

    async def create_push(ctx: CallContext, params: dict[str, Any]) -> Any:
        return (await service.push.create(ctx.owner, parse(v1.TaskPushNotificationConfig, params))).wire()

    async def get_push(ctx: CallContext, params: dict[str, Any]) -> Any:
        ref = parse(v1.TaskPushConfigRef, params)
        return (await service.push.get(ctx.owner, ref.task_id, ref.id)).wire()

    async def list_push(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v1.ListTaskPushNotificationConfigsRequest, params)
        configs = await service.push.list_configs(ctx.owner, req.task_id)
        return {"configs": [c.wire() for c in configs], "nextPageToken": ""}

    async def delete_push(ctx: CallContext, params: dict[str, Any]) -> Any:
        ref = parse(v1.TaskPushConfigRef, params)
        await service.push.delete(ctx.owner, ref.task_id, ref.id)
        return {}

    async def get_extended_card(ctx: CallContext, params: dict[str, Any]) -> Any:
        parse(v1.GetExtendedAgentCardRequest, params)
        if not ctx.principal.authenticated:
            raise Unauthenticated("The extended agent card needs an authenticated caller")
        return extended_card()

    return {
        "SendMessage": send_message,
        "GetTask": get_task,
        "ListTasks": list_tasks,
        "CancelTask": cancel_task,
        "CreateTaskPushNotificationConfig": create_push,
        "GetTaskPushNotificationConfig": get_push,
        "ListTaskPushNotificationConfigs": list_push,
        "DeleteTaskPushNotificationConfig": delete_push,
        "GetExtendedAgentCard": get_extended_card,
    }


STREAMING = frozenset({"SendStreamingMessage", "SubscribeToTask"})
# The methods a per-agent key may call: reads of the tasks routed to its agent (decision 0013).
ROUTED_READS = frozenset({"GetTask", "ListTasks"})
# The scope each method needs; "" means any authenticated caller (checked by the method itself).
SCOPES = {
    "SendMessage": "tasks:write",
    "SendStreamingMessage": "tasks:write",
    "CancelTask": "tasks:write",
    "CreateTaskPushNotificationConfig": "tasks:write",
    "DeleteTaskPushNotificationConfig": "tasks:write",
    "GetTask": "tasks:read",
    "ListTasks": "tasks:read",
    "SubscribeToTask": "tasks:read",
    "GetTaskPushNotificationConfig": "tasks:read",
    "ListTaskPushNotificationConfigs": "tasks:read",
    "GetExtendedAgentCard": "",
}
