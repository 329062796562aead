"""Push notifications end to end: the gateway posts each task event to a real local receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.factories import rpc, send_text, user_message


def receiver(received: list[tuple[dict[str, str], dict[str, Any]]], fail_first: int = 0) -> Starlette:
    calls = {"n": 0}

    async def hook(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return Response(status_code=503)
        received.append((dict(request.headers), await request.json()))
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def wait_for_state(received: list[tuple[dict[str, str], dict[str, Any]]], state: str) -> None:
    async with asyncio.timeout(10):
        while not any(b.get("statusUpdate", {}).get("status", {}).get("state") == state for _, b in received):
            await asyncio.sleep(0.02)


async def test_inline_config_receives_every_event_in_order(
    client: httpx.AsyncClient, live_server: Callable[..., Any]
) -> None:
    received: list[tuple[dict[str, str], dict[str, Any]]] = []
    server = await live_server(receiver(received, fail_first=1))
    config = {
        "url": f"{server.url}/hook",
        "token": "tok-1",
        "authentication": {"scheme": "Bearer", "credentials": "secret-1"},
    }
    params = {
        "message": user_message("2"),
        "metadata": {"skillId": "countdown"},
        "configuration": {"taskPushNotificationConfig": config},
    }
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    await wait_for_state(received, "TASK_STATE_COMPLETED")
    headers, _ = received[0]
    assert headers["authorization"] == "Bearer secret-1"
    assert headers["x-a2a-notification-token"] == "tok-1"
    assert headers["content-type"] == "application/a2a+json"
    kinds = [next(iter(body)) for _, body in received]
    assert kinds == ["statusUpdate", "artifactUpdate", "artifactUpdate", "statusUpdate"]
    assert all(next(iter(body.values()))["taskId"] == task["id"] for _, body in received)
    configs = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}))["result"][
        "configs"
    ]
    assert configs[0]["url"] == config["url"]


async def test_config_added_later_gets_later_events(
    client: httpx.AsyncClient, live_server: Callable[..., Any]
) -> None:
    received: list[tuple[dict[str, str], dict[str, Any]]] = []
    server = await live_server(receiver(received))
    asked = await send_text(client, skill="ask")
    await rpc(
        client, "CreateTaskPushNotificationConfig", {"taskId": asked["id"], "url": f"{server.url}/hook"}
    )
    await rpc(client, "SendMessage", {"message": user_message("Kim", taskId=asked["id"])})
    await wait_for_state(received, "TASK_STATE_COMPLETED")
    states = [b["statusUpdate"]["status"]["state"] for _, b in received if "statusUpdate" in b]
    assert states == ["TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]
    assert "authorization" not in received[0][0]


async def test_inline_config_to_forbidden_address_is_refused_before_any_work(
    client: httpx.AsyncClient,
) -> None:
    params = {
        "message": user_message(),
        "configuration": {"taskPushNotificationConfig": {"url": "http://10.0.0.1/hook"}},
    }
    body = await rpc(client, "SendMessage", params)
    assert body["error"]["code"] == -32602
    assert (await rpc(client, "ListTasks", {}))["result"]["totalSize"] == 0
