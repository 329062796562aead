"""The agent registry: registration, validation, owner-only edits, server-owned fields, heartbeats
(with an injected clock), discovery filters, ranking and pagination, and per-agent keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.app import create_gateway_app
from a2a_gateway.settings import Settings
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import Clock

ENDPOINT = "http://127.0.0.1:9001"


async def user(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    await client.post("/api/v1/auth/register", json={"email": email, "password": "long enough"})
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": "long enough"})
    return {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}


def agent_body(name: str = "Summarizer", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "Summarizes text",
        "endpoint": ENDPOINT,
        "skills": [
            {"id": "summarize", "name": "Summarize", "description": "Summarizes", "tags": ["nlp", "text"]}
        ],
        "tags": ["ai"],
        "category": "language",
        "metadata": {"region": "eu"},
        "pricePerTask": 10,
    }
    body.update(extra)
    return body


async def register(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/agents", json=agent_body(**extra), headers=headers)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()["data"]
    return agent


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    """The gateway (serving the echo skills) with the registry on the test's clock."""
    application = create_gateway_app(settings, local_skills=ECHO_AGENT.skills, clock=clock)
    async with LifespanManager(application):
        yield application


async def test_register_read_and_list(client: httpx.AsyncClient) -> None:
    alice = await user(client, "alice@example.com")
    agent = await register(client, alice, trustScore=99, status="online", ownerId="someone-else")
    assert (
        agent["name"] == "Summarizer"
        and agent["pricePerTask"] == 10
        and agent["skills"][0]["tags"] == ["nlp", "text"]
    )
    # Server-owned fields are not writable by clients.
    assert agent["trustScore"] == 42.5 and agent["status"] == "offline" and agent["ownerId"] != "someone-else"
    got = (await client.get(f"/api/v1/agents/{agent['id']}", headers=alice)).json()["data"]
    assert got == agent
    mine = (await client.get("/api/v1/agents", headers=alice)).json()["data"]
    assert [a["id"] for a in mine] == [agent["id"]]
    bob = await user(client, "bob@example.com")
    assert (await client.get("/api/v1/agents", headers=bob)).json()["data"] == []
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=bob)).status_code == 200
    assert (await client.get("/api/v1/agents/nope", headers=alice)).status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"endpoint": "ftp://example.com"},
        {"endpoint": "http://user:pw@example.com"},
        {"skills": []},
        {"skills": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]},
        {"pricePerTask": -1},
        {"metadata": {"blob": "x" * 20_000}},
    ],
)
async def test_registration_validation(client: httpx.AsyncClient, change: dict[str, Any]) -> None:
    alice = await user(client, "v@example.com")
    response = await client.post("/api/v1/agents", json=agent_body(**change), headers=alice)
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_PARAMS"


async def test_registration_refuses_forbidden_endpoints(client: httpx.AsyncClient) -> None:
    alice = await user(client, "ssrf@example.com")
    for endpoint in ("http://10.0.0.1", "http://169.254.169.254/latest", "http://192.168.1.10:8080"):
        response = await client.post("/api/v1/agents", json=agent_body(endpoint=endpoint), headers=alice)
        assert response.status_code == 400 and "endpoint" in response.json()["error"]["message"], endpoint


