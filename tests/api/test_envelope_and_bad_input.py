"""JSON-RPC envelope errors, version negotiation, and bad input that must change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.factories import V1, envelope, error_of, legacy_message, rpc, user_message


async def post_raw(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/a2a", content=content, headers={"Content-Type": "application/json", **(headers or {})}
    )


async def task_count(client: httpx.AsyncClient) -> int:
    total: int = (await rpc(client, "ListTasks", {}))["result"]["totalSize"]
    return total


async def test_malformed_json_is_parse_error_with_null_id(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, b'{"jsonrpc": "2.0", "id": 5, "method": ')
    assert response.status_code == 200
    body = response.json()
    assert body["id"] is None and error_of(body)["code"] == -32700


@pytest.mark.parametrize(
    ("body", "expected_id"),
    [
        ({"jsonrpc": "1.0", "id": 7, "method": "SendMessage"}, 7),
        ({"jsonrpc": "2.0", "id": "abc"}, "abc"),
        ({"jsonrpc": "2.0", "id": 3, "method": 42}, 3),
        ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "GetTask"}, None),
        ({"id": 9, "method": "GetTask"}, 9),
    ],
)
async def test_invalid_request_echoes_valid_ids(
    client: httpx.AsyncClient, body: dict[str, Any], expected_id: Any
) -> None:
    response = await client.post("/a2a", json=body, headers=V1)
    assert response.status_code == 200
    assert response.json()["id"] == expected_id
    assert error_of(response.json())["code"] == -32600


async def test_batch_and_non_object_are_invalid_requests(client: httpx.AsyncClient) -> None:
    for content in (b"[]", b'[{"jsonrpc":"2.0","id":1,"method":"GetTask"}]', b"42", b'"x"'):
        assert error_of((await post_raw(client, content, V1)).json())["code"] == -32600


async def test_unknown_method(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "NoSuchMethod", {})
    assert error_of(body)["code"] == -32601 and body["id"] == 1


async def test_params_must_be_an_object(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/a2a", json={"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": ["x"]}, headers=V1
    )
    assert error_of(response.json())["code"] == -32602 and response.json()["id"] == 2


async def test_int_id_stays_int_and_string_stays_string(client: httpx.AsyncClient) -> None:
    assert (await rpc(client, "GetTask", {"id": "x"}, request_id=12))["id"] == 12
    assert (await rpc(client, "GetTask", {"id": "x"}, request_id="12"))["id"] == "12"


async def test_notification_gets_no_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/a2a", json={"jsonrpc": "2.0", "method": "GetTask", "params": {"id": "x"}}, headers=V1
    )
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"message": "hello"},
        {"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}},
        {"message": {"messageId": "m", "parts": [{"text": "x"}]}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": "invalid"}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{}]}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "http://x"}]}},
        {"message": {"messageId": "m", "role": "ROLE_SOMEONE", "parts": [{"text": "x"}]}},
        {"message": {"messageId": 5, "role": "ROLE_USER", "parts": [{"text": 3}]}},
        {"message": user_message(), "configuration": {"historyLength": -1}},
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"raw": "not base64!"}]}},
    ],
)
async def test_bad_send_params_are_invalid_params_and_store_nothing(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    before = await task_count(client)
    error = error_of(await rpc(client, "SendMessage", params))
    assert error["code"] == -32602
    reasons = [d.get("@type") for d in error["data"]]
    assert "type.googleapis.com/google.rpc.BadRequest" in reasons
    assert await task_count(client) == before


async def test_snake_case_and_unknown_fields_are_accepted(client: httpx.AsyncClient) -> None:
    params = {
        "message": {
            "message_id": "m-snake",
            "role": "ROLE_USER",
            "parts": [{"text": "s"}],
            "context_id": "snake",
            "future_field": 1,
        },
        "configuration": {"history_length": 1, "return_immediately": False},
        "unknown": True,
    }
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    assert task["contextId"] == "snake" and len(task["history"]) == 1
    numeric_role = {"message": {"messageId": "m-num", "role": 1, "parts": [{"text": "n"}]}}
    assert (await rpc(client, "SendMessage", numeric_role))["result"]["task"]["status"][
        "state"
    ] == "TASK_STATE_COMPLETED"


async def test_body_over_limit_is_refused_with_clear_error(client: httpx.AsyncClient) -> None:
    before = await task_count(client)
    big = envelope("SendMessage", {"message": user_message("x" * 1_100_000)})
    response = await client.post("/a2a", json=big, headers=V1)
    assert response.status_code == 413
    error = error_of(response.json())
    assert error["code"] == -32600 and "1048576" in error["message"]
    assert await task_count(client) == before


@pytest.mark.parametrize("header", ["2.0", "0.2", "banana", "1"])
async def test_unsupported_versions(client: httpx.AsyncClient, header: str) -> None:
    body = await rpc(client, "GetTask", {"id": "x"}, version=header)
    if header == "1":
        assert error_of(body)["code"] == -32001
        return
    error = error_of(body)
    assert error["code"] == -32009 and error["data"][0]["reason"] == "VERSION_NOT_SUPPORTED"


async def test_minor_versions_of_1_are_accepted_and_query_parameter_works(client: httpx.AsyncClient) -> None:
    assert error_of(await rpc(client, "GetTask", {"id": "x"}, version="1.7"))["code"] == -32001
    response = await client.post("/a2a?A2A-Version=1.0", json=envelope("GetTask", {"id": "x"}))
    assert error_of(response.json())["code"] == -32001


async def test_1_0_methods_without_header_name_the_version(client: httpx.AsyncClient) -> None:
    error = error_of(await rpc(client, "SendMessage", {"message": user_message()}, version=None))
    assert error["code"] == -32009 and "1.0" in error["message"]
    error = error_of(await rpc(client, "message/send", {"message": user_message()}, version="1.0"))
    assert error["code"] == -32009


@pytest.mark.parametrize("path", ["/a2a", "/a2a/", "/api/v1/a2a"])
async def test_every_endpoint_path_answers_without_redirect(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json=envelope("GetTask", {"id": "x"}), headers=V1)
    assert response.status_code == 200 and error_of(response.json())["code"] == -32001


async def test_internal_errors_hide_exception_text(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from a2a_gateway.tasks.service import TaskService

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret database password=hunter2")

    monkeypatch.setattr(TaskService, "get", boom)
    body = await rpc(client, "GetTask", {"id": "x"})
    error = error_of(body)
    assert error["code"] == -32603 and "hunter2" not in str(body)


# --- nesting depth (issue 8, 1.10) ----------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    """An object nesting ``depth`` objects deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def data_message(data: Any) -> dict[str, Any]:
    return user_message(parts=[{"data": data}])


