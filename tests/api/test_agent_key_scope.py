"""A per-agent key (nxk_) is confined to its own agent on every REST route and JSON-RPC method: it reads,
PATCHes and PUTs its agent and sends its heartbeat; other agents are 404, everything else 403."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_registry import agent_body, register, user
from tests.factories import envelope, user_message

V1 = {"A2A-Version": "1.0"}
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
