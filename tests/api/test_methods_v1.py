"""Every A2A 1.0 method through the ASGI app: results and semantics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.agent import AgentDefinition, AgentEvent, Reply, SkillContext, skill
from a2a_gateway.app import create_agent_app
from a2a_gateway.protocol import v1
from a2a_gateway.settings import Settings
from tests.factories import V1, envelope, error_of, rpc, send_text, user_message


async def test_send_returns_completed_task_with_artifact_and_history(client: httpx.AsyncClient) -> None:
    task = await send_text(client, "ping")
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["timestamp"].endswith("Z")
    assert task["artifacts"] == [
        {"artifactId": task["artifacts"][0]["artifactId"], "name": "echo", "parts": [{"text": "ping"}]}
    ]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER"]
    assert task["history"][0]["taskId"] == task["id"]
    assert task["history"][0]["contextId"] == task["contextId"]


async def test_history_length_zero_omits_history(client: httpx.AsyncClient) -> None:
    task = await send_text(client, "x", historyLength=0)
    assert "history" not in task
    body = await rpc(client, "GetTask", {"id": task["id"], "history_length": 0})
    assert "history" not in body["result"]


async def test_return_immediately_returns_before_completion(client: httpx.AsyncClient) -> None:
    task = await send_text(client, "3", skill="countdown", returnImmediately=True)
    assert task["status"]["state"] in {"TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"}
    for _ in range(100):
        got = (await rpc(client, "GetTask", {"id": task["id"]}))["result"]
        if got["status"]["state"] == "TASK_STATE_COMPLETED":
            break
        await asyncio.sleep(0.05)
    assert got["status"]["state"] == "TASK_STATE_COMPLETED"
    assert got["artifacts"][0]["parts"] == [{"text": "3"}, {"text": "2"}, {"text": "1"}]


async def test_context_id_supplied_is_kept_and_generated_when_absent(client: httpx.AsyncClient) -> None:
    generated = await send_text(client)
    assert uuid.UUID(generated["contextId"])
    body = await rpc(client, "SendMessage", {"message": user_message(contextId="ctx-1")})
    assert body["result"]["task"]["contextId"] == "ctx-1"


async def test_follow_up_infers_context_and_rejects_mismatch(client: httpx.AsyncClient) -> None:
    asked = await send_text(client, "q", skill="ask")
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert asked["status"]["message"]["role"] == "ROLE_AGENT"
    wrong = await rpc(
        client, "SendMessage", {"message": user_message("Ann", taskId=asked["id"], contextId="other")}
    )
    assert error_of(wrong)["code"] == -32602
    done = await rpc(client, "SendMessage", {"message": user_message("Ann", taskId=asked["id"])})
    task = done["result"]["task"]
    assert task["id"] == asked["id"] and task["contextId"] == asked["contextId"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "Hello, Ann!"}]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER", "ROLE_AGENT", "ROLE_USER"]


async def test_unknown_task_id_is_task_not_found(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "SendMessage", {"message": user_message(taskId="nope")})
    error = error_of(body)
    assert error["code"] == -32001
    assert error["data"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "TASK_NOT_FOUND",
        "domain": "a2a-protocol.org",
        "metadata": {},
    }
    assert error_of(await rpc(client, "GetTask", {"id": "nope"}))["code"] == -32001


async def test_message_to_terminal_task_is_unsupported(client: httpx.AsyncClient) -> None:
    task = await send_text(client)
    body = await rpc(client, "SendMessage", {"message": user_message(taskId=task["id"])})
    assert error_of(body)["code"] == -32004


async def test_message_to_working_task_is_unsupported(client: httpx.AsyncClient) -> None:
    task = await send_text(client, "5", skill="countdown", returnImmediately=True)
    body = await rpc(client, "SendMessage", {"message": user_message(taskId=task["id"])})
    assert error_of(body)["code"] == -32004


async def test_agent_role_is_rejected(client: httpx.AsyncClient) -> None:
    message = user_message()
    message["role"] = "ROLE_AGENT"
    assert error_of(await rpc(client, "SendMessage", {"message": message}))["code"] == -32602


async def test_unknown_skill_is_invalid_params(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "SendMessage", {"message": user_message(), "metadata": {"skillId": "nope"}})
    error = error_of(body)
    assert error["code"] == -32602
    assert "nope" in error["message"]


async def test_cancel_paused_task_then_cancel_again(client: httpx.AsyncClient) -> None:
    asked = await send_text(client, skill="ask")
    canceled = (await rpc(client, "CancelTask", {"id": asked["id"]}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    assert error_of(await rpc(client, "CancelTask", {"id": asked["id"]}))["code"] == -32002
    assert error_of(await rpc(client, "CancelTask", {"id": "missing"}))["code"] == -32001
    got = (await rpc(client, "GetTask", {"id": asked["id"]}))["result"]
    assert got["status"]["state"] == "TASK_STATE_CANCELED"


async def test_cancel_running_task(client: httpx.AsyncClient) -> None:
    task = await send_text(client, "50", skill="countdown", returnImmediately=True)
    canceled = (await rpc(client, "CancelTask", {"id": task["id"]}))["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    await asyncio.sleep(0.25)
    got = (await rpc(client, "GetTask", {"id": task["id"]}))["result"]
    assert got["status"]["state"] == "TASK_STATE_CANCELED"
    assert len(got.get("artifacts", [{"parts": []}])[0]["parts"]) < 50


async def test_list_tasks_filters_pages_and_omits_artifacts(client: httpx.AsyncClient) -> None:
    ids = [
        (await rpc(client, "SendMessage", {"message": user_message(str(i), contextId="list-ctx")}))["result"][
            "task"
        ]["id"]
        for i in range(5)
    ]
    await send_text(client, "other context")
    asked = await send_text(client, skill="ask")

    page1 = (await rpc(client, "ListTasks", {"contextId": "list-ctx", "pageSize": 2}))["result"]
    assert page1["totalSize"] == 5 and page1["pageSize"] == 2 and len(page1["tasks"]) == 2
    assert all("artifacts" not in t for t in page1["tasks"])
    assert page1["nextPageToken"]
    page2 = (
        await rpc(
            client, "ListTasks", {"contextId": "list-ctx", "pageSize": 2, "pageToken": page1["nextPageToken"]}
        )
    )["result"]
    page3 = (
        await rpc(
            client, "ListTasks", {"contextId": "list-ctx", "pageSize": 2, "pageToken": page2["nextPageToken"]}
        )
    )["result"]
    assert page3["nextPageToken"] == ""
    seen = [t["id"] for t in page1["tasks"] + page2["tasks"] + page3["tasks"]]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    stamps = [t["status"]["timestamp"] for t in page1["tasks"] + page2["tasks"] + page3["tasks"]]
    assert stamps == sorted(stamps, reverse=True)

    with_artifacts = (await rpc(client, "ListTasks", {"contextId": "list-ctx", "includeArtifacts": True}))[
        "result"
    ]
    assert all(t["artifacts"] for t in with_artifacts["tasks"])
    paused = (await rpc(client, "ListTasks", {"status": "TASK_STATE_INPUT_REQUIRED"}))["result"]
    assert [t["id"] for t in paused["tasks"]] == [asked["id"]]
    later = (await rpc(client, "ListTasks", {"statusTimestampAfter": "2999-01-01T00:00:00Z"}))["result"]
    assert later == {"tasks": [], "nextPageToken": "", "pageSize": 50, "totalSize": 0}
    no_history = (await rpc(client, "ListTasks", {"historyLength": 0, "pageSize": 1}))["result"]
    assert "history" not in no_history["tasks"][0]


@pytest.mark.parametrize("params", [{"pageSize": 0}, {"pageSize": 101}, {"pageToken": "garbage!"}])
async def test_list_tasks_rejects_bad_page_params(
    client: httpx.AsyncClient, params: dict[str, object]
) -> None:
    assert error_of(await rpc(client, "ListTasks", params))["code"] == -32602


async def test_push_config_crud(client: httpx.AsyncClient) -> None:
    task = await send_text(client, skill="ask")
    created = (
        await rpc(
            client,
            "CreateTaskPushNotificationConfig",
            {
                "taskId": task["id"],
                "url": "http://127.0.0.1:9/hook",
                "token": "t",
                "authentication": {"scheme": "Bearer", "credentials": "c"},
            },
        )
    )["result"]
    assert created["id"] and created["taskId"] == task["id"] and created["url"] == "http://127.0.0.1:9/hook"
    got = (await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": created["id"]}))[
        "result"
    ]
    assert got == created
    listed = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}))["result"]
    assert listed["configs"] == [created]
    assert (
        await rpc(client, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": created["id"]})
    )["result"] == {}
    again = await rpc(client, "DeleteTaskPushNotificationConfig", {"taskId": task["id"], "id": created["id"]})
    assert again["result"] == {}
    missing = await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": created["id"]})
    assert error_of(missing)["code"] == -32001
    unknown_task = await rpc(
        client, "CreateTaskPushNotificationConfig", {"taskId": "nope", "url": "http://127.0.0.1/h"}
    )
    assert error_of(unknown_task)["code"] == -32001
    no_url = await rpc(client, "CreateTaskPushNotificationConfig", {"taskId": task["id"]})
    assert error_of(no_url)["code"] == -32602


async def test_push_config_refuses_private_address(client: httpx.AsyncClient) -> None:
    task = await send_text(client, skill="ask")
    body = await rpc(
        client,
        "CreateTaskPushNotificationConfig",
        {"taskId": task["id"], "url": "http://169.254.169.254/latest"},
    )
    error = error_of(body)
    assert error["code"] == -32602
    assert "endpoint not allowed" in error["message"] and "link-local" not in error["message"]


async def test_extended_card_needs_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post("/a2a", json=envelope("GetExtendedAgentCard", {}), headers=V1)
    assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]
    assert error_of(response.json())["code"] == -32060


@skill("greet", "Greet", "Answers with a direct message, no task.")
async def greet(ctx: SkillContext) -> AsyncGenerator[AgentEvent, v1.Message | None]:
    yield Reply.of_text(f"hi {ctx.text}")


@pytest.fixture
async def reply_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    agent = AgentDefinition(name="Greeter", description="direct replies", skills=[greet])
    app = create_agent_app(agent, settings.model_copy(update={"push_notifications": False}))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c,
    ):
        yield c


async def test_direct_reply_is_a_message_not_a_task(reply_client: httpx.AsyncClient) -> None:
    body = await rpc(reply_client, "SendMessage", {"message": user_message("Bo", contextId="c1")})
    message = body["result"]["message"]
    assert message["role"] == "ROLE_AGENT" and message["parts"] == [{"text": "hi Bo"}]
    assert message["contextId"] == "c1" and "taskId" not in message
    assert (await rpc(reply_client, "ListTasks", {}))["result"]["totalSize"] == 0
    legacy = await rpc(
        reply_client,
        "message/send",
        {
            "message": {
                "kind": "message",
                "messageId": "m",
                "role": "user",
                "parts": [{"kind": "text", "text": "Al"}],
            }
        },
        version=None,
    )
    assert legacy["result"]["kind"] == "message"


async def test_push_methods_when_push_disabled(reply_client: httpx.AsyncClient) -> None:
    for method, params in [
        ("CreateTaskPushNotificationConfig", {"taskId": "t", "url": "http://127.0.0.1/h"}),
        ("GetTaskPushNotificationConfig", {"taskId": "t", "id": "c"}),
        ("ListTaskPushNotificationConfigs", {"taskId": "t"}),
        ("DeleteTaskPushNotificationConfig", {"taskId": "t", "id": "c"}),
    ]:
        assert error_of(await rpc(reply_client, method, params))["code"] == -32003, method
    card = (await reply_client.get("/.well-known/agent-card.json")).json()
    assert card["capabilities"]["pushNotifications"] is False


async def test_content_type_not_supported(client: httpx.AsyncClient) -> None:
    image = {
        "message": {
            "messageId": "img",
            "role": "ROLE_USER",
            "parts": [{"raw": "aGk=", "mediaType": "image/png"}],
        }
    }
    error = error_of(await rpc(client, "SendMessage", image))
    assert error["code"] == -32005 and error["data"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    wants_pdf = {"message": user_message(), "configuration": {"acceptedOutputModes": ["application/pdf"]}}
    assert error_of(await rpc(client, "SendMessage", wants_pdf))["code"] == -32005
    wildcard = {"message": user_message(), "configuration": {"acceptedOutputModes": ["text/*"]}}
    assert (await rpc(client, "SendMessage", wildcard))["result"]["task"]["status"][
        "state"
    ] == "TASK_STATE_COMPLETED"
    assert (await rpc(client, "ListTasks", {}))["result"]["totalSize"] == 1


async def test_cancel_while_the_final_write_is_in_flight(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from a2a_gateway.storage.task_writer import TaskWriter

    original = TaskWriter._commit

    async def slow_commit(self: TaskWriter, batch: object) -> list[bool]:
        await asyncio.sleep(0.2)
        return await original(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(TaskWriter, "_commit", slow_commit)
    task = await send_text(client, "1", skill="countdown", returnImmediately=True)
    async with asyncio.timeout(5):
        # The runner sets COMPLETED in memory, then waits for the slow commit before announcing it.
        while (await rpc(client, "GetTask", {"id": task["id"]}))["result"]["status"][
            "state"
        ] != "TASK_STATE_COMPLETED":
            await asyncio.sleep(0.01)
    assert error_of(await rpc(client, "CancelTask", {"id": task["id"]}))["code"] == -32002
    service = app.state.service
    async with asyncio.timeout(5):
        while service.live_count():
            await asyncio.sleep(0.02)
    stored = (await rpc(client, "GetTask", {"id": task["id"]}))["result"]
    assert stored["status"]["state"] == "TASK_STATE_COMPLETED"