async def test_only_the_owner_edits_and_server_fields_stay(client: httpx.AsyncClient) -> None:
    alice, bob = await user(client, "o1@example.com"), await user(client, "o2@example.com")
    agent = await register(client, alice)
    url = f"/api/v1/agents/{agent['id']}"
    assert (await client.patch(url, json={"name": "Stolen"}, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    patched = await client.patch(
        url, json={"name": "Better", "trustScore": 100, "status": "online"}, headers=alice
    )
    view = patched.json()["data"]
    assert view["name"] == "Better" and view["trustScore"] == 42.5 and view["status"] == "offline"
    assert view["description"] == "Summarizes text"
    assert (await client.delete(url, headers=alice)).status_code == 200
    assert (await client.get(url, headers=alice)).status_code == 404


async def test_scopes_on_registry_routes(client: httpx.AsyncClient) -> None:
    alice = await user(client, "sc@example.com")
    key = (
        await client.post("/api/v1/api-keys", json={"name": "r", "scopes": ["agents:read"]}, headers=alice)
    ).json()
    reader = {"X-API-Key": key["data"]["key"]}
    denied = await client.post("/api/v1/agents", json=agent_body(), headers=reader)
    assert denied.status_code == 403 and "agents:write" in denied.json()["error"]["message"]
    assert (await client.get("/api/v1/discover", headers=reader)).status_code == 200
    assert (await client.get("/api/v1/agents")).status_code == 401


async def test_heartbeat_status_with_injected_clock(client: httpx.AsyncClient, clock: Clock) -> None:
    alice = await user(client, "hb@example.com")
    agent = await register(client, alice)
    url = f"/api/v1/agents/{agent['id']}"
    beat = await client.post(f"{url}/heartbeat", json={"metadata": {"version": "2.1.0"}}, headers=alice)
    assert beat.json()["data"] == {"status": "online", "last_heartbeat": "2026-11-21T12:00:00.000Z"}
    assert (await client.get(url, headers=alice)).json()["data"]["metadata"] == {
        "region": "eu",
        "version": "2.1.0",
    }
    clock.now += timedelta(seconds=119)
    assert (await client.get(url, headers=alice)).json()["data"]["status"] == "online"
    clock.now += timedelta(seconds=2)
    assert (await client.get(url, headers=alice)).json()["data"]["status"] == "offline"
    await client.post(f"{url}/heartbeat", json={"status": "degraded"}, headers=alice)
    assert (await client.get(url, headers=alice)).json()["data"]["status"] == "degraded"
    bad = await client.post(f"{url}/heartbeat", json={"status": "sleepy"}, headers=alice)
    assert bad.status_code == 400
    bob = await user(client, "hb2@example.com")
    assert (await client.post(f"{url}/heartbeat", json={}, headers=bob)).status_code == 404


async def test_agent_keys_are_owner_only_and_speak_for_their_agent(client: httpx.AsyncClient) -> None:
    alice, bob = await user(client, "k1@example.com"), await user(client, "k2@example.com")
    first, second = await register(client, alice, name="One"), await register(client, alice, name="Two")
    keys_url = f"/api/v1/agents/{first['id']}/api-keys"
    created = await client.post(
        keys_url, json={"name": "prod", "scopes": ["*"], "expiresInDays": 90}, headers=alice
    )
    assert created.status_code == 201
    key = created.json()["data"]
    assert key["key"].startswith("nxk_") and key["expiresAt"]
    listed = (await client.get(keys_url, headers=alice)).json()["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    assert (await client.get("/api/v1/api-keys", headers=alice)).json()["data"] == []  # user keys only
    assert (await client.post(keys_url, json={"name": "x", "scopes": ["*"]}, headers=bob)).status_code == 404
    assert (await client.get(keys_url, headers=bob)).status_code == 404
    assert (await client.delete(f"{keys_url}/{key['id']}", headers=bob)).status_code == 404

    agent_key = {"Authorization": f"Bearer {key['key']}"}
    assert (
        await client.post(f"/api/v1/agents/{first['id']}/heartbeat", json={}, headers=agent_key)
    ).status_code == 200
    # A key speaks for its own agent only.
    other = await client.post(f"/api/v1/agents/{second['id']}/heartbeat", json={}, headers=agent_key)
    assert other.status_code == 404
    assert (await client.delete(f"{keys_url}/{key['id']}", headers=alice)).status_code == 200
    assert (
        await client.post(f"/api/v1/agents/{first['id']}/heartbeat", json={}, headers=agent_key)
    ).status_code == 401


async def test_discover_filters_ranking_and_pagination(
    client: httpx.AsyncClient, app: Starlette, clock: Clock
) -> None:
    alice = await user(client, "d@example.com")
    ids = {}
    ids["a"] = (
        await register(
            client,
            alice,
            name="Alpha translator",
            category="language",
            skills=[{"id": "t", "name": "Translate", "tags": ["nlp", "translate"]}],
        )
    )["id"]
    ids["b"] = (await register(client, alice, name="Beta summarizer", category="language"))["id"]
    ids["c"] = (
        await register(
            client,
            alice,
            name="Gamma trader",
            category="finance",
            skills=[{"id": "x", "name": "Execute trade", "tags": ["trading"]}],
        )
    )["id"]
    for key in ("a", "b"):
        await client.post(f"/api/v1/agents/{ids[key]}/heartbeat", json={}, headers=alice)
    # Trust is server-owned (the trust issue computes it); set it through the repository for ranking.
    agents = app.state.agents
    for key, score in (("a", 40.0), ("b", 90.0), ("c", 60.0)):
        await agents.set_trust(ids[key], score)

    async def discover(**params: Any) -> dict[str, Any]:
        response = await client.get("/api/v1/discover", params=params, headers=alice)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await discover()
    assert [a["id"] for a in everything["data"]] == [ids["b"], ids["c"], ids["a"]]
    assert everything["meta"] == {"total": 3, "limit": 20, "offset": 0}
    assert [a["id"] for a in (await discover(skillTags="nlp"))["data"]] == [ids["b"], ids["a"]]
    assert [a["id"] for a in (await discover(skillTags="nlp,translate"))["data"]] == [ids["a"]]
    assert [a["id"] for a in (await discover(skillTags="NLP,ai"))["data"]] == [ids["b"], ids["a"]]
    assert [a["id"] for a in (await discover(category="finance"))["data"]] == [ids["c"]]
    assert [a["id"] for a in (await discover(minTrustScore="50"))["data"]] == [ids["b"], ids["c"]]
    assert [a["id"] for a in (await discover(status="online"))["data"]] == [ids["b"], ids["a"]]
    assert [a["id"] for a in (await discover(status="offline"))["data"]] == [ids["c"]]
    assert [a["id"] for a in (await discover(q="trade"))["data"]] == [ids["c"]]
    assert [a["id"] for a in (await discover(q="100%"))["data"]] == []
    page = await discover(limit="2", offset="1")
    assert [a["id"] for a in page["data"]] == [ids["c"], ids["a"]] and page["meta"]["total"] == 3
    clock.now += timedelta(minutes=5)
    assert (await discover(status="online"))["data"] == []
    for bad in (
        {"limit": "0"},
        {"limit": "101"},
        {"offset": "-1"},
        {"minTrustScore": "abc"},
        {"status": "sleepy"},
    ):
        assert (await client.get("/api/v1/discover", params=bad, headers=alice)).status_code == 400


async def test_discovery_is_public_in_the_open_gateway_only(tmp_path: Any) -> None:
    for open_gateway, expected in ((True, 200), (False, 401)):
        app = create_gateway_app(
            make_settings(tmp_path / str(open_gateway), open_gateway=open_gateway),
            local_skills=ECHO_AGENT.skills,
        )
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as anonymous,
        ):
            response = await anonymous.get("/api/v1/discover")
            assert response.status_code == expected, response.text
            if expected == 200:
                assert response.json()["meta"]["total"] == 0


async def test_a_page_number_too_long_to_be_a_number_is_400_not_500(client: httpx.AsyncClient) -> None:
    for params in ({"limit": "9" * 5000}, {"offset": "-" + "9" * 5000}):
        answer = await client.get("/api/v1/discover", params=params)
        assert answer.status_code == 400, answer.text