async def test_deep_nesting_in_a_data_part_is_invalid_params_naming_the_path(
    client: httpx.AsyncClient,
) -> None:
    before = await task_count(client)
    # params, message, parts, [0], data: 5 levels before the data's own nesting.
    body = await rpc(client, "SendMessage", {"message": data_message(nested(40))}, request_id=41)
    error = error_of(body)
    assert body["id"] == 41 and error["code"] == -32602
    violations = next(d["fieldViolations"] for d in error["data"] if d["@type"].endswith("BadRequest"))
    assert violations[0]["field"].startswith("params.message.parts[0].data.k.k")
    assert "32" in error["message"]
    assert await task_count(client) == before


async def test_nesting_past_the_json_parsers_own_limit_is_invalid_params(client: httpx.AsyncClient) -> None:
    before = await task_count(client)
    prefix = b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"data":'
    response = await post_raw(client, prefix + b"[" * 2000 + b"]" * 2000 + b"}}}", V1)
    assert error_of(response.json())["code"] == -32602
    assert await task_count(client) == before


async def test_deep_nesting_in_a_0_3_data_part_is_invalid_params(client: httpx.AsyncClient) -> None:
    message = legacy_message()
    message["parts"] = [{"kind": "data", "data": {"list": [nested(35)]}}]
    body = await rpc(client, "message/send", {"message": message}, version=None)
    error = error_of(body)
    assert error["code"] == -32602 and error["data"]["violations"][0]["field"].startswith(
        "params.message.parts[0].data.list[0].k"
    )


