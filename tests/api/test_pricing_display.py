"""Prices are visible before a call: per skill in the agent's record and discovery, and in its proxied
card as the gateway's pricing extension (1.0 and 0.3 forms)."""

from __future__ import annotations

import httpx

from a2a_gateway.api.proxy_cards import PRICING_EXTENSION_URI
from tests.api.test_registry import register, user


async def test_a_skill_may_have_its_own_price_and_the_others_cost_the_agents_price(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client, "prices@example.com")
    skills = [
        {"id": "cheap", "name": "Cheap"},
        {"id": "dear", "name": "Dear", "price": 250},
        {"id": "free", "name": "Free", "price": 0},
    ]
    agent = await register(client, owner, skills=skills, pricePerTask=10)
    assert [(s["id"], s["price"]) for s in agent["skills"]] == [("cheap", 10), ("dear", 250), ("free", 0)]
    found = (await client.get("/api/v1/discover")).json()["data"]
    assert [s["price"] for s in found[0]["skills"]] == [10, 250, 0]
    # A negative price, or one that is not an integer, is refused and changes nothing.
    for bad in (-1, 2.5, "10"):
        patch = {"skills": [{"id": "x", "name": "X", "price": bad}]}
        refused = await client.patch(f"/api/v1/agents/{agent['id']}", json=patch, headers=owner)
        assert refused.status_code == 400, bad
    again = (await client.get(f"/api/v1/agents/{agent['id']}", headers=owner)).json()["data"]
    assert [s["price"] for s in again["skills"]] == [10, 250, 0]


async def test_the_proxied_card_declares_the_prices_as_an_optional_extension(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client, "card-prices@example.com")
    skills = [{"id": "a", "name": "A"}, {"id": "b", "name": "B", "price": 3}]
    agent = await register(client, owner, skills=skills, pricePerTask=7)
    path = f"/a2a/agents/{agent['id']}/.well-known/agent-card.json"
    card = (await client.get(path, params={"A2A-Version": "1.0"})).json()
    (extension,) = card["capabilities"]["extensions"]
    assert extension["uri"] == PRICING_EXTENSION_URI and extension["required"] is False
    assert extension["params"] == {"currency": "credits", "pricePerTask": 7, "skills": {"a": 7, "b": 3},
                                   "trustScore": agent["trustScore"]}  # fmt: skip
    legacy = (await client.get(path, params={"A2A-Version": "0.3"})).json()
    assert legacy["capabilities"]["extensions"][0]["params"]["skills"] == {"a": 7, "b": 3}
