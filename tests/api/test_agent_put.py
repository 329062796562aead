"""PUT /api/v1/agents/{id}: a full replacement next to PATCH, owner-only, validated as at registration."""

from __future__ import annotations

import httpx

from tests.api.test_registry import ENDPOINT, agent_body, register, user


async def test_put_replaces_the_whole_writable_record(client: httpx.AsyncClient) -> None:
    alice = await user(client, "put@example.com")
    agent = await register(client, alice)
    url = f"/api/v1/agents/{agent['id']}"
    minimal = {"name": "Fresh", "endpoint": ENDPOINT + "/v2", "skills": [{"id": "s", "name": "S"}]}
    replaced = await client.put(url, json={**minimal, "trustScore": 99, "ownerId": "someone"}, headers=alice)
    assert replaced.status_code == 200, replaced.text
    view = replaced.json()["data"]
    assert view["name"] == "Fresh" and view["endpoint"] == ENDPOINT + "/v2"
    assert [s["id"] for s in view["skills"]] == ["s"]
    # What the body leaves out goes back to its default, unlike PATCH; server-owned fields stay.
    assert view["description"] == "" and view["tags"] == [] and view["category"] is None
    assert view["metadata"] == {} and view["pricePerTask"] == 0
    assert view["trustScore"] == agent["trustScore"] and view["ownerId"] == agent["ownerId"]
    assert view["id"] == agent["id"] and view["createdAt"] == agent["createdAt"]
    assert (await client.get(url, headers=alice)).json()["data"] == view


async def test_put_validates_like_registration_and_changes_nothing_when_refused(
    client: httpx.AsyncClient,
) -> None:
    alice = await user(client, "put2@example.com")
    agent = await register(client, alice)
    url = f"/api/v1/agents/{agent['id']}"
    bad = [
        ({"name": "No skills", "endpoint": ENDPOINT}, "skills"),
        (agent_body(endpoint="ftp://example.com"), "endpoint"),
        (agent_body(endpoint="http://169.254.169.254/latest"), "endpoint"),
        (agent_body(metadata={"x": "y" * 20_000}), "metadata"),
        (agent_body(pricePerTask=-1), "pricePerTask"),
    ]
    for body, field in bad:
        response = await client.put(url, json=body, headers=alice)
        assert response.status_code == 400, (field, response.text)
        assert field in response.text
    assert (await client.get(url, headers=alice)).json()["data"]["name"] == agent["name"]


async def test_put_is_owner_only_and_needs_agents_write(client: httpx.AsyncClient) -> None:
    alice, bob = await user(client, "put3@example.com"), await user(client, "put4@example.com")
    agent = await register(client, alice)
    url = f"/api/v1/agents/{agent['id']}"
    assert (await client.put(url, json=agent_body(name="Bob's"), headers=bob)).status_code == 404
    assert (await client.put("/api/v1/agents/nope", json=agent_body(), headers=alice)).status_code == 404
    reader = (
        await client.post("/api/v1/api-keys", json={"name": "r", "scopes": ["agents:read"]}, headers=alice)
    ).json()["data"]["key"]
    refused = await client.put(url, json=agent_body(), headers={"X-API-Key": reader})
    assert refused.status_code == 403 and "agents:write" in refused.text
    assert (await client.put(url, json=agent_body())).status_code == 401
    assert (await client.get(url, headers=alice)).json()["data"]["name"] == agent["name"]