async def test_data_nested_within_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    # 5 levels lead to the data part; the data itself may nest 27 more; wide arrays of brackets are fine.
    params = {"message": data_message({"deep": nested(26), "wide": [[1], [2]] * 100})}
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"


# --- notifications (issue 8, 1.13 and 3.8) --------------------------------------------------------


async def notify(client: httpx.AsyncClient, method: str, params: Any, version: str | None = "1.0") -> None:
    body = {"jsonrpc": "2.0", "method": method, "params": params}
    headers = {"A2A-Version": version} if version else {}
    response = await client.post("/a2a", json=body, headers=headers)
    assert response.status_code == 204 and response.content == b"", response.text


async def test_notifications_that_create_tasks_are_not_run(client: httpx.AsyncClient) -> None:
    before = await task_count(client)
    await notify(client, "SendMessage", {"message": user_message()})
    await notify(client, "SendStreamingMessage", {"message": user_message()})
    await notify(client, "message/send", {"message": legacy_message()}, version=None)
    await notify(client, "message/stream", {"message": legacy_message()}, version=None)
    assert await task_count(client) == before


async def test_notifications_that_change_tasks_are_not_run(client: httpx.AsyncClient) -> None:
    params = {"message": user_message(), "metadata": {"skillId": "ask"}}
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    hook = {"taskId": task["id"], "id": "c1", "url": "http://127.0.0.1:9/hook"}
    assert "result" in await rpc(client, "CreateTaskPushNotificationConfig", hook)
    await notify(client, "CancelTask", {"id": task["id"]})
    await notify(client, "tasks/cancel", {"id": task["id"]}, version=None)
    await notify(client, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": "c1"})
    legacy_ref = {"id": task["id"], "pushNotificationConfigId": "c1"}
    await notify(client, "tasks/pushNotificationConfig/delete", legacy_ref, version=None)
    await notify(client, "CreateTaskPushNotificationConfig", {**hook, "id": "c2"})
    legacy_set = {"taskId": task["id"], "pushNotificationConfig": {"id": "c3", "url": hook["url"]}}
    await notify(client, "tasks/pushNotificationConfig/set", legacy_set, version=None)
    await notify(client, "SendMessage", {"message": user_message("Zoe", taskId=task["id"])})
    got = (await rpc(client, "GetTask", {"id": task["id"]}))["result"]
    assert got["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    configs = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}))["result"]
    assert [c["id"] for c in configs["configs"]] == ["c1"]


@pytest.mark.parametrize(
    ("method", "version"),
    [
        ("NoSuchMethod", "1.0"),
        ("no/such", None),
        ("GetTask", "9.9"),
        ("SendMessage", None),
        ("GetTask", None),
    ],
)
async def test_notifications_never_get_a_body_even_for_errors(
    client: httpx.AsyncClient, method: str, version: str | None
) -> None:
    await notify(client, method, {"id": "x"}, version=version)


async def test_a_null_id_is_a_request_not_a_notification(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "GetTask", {"id": "x"}, request_id=None)
    assert body["id"] is None and error_of(body)["code"] == -32001


# --- Content-Type (issue 8, 3.3) ------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"])
async def test_a_body_not_sent_as_json_is_content_type_not_supported(
    client: httpx.AsyncClient, content_type: str
) -> None:
    before = await task_count(client)
    content = orjson.dumps(envelope("SendMessage", {"message": user_message()}, request_id="ct"))
    response = await client.post("/a2a", content=content, headers={**V1, "Content-Type": content_type})
    assert response.status_code == 200
    body = response.json()
    error = error_of(body)
    assert body["id"] == "ct" and error["code"] == -32005
    assert error["data"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    legacy = orjson.dumps(envelope("message/send", {"message": legacy_message()}))
    response = await client.post("/a2a", content=legacy, headers={"Content-Type": content_type})
    assert error_of(response.json())["code"] == -32005
    assert await task_count(client) == before


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "Application/JSON; charset=utf-8", "application/a2a+json"]
)
async def test_json_content_types_are_accepted(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {**V1, **({"Content-Type": content_type} if content_type else {})}
    content = orjson.dumps(envelope("GetTask", {"id": "x"}))
    response = await client.post("/a2a", content=content, headers=headers)
    assert error_of(response.json())["code"] == -32001
