"""A2A 0.3 JSON-RPC methods: 0.3 params translated to 1.0 for the service, results translated back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a2a_gateway.api.context import CallContext
from a2a_gateway.api.methods_v1 import Handler, parse
from a2a_gateway.api.task_reads import read_task
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol import translate as t
from a2a_gateway.protocol import v0_3
from a2a_gateway.tasks.service import TaskService


def build(service: TaskService, extended_card: Callable[[], Any]) -> dict[str, Handler]:
    """The unary 0.3 method table."""

    async def message_send(ctx: CallContext, params: dict[str, Any]) -> Any:
        request = t.send_message_request_to_v1(parse(v0_3.MessageSendParams, params))
        result = await service.send(ctx.owner, request, streaming=False, caller=ctx.caller)
        if result.message is not None:
            return t.message_to_v0_3(result.message).wire()
        assert result.task is not None
        return t.task_to_v0_3(result.task).wire()

    async def tasks_get(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v0_3.TaskQueryParams, params)
        return t.task_to_v0_3(await read_task(service, ctx.principal, req.id, req.history_length)).wire()

    async def tasks_cancel(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v0_3.TaskIdParams, params)
        return t.task_to_v0_3(await service.cancel(ctx.owner, req.id)).wire()

    async def push_set(ctx: CallContext, params: dict[str, Any]) -> Any:
        config = t.push_config_to_v1(parse(v0_3.TaskPushNotificationConfig, params))
        return t.push_config_to_v0_3(await service.push.create(ctx.owner, config)).wire()

    async def push_get(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v0_3.GetTaskPushNotificationConfigParams, params)
        if req.push_notification_config_id:
            found = await service.push.get(ctx.owner, req.id, req.push_notification_config_id)
        else:
            # Legacy form without a config id: the task's first config.
            configs = await service.push.list_configs(ctx.owner, req.id)
            if not configs:
                found = await service.push.get(ctx.owner, req.id, "")
            else:
                found = configs[0]
        return t.push_config_to_v0_3(found).wire()

    async def push_list(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v0_3.ListTaskPushNotificationConfigParams, params)
        return [t.push_config_to_v0_3(c).wire() for c in await service.push.list_configs(ctx.owner, req.id)]

    async def push_delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = parse(v0_3.DeleteTaskPushNotificationConfigParams, params)
        await service.push.delete(ctx.owner, req.id, req.push_notification_config_id)
        return None

    async def get_extended_card(ctx: CallContext, params: dict[str, Any]) -> Any:
        if not ctx.principal.authenticated:
            raise Unauthenticated("The authenticated extended card needs an authenticated caller")
        return extended_card()

    return {
        "message/send": message_send,
        "tasks/get": tasks_get,
        "tasks/cancel": tasks_cancel,
        "tasks/pushNotificationConfig/set": push_set,
        "tasks/pushNotificationConfig/get": push_get,
        "tasks/pushNotificationConfig/list": push_list,
        "tasks/pushNotificationConfig/delete": push_delete,
        "agent/getAuthenticatedExtendedCard": get_extended_card,
    }


STREAMING = frozenset({"message/stream", "tasks/resubscribe"})
# The methods a per-agent key may call: reads of the tasks routed to its agent (decision 0013).
ROUTED_READS = frozenset({"tasks/get"})
SCOPES = {
    "message/send": "tasks:write",
    "message/stream": "tasks:write",
    "tasks/cancel": "tasks:write",
    "tasks/pushNotificationConfig/set": "tasks:write",
    "tasks/pushNotificationConfig/delete": "tasks:write",
    "tasks/get": "tasks:read",
    "tasks/resubscribe": "tasks:read",
    "tasks/pushNotificationConfig/get": "tasks:read",
    "tasks/pushNotificationConfig/list": "tasks:read",
    "agent/getAuthenticatedExtendedCard": "",
}
