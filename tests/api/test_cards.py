"""Agent cards of the gateway and of proxied agents: three forms chosen by ``A2A-Version``, and validators.

No version hint (what a 0.3 client sends) gives the card both versions read: the 1.0 fields with the 0.3
ones added. ``A2A-Version: 1.x`` gives the pure 1.0 card, ``0.3`` the pure 0.3 card; as header or query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from a2a_gateway.api.proxy_cards import ProxyCards
from a2a_gateway.errors import NotFound
from a2a_gateway.protocol import v0_3, v1
from a2a_gateway.registry.models import Agent, SkillSpec
from tests.factories import Clock

V0_3_ONLY = {
    "url",
    "protocolVersion",
    "preferredTransport",
    "additionalInterfaces",
    "supportsAuthenticatedExtendedCard",
    "security",
}
GATEWAY_PATHS = ["/.well-known/agent-card.json", "/.well-known/agent.json"]
RPC = "http://testserver/a2a"


def assert_pure_1_0(card: dict[str, Any], rpc_url: str) -> None:
    assert not V0_3_ONLY & set(card)
    assert card["supportedInterfaces"] == [
        {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    # Strict 1.0 readers want exactly one member of the SecurityScheme oneof per entry.
    assert all(len(scheme) == 1 for scheme in card["securitySchemes"].values())
    assert "security" not in card and all("security" not in s for s in card["skills"])
    v1.AgentCard.model_validate(card)


def assert_pure_0_3(card: dict[str, Any], rpc_url: str) -> None:
    assert card["protocolVersion"] == "0.3.0"
    assert card["url"] == rpc_url and card["preferredTransport"] == "JSONRPC"
    assert not {"supportedInterfaces", "securityRequirements"} & set(card)
    assert all("type" in scheme and len(scheme) > 1 for scheme in card["securitySchemes"].values())
    v0_3.AgentCard.model_validate(card)


def assert_both(card: dict[str, Any], rpc_url: str) -> None:
    """Every field a 1.0 reader needs and every field a 0.3 reader needs, in one document."""
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}
    assert card["url"] == rpc_url and card["preferredTransport"] == "JSONRPC"
    assert card["protocolVersion"] == "0.3.0"
    assert card["securityRequirements"] and card["security"]
    bearer = card["securitySchemes"]["bearer"]
    assert bearer["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer"
    assert card["securitySchemes"]["apiKey"]["in"] == "header"
    as_v1 = v1.AgentCard.model_validate(card)
    as_v0_3 = v0_3.AgentCard.model_validate(card)
    assert as_v1.name == as_v0_3.name == card["name"]
    assert [s.id for s in as_v1.skills] == [s.id for s in as_v0_3.skills]


@pytest.mark.parametrize("path", GATEWAY_PATHS)
async def test_no_version_hint_gives_the_card_both_versions_read(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    card = response.json()
    assert_both(card, RPC)
    assert card["capabilities"]["streaming"] is True and card["capabilities"]["extendedAgentCard"] is True
    assert card["supportsAuthenticatedExtendedCard"] is True
    assert card["name"] and card["description"] and card["version"]
    assert all({"id", "name", "description", "tags"} <= set(s) for s in card["skills"])
    # An unknown or malformed version is not an error on a card: it gets the form most readers read.
    for hint in ("2.0", "x", " "):
        assert (await client.get(path, headers={"A2A-Version": hint})).content == response.content


@pytest.mark.parametrize("path", GATEWAY_PATHS)
@pytest.mark.parametrize(
    "ask",
    [
        {"headers": {"A2A-Version": "1.0"}},
        {"headers": {"A2A-Version": "1.2"}},
        {"params": {"A2A-Version": "1.0"}},
    ],
)
async def test_a2a_version_1_x_gives_the_pure_1_0_card(
    client: httpx.AsyncClient, path: str, ask: dict[str, Any]
) -> None:
    card = (await client.get(path, **ask)).json()
    assert_pure_1_0(card, RPC)
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": True}
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"] == {
        "location": "header",
        "name": "X-API-Key",
        "description": "A user key (nex_...)",
    }
    # The open gateway accepts anonymous calls: an empty requirement is one of the alternatives.
    assert {"schemes": {}} in card["securityRequirements"]


@pytest.mark.parametrize("path", GATEWAY_PATHS)
@pytest.mark.parametrize("ask", [{"headers": {"A2A-Version": "0.3"}}, {"params": {"A2A-Version": "0.3"}}])
async def test_a2a_version_0_3_gives_the_pure_0_3_card(
    client: httpx.AsyncClient, path: str, ask: dict[str, Any]
) -> None:
    card = (await client.get(path, **ask)).json()
    assert_pure_0_3(card, RPC)
    assert card["supportsAuthenticatedExtendedCard"] is True
    assert card["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT access token, or a user key (nex_...)",
        "description": "Authorization: Bearer <token or key>",
    }


async def test_the_query_parameter_wins_over_the_header(client: httpx.AsyncClient) -> None:
    card = (
        await client.get(GATEWAY_PATHS[0], params={"A2A-Version": "0.3"}, headers={"A2A-Version": "1.0"})
    ).json()
    assert_pure_0_3(card, RPC)


async def test_etag_and_cache_control(client: httpx.AsyncClient) -> None:
    first = await client.get("/.well-known/agent-card.json")
    etag = first.headers["etag"]
    assert "max-age=300" in first.headers["cache-control"] and first.headers["vary"] == "A2A-Version"
    again = await client.get("/.well-known/agent-card.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # Each form is its own representation with its own tag; both paths serve the same ones.
    pure = await client.get(
        "/.well-known/agent-card.json", headers={"A2A-Version": "1.0", "If-None-Match": etag}
    )
    assert pure.status_code == 200 and pure.headers["etag"] != etag
    legacy = await client.get("/.well-known/agent.json", headers={"If-None-Match": etag})
    assert legacy.status_code == 304
    stale = await client.get("/.well-known/agent-card.json", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


async def test_last_modified_and_if_modified_since(client: httpx.AsyncClient) -> None:
    first = await client.get("/.well-known/agent-card.json")
    stamp = first.headers["last-modified"]
    modified = parsedate_to_datetime(stamp)
    assert stamp.endswith(" GMT") and modified <= datetime.now(UTC)
    same = await client.get("/.well-known/agent-card.json", headers={"If-Modified-Since": stamp})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["last-modified"] == stamp and same.headers["etag"] == first.headers["etag"]
    later = format_datetime(modified + timedelta(days=1), usegmt=True)
    assert (
        await client.get("/.well-known/agent.json", headers={"If-Modified-Since": later})
    ).status_code == 304
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    older = await client.get("/.well-known/agent-card.json", headers={"If-Modified-Since": earlier})
    assert older.status_code == 200 and older.json()["name"] == first.json()["name"]
    for junk in ("yesterday", "", "Mon, 99 Foo 2026 99:99:99 GMT"):
        ignored = await client.get("/.well-known/agent-card.json", headers={"If-Modified-Since": junk})
        assert ignored.status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": stamp}
    assert (await client.get("/.well-known/agent-card.json", headers=both)).status_code == 200


# --- cards of proxied agents ------------------------------------------------------------------------


async def register(client: httpx.AsyncClient) -> str:
    credentials = {"email": "cards@example.com", "password": "long enough"}
    await client.post("/api/v1/auth/register", json=credentials)
    token = (await client.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
    body = {"name": "Proxied", "description": "an agent behind the gateway", "endpoint": "http://127.0.0.1:9/a2a",
            "skills": [{"id": "echo", "name": "Echo", "tags": ["echo"]}]}  # fmt: skip
    response = await client.post("/api/v1/agents", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["data"]["id"]
    return agent_id


@pytest.mark.parametrize("name", ["agent-card.json", "agent.json"])
async def test_proxied_agent_card_in_each_form_at_both_paths(client: httpx.AsyncClient, name: str) -> None:
    agent_id = await register(client)
    path = f"/a2a/agents/{agent_id}/.well-known/{name}"
    proxy = f"http://testserver/a2a/agents/{agent_id}"
    plain = await client.get(path)
    assert plain.status_code == 200 and plain.headers["vary"] == "A2A-Version"
    assert_both(plain.json(), proxy)
    assert [s["id"] for s in plain.json()["skills"]] == ["echo"]
    assert_pure_1_0((await client.get(path, headers={"A2A-Version": "1.0"})).json(), proxy)
    assert_pure_1_0((await client.get(path, params={"A2A-Version": "1.1"})).json(), proxy)
    assert_pure_0_3((await client.get(path, headers={"A2A-Version": "0.3"})).json(), proxy)
    assert_pure_0_3((await client.get(path, params={"A2A-Version": "0.3"})).json(), proxy)
    missing = await client.get("/a2a/agents/nope/.well-known/" + name)
    assert missing.status_code == 404 and missing.json()["error"]["code"]


async def test_proxied_agent_card_validators(client: httpx.AsyncClient) -> None:
    agent_id = await register(client)
    path = f"/a2a/agents/{agent_id}/.well-known/agent-card.json"
    first = await client.get(path)
    etag, stamp = first.headers["etag"], first.headers["last-modified"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 304
    assert (await client.get(path, headers={"If-Modified-Since": stamp})).status_code == 304
    legacy = await client.get(
        f"/a2a/agents/{agent_id}/.well-known/agent.json", headers={"If-None-Match": etag}
    )
    assert legacy.status_code == 304


class Lookup:
    """The registry as the proxy cards see it: one agent, changed by the test."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def get(self, agent_id: str) -> Agent:
        if agent_id != self.agent.id:
            raise NotFound("no such agent")
        return self.agent


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[httpx.AsyncClient, Lookup, Clock]]:
    clock = Clock()
    agent = Agent(id="a1", owner_id="u1", name="First", description="d", endpoint="http://x.test/a2a",
                  skills=[SkillSpec(id="s", name="S")], tags=[], category=None, metadata={}, price_per_task=0,
                  protocol_version="1.0", created_at=clock.now, updated_at=clock.now)  # fmt: skip
    lookup = Lookup(agent)
    cards = ProxyCards(lookup, "http://gw.test", push=True, anonymous_allowed=True, max_age=60, clock=clock)
    app = Starlette(routes=[Route("/a2a/agents/{agent_id}/.well-known/agent-card.json", cards.serve)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as c:
        yield c, lookup, clock


async def test_proxied_card_is_dated_by_its_content(proxied: tuple[httpx.AsyncClient, Lookup, Clock]) -> None:
    client, lookup, clock = proxied
    path = "/a2a/agents/a1/.well-known/agent-card.json"
    first = await client.get(path)
    stamp = first.headers["last-modified"]
    assert parsedate_to_datetime(stamp) == clock.now
    # Time passes but the card stays the same: same date, and the client's copy is current.
    clock.now += timedelta(minutes=5)
    assert (await client.get(path, headers={"If-Modified-Since": stamp})).status_code == 304
    # Any change of what the card says (here a heartbeat's metadata: no updatedAt moves) dates it anew.
    lookup.agent = replace(lookup.agent, metadata={"version": "2.0.0"})
    changed = await client.get(path, headers={"If-Modified-Since": stamp})
    assert changed.status_code == 200 and changed.json()["version"] == "2.0.0"
    assert parsedate_to_datetime(changed.headers["last-modified"]) == clock.now
    assert changed.headers["etag"] != first.headers["etag"]
    assert (await client.get(path, headers={"If-None-Match": first.headers["etag"]})).status_code == 200
