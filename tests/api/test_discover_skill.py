"""The gateway's own ``discover`` skill: registry discovery over A2A, in both protocol versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from tests.conftest import make_settings
from tests.factories import legacy_message, rpc, user_message

SKILL = {"skillId": "discover"}


async def seed(client: httpx.AsyncClient) -> dict[str, str]:
    await client.post("/api/v1/auth/register", json={"email": "s@example.com", "password": "long enough"})
    token = (
        await client.post("/api/v1/auth/login", json={"email": "s@example.com", "password": "long enough"})
    ).json()
    headers = {"Authorization": f"Bearer {token['data']['accessToken']}"}
    for name, tags in (("Translator", ["nlp", "translate"]), ("Trader", ["trading"])):
        body = {
            "name": name,
            "endpoint": "http://127.0.0.1:9001",
            "skills": [{"id": "s", "name": name, "tags": tags}],
        }
        assert (await client.post("/api/v1/agents", json=body, headers=headers)).status_code == 201
    return headers


def data_message(data: Any) -> dict[str, Any]:
    return {
        "messageId": "d1",
        "role": "ROLE_USER",
        "parts": [{"data": data, "mediaType": "application/json"}],
    }


async def test_discover_by_data_part(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await rpc(
        client, "SendMessage", {"message": data_message({"skillTags": ["nlp"]}), "metadata": SKILL}
    )
    task = body["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    found = task["artifacts"][0]["parts"][0]["data"]
    assert found["total"] == 1 and [a["name"] for a in found["agents"]] == ["Translator"]
    assert "endpoint" not in found["agents"][0]  # callers go through the gateway, not around it


async def test_discover_by_text_in_0_3(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await rpc(
        client, "message/send", {"message": legacy_message("trad"), "metadata": SKILL}, version=None
    )
    found = body["result"]["artifacts"][0]["parts"][0]["data"]
    assert [a["name"] for a in found["agents"]] == ["Trader"]


async def test_bad_discovery_request_is_rejected_with_a_reason(client: httpx.AsyncClient) -> None:
    body = await rpc(client, "SendMessage", {"message": data_message({"limit": 500}), "metadata": SKILL})
    task = body["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_REJECTED"
    assert "limit" in task["status"]["message"]["parts"][0]["text"]


async def test_the_gateway_card_lists_only_the_gateways_own_skills(tmp_path: Path) -> None:
    """The echo agent is reached by routing: the gateway serves and advertises only its own skills
    (discovery, and running workflows)."""
    app = create_gateway_app(make_settings(tmp_path))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c,
    ):
        card = (await c.get("/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})).json()
        assert [s["id"] for s in card["skills"]] == ["discover", "run-workflow"]
        # A message naming no skill, agent or tags runs it.
        body = await rpc(c, "SendMessage", {"message": user_message("anything")})
        assert body["result"]["task"]["artifacts"][0]["parts"][0]["data"] == {"agents": [], "total": 0}
