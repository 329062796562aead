"""Every A2A 0.3 method through the ASGI app, in 0.3 shapes."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.factories import error_of, legacy_message, rpc


async def legacy(client: httpx.AsyncClient, method: str, params: object) -> dict[str, object]:
    return await rpc(client, method, params, version=None, request_id="req-1")


async def test_message_send_and_get(client: httpx.AsyncClient) -> None:
    body = await legacy(client, "message/send", {"message": legacy_message("hey")})
    assert body["id"] == "req-1"
    task = body["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "hey"}]
    assert task["history"][0]["kind"] == "message" and task["history"][0]["role"] == "user"
    got = (await legacy(client, "tasks/get", {"id": task["id"], "historyLength": 0}))["result"]
    assert got["id"] == task["id"] and "history" not in got


async def test_non_blocking_send_and_cancel(client: httpx.AsyncClient) -> None:
    params = {
        "message": legacy_message("30"),
        "configuration": {"blocking": False},
        "metadata": {"skillId": "countdown"},
    }
    task = (await legacy(client, "message/send", params))["result"]
    assert task["status"]["state"] in {"submitted", "working"}
    canceled = (await legacy(client, "tasks/cancel", {"id": task["id"]}))["result"]
    assert canceled["status"]["state"] == "canceled"
    again = error_of(await legacy(client, "tasks/cancel", {"id": task["id"]}))
    assert again["code"] == -32002
    assert not isinstance(again.get("data"), list)


async def test_input_required_follow_up(client: httpx.AsyncClient) -> None:
    asked = (
        await legacy(client, "message/send", {"message": legacy_message("x"), "metadata": {"skillId": "ask"}})
    )["result"]
    assert asked["status"]["state"] == "input-required"
    done = (await legacy(client, "message/send", {"message": legacy_message("Zoe", taskId=asked["id"])}))[
        "result"
    ]
    assert done["status"]["state"] == "completed"
    assert done["artifacts"][0]["parts"][0]["text"] == "Hello, Zoe!"


async def test_errors_have_0_3_shape(client: httpx.AsyncClient) -> None:
    error = error_of(await legacy(client, "tasks/get", {"id": "missing"}))
    assert error["code"] == -32001 and "data" not in error
    terminal = (await legacy(client, "message/send", {"message": legacy_message()}))["result"]
    again = error_of(await legacy(client, "message/send", {"message": legacy_message(taskId=terminal["id"])}))
    assert again["code"] == -32004
    bad = error_of(
        await legacy(client, "message/send", {"message": {"kind": "message", "role": "user", "parts": []}})
    )
    assert bad["code"] == -32602 and bad["data"]["violations"]


async def test_push_config_methods(client: httpx.AsyncClient) -> None:
    asked = (
        await legacy(client, "message/send", {"message": legacy_message(), "metadata": {"skillId": "ask"}})
    )["result"]
    config = {
        "url": "http://127.0.0.1:9/hook",
        "token": "tok",
        "authentication": {"schemes": ["Bearer"], "credentials": "s"},
    }
    created = (
        await legacy(
            client,
            "tasks/pushNotificationConfig/set",
            {"taskId": asked["id"], "pushNotificationConfig": config},
        )
    )["result"]
    assert created["taskId"] == asked["id"]
    config_id = created["pushNotificationConfig"]["id"]
    assert created["pushNotificationConfig"]["authentication"] == {"schemes": ["Bearer"], "credentials": "s"}
    got = (
        await legacy(
            client,
            "tasks/pushNotificationConfig/get",
            {"id": asked["id"], "pushNotificationConfigId": config_id},
        )
    )["result"]
    assert got == created
    first = (await legacy(client, "tasks/pushNotificationConfig/get", {"id": asked["id"]}))["result"]
    assert first == created
    listed = (await legacy(client, "tasks/pushNotificationConfig/list", {"id": asked["id"]}))["result"]
    assert listed == [created]
    deleted = await legacy(
        client,
        "tasks/pushNotificationConfig/delete",
        {"id": asked["id"], "pushNotificationConfigId": config_id},
    )
    assert deleted["result"] is None
    assert (await legacy(client, "tasks/pushNotificationConfig/list", {"id": asked["id"]}))["result"] == []


async def test_authenticated_extended_card_needs_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "agent/getAuthenticatedExtendedCard"}
    )
    assert response.status_code == 401
    assert error_of(response.json())["code"] == -32060


async def test_list_tasks_is_not_a_0_3_json_rpc_method(client: httpx.AsyncClient) -> None:
    error = error_of(await legacy(client, "ListTasks", {}))
    assert error["code"] == -32009
    assert error_of(await legacy(client, "tasks/list", {}))["code"] == -32601


async def resubscribe(client: httpx.AsyncClient, params: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/a2a",
        json={"jsonrpc": "2.0", "id": "sub-1", "method": "tasks/resubscribe", "params": params},
        headers={"Accept": "text/event-stream"},
    )


def only_event(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The event name and decoded JSON-RPC body of a stream that must hold exactly one event."""
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers
    events = [e for e in response.text.replace("\r\n", "\n").split("\n\n") if e.strip()]
    data = [line for line in events[0].split("\n") if line.startswith("data:")] if events else []
    assert len(events) == 1 and len(data) == 1, response.text
    names = [line.split(":", 1)[1].strip() for line in events[0].split("\n") if line.startswith("event:")]
    body: dict[str, Any] = json.loads(data[0].split(":", 1)[1])
    return (names[0] if names else "message"), body


async def test_resubscribe_to_an_unknown_task_is_a_stream_of_one_error(client: httpx.AsyncClient) -> None:
    event, body = only_event(await resubscribe(client, {"id": "no-such-task"}))
    assert event == "error" and body["id"] == "sub-1" and "result" not in body
    assert body["error"]["code"] == -32001 and "data" not in body["error"]


async def test_resubscribe_to_a_finished_task_is_a_stream_of_one_error(client: httpx.AsyncClient) -> None:
    done = (await legacy(client, "message/send", {"message": legacy_message()}))["result"]
    assert done["status"]["state"] == "completed"
    _, body = only_event(await resubscribe(client, {"id": done["id"]}))
    assert body["id"] == "sub-1" and body["error"]["code"] == -32004


async def test_resubscribe_with_bad_params_stays_plain_json(client: httpx.AsyncClient) -> None:
    response = await resubscribe(client, {})
    assert response.headers["content-type"].startswith("application/json")
    assert error_of(response.json())["code"] == -32602


async def test_1_0_subscribe_to_an_unknown_task_stays_plain_json(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "SubscribeToTask", {"id": "no-such-task"})
    assert error_of(body)["code"] == -32001
