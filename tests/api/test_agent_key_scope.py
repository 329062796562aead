"""A per-agent key (nxk_) is confined to its own agent on every REST route and JSON-RPC method: it reads,
PATCHes and PUTs its agent and sends its heartbeat; other agents are 404, everything else 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_agent_app, create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.api.test_registry import agent_body, register, user
from tests.conftest import make_settings
from tests.factories import envelope, host_of, user_message

V1 = {"A2A-Version": "1.0"}
PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host == "echo.test" else []


class EchoHost(httpx.AsyncBaseTransport):
    """echo.test is a kit agent in process."""

    def __init__(self, echo: Any) -> None:
        self.echo = httpx.ASGITransport(app=echo)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if host_of(request) == "echo.test":
            return await self.echo.handle_async_request(request)
        raise httpx.ConnectError("connection refused", request=request)


LEGACY = {"message": {"kind": "message", "messageId": "m", "role": "user", "parts": []}}


async def agent_key(
    client: httpx.AsyncClient, owner: dict[str, str], agent_id: str, scopes: list[str] | None = None
) -> dict[str, str]:
    body: dict[str, Any] = {"name": "agent"} | ({"scopes": scopes} if scopes is not None else {})
    created = await client.post(f"/api/v1/agents/{agent_id}/api-keys", json=body, headers=owner)
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["data"]["key"]}


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    owner = await user(client, "owner@example.com")
    x, y = await register(client, owner, name="X"), await register(client, owner, name="Y")
    user_key = (await client.post("/api/v1/api-keys", json={"name": "u"}, headers=owner)).json()["data"]
    return {
        "owner": owner,
        "x": x["id"],
        "y": y["id"],
        "user_key_id": user_key["id"],
        "key": await agent_key(client, owner, x["id"]),  # scopes default to the session's: "*"
    }


async def test_an_agent_key_reads_and_updates_its_own_agent(client: httpx.AsyncClient, world: Any) -> None:
    key, url = world["key"], f"/api/v1/agents/{world['x']}"
    assert (await client.get(url, headers=key)).json()["data"]["name"] == "X"
    patched = await client.patch(url, json={"description": "by its key"}, headers=key)
    assert patched.status_code == 200 and patched.json()["data"]["description"] == "by its key"
    put = await client.put(url, json=agent_body(name="X2"), headers=key)
    assert put.status_code == 200 and put.json()["data"]["name"] == "X2"
    beat = await client.post(f"{url}/heartbeat", json={"status": "online"}, headers=key)
    assert beat.status_code == 200


async def test_other_agents_are_not_found_to_an_agent_key(client: httpx.AsyncClient, world: Any) -> None:
    key, other = world["key"], f"/api/v1/agents/{world['y']}"
    calls = [
        client.get(other, headers=key),
        client.patch(other, json={"name": "stolen"}, headers=key),
        client.put(other, json=agent_body(name="stolen"), headers=key),
        client.post(f"{other}/heartbeat", json={"status": "offline"}, headers=key),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "NOT_FOUND"
    # Nothing changed, as its owner sees.
    assert (await client.get(other, headers=world["owner"])).json()["data"]["name"] == "Y"


async def test_an_agent_key_is_refused_every_other_rest_action(client: httpx.AsyncClient, world: Any) -> None:
    key, x, y = world["key"], world["x"], world["y"]
    refused = [
        ("POST", "/api/v1/api-keys", {"name": "user key", "scopes": ["tasks:read"]}),
        ("GET", "/api/v1/api-keys", None),
        ("DELETE", f"/api/v1/api-keys/{world['user_key_id']}", None),
        ("POST", f"/api/v1/agents/{x}/api-keys", {"name": "sibling"}),
        ("GET", f"/api/v1/agents/{x}/api-keys", None),
        ("POST", f"/api/v1/agents/{y}/api-keys", {"name": "for y"}),
        ("GET", f"/api/v1/agents/{y}/api-keys", None),
        ("POST", "/api/v1/agents", agent_body(name="new")),
        ("GET", "/api/v1/agents", None),
        ("DELETE", f"/api/v1/agents/{x}", None),
        ("GET", "/api/v1/discover", None),
        ("GET", "/api/v1/auth/me", None),
        ("POST", "/api/v1/tasks", {"assignedAgentId": x, "title": "work"}),
        ("POST", "/api/v1/tasks/some-task/cancel", None),
        ("POST", "/api/v1/tasks/some-task/reply", {"message": {"parts": [{"type": "text", "data": "x"}]}}),
        ("GET", "/api/v1/tasks/some-task/stream", None),
    ]
    for method, path, body in refused:
        response = await client.request(method, path, json=body, headers=key)
        assert response.status_code == 403, (method, path, response.text)
        assert "per-agent key" in response.json()["error"]["message"]
    # The owner's keys and agents are all still there.
    assert len((await client.get("/api/v1/api-keys", headers=world["owner"])).json()["data"]) == 1
    assert len((await client.get(f"/api/v1/agents/{x}/api-keys", headers=world["owner"])).json()["data"]) == 1
    assert len((await client.get("/api/v1/agents", headers=world["owner"])).json()["data"]) == 2


@pytest.mark.parametrize(
    ("version", "method", "params"),
    [
        ("1.0", "SendMessage", {"message": user_message()}),
        ("1.0", "SendStreamingMessage", {"message": user_message()}),
        ("1.0", "CancelTask", {"id": "t"}),
        ("1.0", "SubscribeToTask", {"id": "t"}),
        ("1.0", "CreateTaskPushNotificationConfig", {"taskId": "t", "url": "https://example.com/hook"}),
        ("1.0", "GetTaskPushNotificationConfig", {"taskId": "t", "id": "c"}),
        ("1.0", "ListTaskPushNotificationConfigs", {"taskId": "t"}),
        ("1.0", "DeleteTaskPushNotificationConfig", {"taskId": "t", "id": "c"}),
        ("1.0", "GetExtendedAgentCard", {}),
        ("0.3", "message/send", LEGACY),
        ("0.3", "message/stream", LEGACY),
        ("0.3", "tasks/cancel", {"id": "t"}),
        ("0.3", "tasks/resubscribe", {"id": "t"}),
        ("0.3", "tasks/pushNotificationConfig/list", {"id": "t"}),
        ("0.3", "agent/getAuthenticatedExtendedCard", {}),
    ],
)
async def test_an_agent_key_creates_and_changes_no_task_over_json_rpc(
    client: httpx.AsyncClient, world: Any, version: str, method: str, params: dict[str, Any]
) -> None:
    for path in ("/a2a", f"/a2a/agents/{world['x']}"):
        response = await client.post(
            path, json=envelope(method, params), headers={"A2A-Version": version, **world["key"]}
        )
        assert response.status_code == 403, (path, response.text)
        assert "per-agent key" in response.json()["error"]["message"]
    listed = await client.post("/a2a", json=envelope("ListTasks", {}), headers={**V1, **world["owner"]})
    assert listed.json()["result"]["tasks"] == []


async def test_heartbeat_needs_agents_write_or_the_agents_own_key(
    client: httpx.AsyncClient, world: Any
) -> None:
    owner, url = world["owner"], f"/api/v1/agents/{world['x']}/heartbeat"
    reader = (
        await client.post("/api/v1/api-keys", json={"name": "r", "scopes": ["agents:read"]}, headers=owner)
    ).json()["data"]["key"]
    refused = await client.post(url, json={"status": "degraded"}, headers={"X-API-Key": reader})
    assert refused.status_code == 403 and "agents:write" in refused.json()["error"]["message"]
    agent = (await client.get(f"/api/v1/agents/{world['x']}", headers=owner)).json()["data"]
    assert agent["lastHeartbeat"] is None
    writer = (
        await client.post("/api/v1/api-keys", json={"name": "w", "scopes": ["agents:write"]}, headers=owner)
    ).json()["data"]["key"]
    assert (await client.post(url, json={}, headers={"X-API-Key": writer})).status_code == 200
    # The agent's own key may beat whatever its scopes.
    narrow = await agent_key(client, owner, world["x"], ["tasks:read"])
    assert (await client.post(url, json={"status": "online"}, headers=narrow)).status_code == 200


async def test_merged_heartbeat_metadata_is_held_to_the_patch_limit(
    client: httpx.AsyncClient, world: Any
) -> None:
    key, url = world["key"], f"/api/v1/agents/{world['x']}"
    chunk = "x" * 7_000

    async def beat(metadata: dict[str, str]) -> httpx.Response:
        return await client.post(f"{url}/heartbeat", json={"metadata": metadata}, headers=key)

    assert (await beat({"a": chunk})).status_code == 200
    assert (await beat({"b": chunk})).status_code == 200
    over = await beat({"c": chunk})
    assert over.status_code == 400
    assert over.json()["error"]["details"][0]["field"] == "metadata"
    assert set((await client.get(url, headers=key)).json()["data"]["metadata"]) == {"region", "a", "b"}
    # Replacing a key keeps the size: the limit is on the merged result, not on the number of beats.
    assert (await beat({"a": "small"})).status_code == 200


# --- the tasks routed to its agent --------------------------------------------------------------------


@pytest.fixture
async def routed_net(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    echo = create_agent_app(ECHO_AGENT, make_settings(tmp_path / "echo", public_url="http://echo.test"))
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", outbound_allowlist=[]),
        local_skills=ECHO_AGENT.skills,
        outbound_transport=EchoHost(echo),
        resolver=resolver,
    )
    async with (
        LifespanManager(echo),
        LifespanManager(gateway),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw,
    ):
        owner, sender = await user(gw, "owner@example.com"), await user(gw, "sender@example.com")
        x, y = [
            (await gw.post("/api/v1/agents", json={"cardUrl": "http://echo.test"}, headers=owner)).json()[
                "data"
            ]["id"]
            for _ in range(2)
        ]

        async def send(headers: dict[str, str], agent_id: str | None, text: str) -> str:
            params: dict[str, Any] = {"message": user_message(text)}
            if agent_id is not None:
                params["metadata"] = {"agentId": agent_id}
            body = (
                await gw.post("/a2a", json=envelope("SendMessage", params), headers={**V1, **headers})
            ).json()
            task_id: str = body["result"]["task"]["id"]
            return task_id

        yield {
            "gw": gw,
            "owner": owner,
            "key": await agent_key(gw, owner, x),
            "to_x": [await send(sender, x, "first"), await send(sender, x, "second")],
            "to_y": await send(sender, y, "for y"),
            "own": await send(owner, None, "the owner's own"),
        }


async def rpc_as(
    gw: httpx.AsyncClient, headers: dict[str, str], method: str, params: Any, v: str = "1.0"
) -> Any:
    return (
        await gw.post("/a2a", json=envelope(method, params), headers={"A2A-Version": v, **headers})
    ).json()


async def test_an_agent_key_reads_the_tasks_routed_to_its_agent(routed_net: dict[str, Any]) -> None:
    gw, key, to_x = routed_net["gw"], routed_net["key"], routed_net["to_x"]
    listed = (await rpc_as(gw, key, "ListTasks", {}))["result"]
    assert sorted(t["id"] for t in listed["tasks"]) == sorted(to_x) and listed["totalSize"] == 2
    got = (await rpc_as(gw, key, "GetTask", {"id": to_x[0]}))["result"]
    assert got["id"] == to_x[0] and got["history"][0]["parts"] == [{"text": "first"}]
    legacy = (await rpc_as(gw, key, "tasks/get", {"id": to_x[1]}, v="0.3"))["result"]
    assert legacy["id"] == to_x[1] and legacy["kind"] == "task"
    rest = (await gw.get("/api/v1/tasks", headers=key)).json()
    assert sorted(t["id"] for t in rest["data"]) == sorted(to_x) and rest["meta"]["total"] == 2
    one = (await gw.get(f"/api/v1/tasks/{to_x[0]}", headers=key)).json()["data"]
    assert one["status"] == "completed" and one["routing"]["agentId"] == one["assignedAgentId"]


async def test_an_agent_key_sees_no_other_task(routed_net: dict[str, Any]) -> None:
    gw, key = routed_net["gw"], routed_net["key"]
    for other in (routed_net["to_y"], routed_net["own"]):
        assert (await rpc_as(gw, key, "GetTask", {"id": other}))["error"]["code"] == -32001
        assert (await rpc_as(gw, key, "tasks/get", {"id": other}, v="0.3"))["error"]["code"] == -32001
        assert (await gw.get(f"/api/v1/tasks/{other}", headers=key)).status_code == 404
    # The owner's own view is unchanged: its own task, not the ones others sent to its agents.
    mine = (await rpc_as(gw, routed_net["owner"], "ListTasks", {}))["result"]["tasks"]
    assert [t["id"] for t in mine] == [routed_net["own"]]
