"""JSON-RPC envelope errors, version negotiation, and bad input that must change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import V1, envelope, error_of, rpc, user_message


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
