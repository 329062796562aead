"""The engine's REST API from the outside: agents, configs, wallets, who may call what, bodies, pages.

The API runs over a real service and store with an in-memory exchange and a fake gateway auth
(:mod:`tests.trading.engine.api_support`); signals, trades and positions are in ``test_api_trading``,
health, metrics and prices in ``test_api_operations``, the gateway forwarding in ``test_api_forward``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agents_examples.trading.engine.api.access import JWT_REQUIRED_MESSAGE, Access
from agents_examples.trading.engine.api.responses import MAX_BODY_BYTES
from tests.trading.engine.api_support import KEY, SECRET, Engine, api_key, running_engine, session


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with running_engine(tmp_path) as running:
        yield running


def concrete(path: str) -> str:
    """A route path with every parameter filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


# ------------------------------------------------------------------------------ who may call


async def test_every_route_but_health_and_sign_in_refuses_a_call_without_a_credential(engine: Engine) -> None:
    guarded = [s for s in engine.api.specs if s.access is not Access.PUBLIC]
    assert len(guarded) > 35
    for spec in guarded:
        for method in spec.methods:
            answer = await engine.client.request(method, "/api/v1" + concrete(spec.path), json={})
            assert answer.status_code == 401, (method, spec.path, answer.text)
            body = answer.json()
            assert body["code"] == "UNAUTHENTICATED" and isinstance(body["error"], str)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    public = {s.path for s in engine.api.specs if s.access is Access.PUBLIC}
    assert public == {
        "/health",
        "/health/live",
        "/health/ready",
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
    }


async def test_an_unknown_credential_is_refused_like_none(engine: Engine) -> None:
    answer = await engine.client.get("/api/v1/agents", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"


async def test_an_api_key_may_not_write_anything_but_signals(engine: Engine) -> None:
    writes = [s for s in engine.api.specs if s.access is Access.SESSION]
    assert {"/agents", "/agents/{id}/config", "/wallets/assign", "/agent-positions/{positionId}/close"} <= {
        s.path for s in writes
    }
    for spec in writes:
        for method in spec.methods:
            answer = await engine.client.request(
                method, "/api/v1" + concrete(spec.path), headers=api_key("ann"), json={}
            )
            assert answer.status_code == 403, (method, spec.path)
            assert answer.json() == {"error": JWT_REQUIRED_MESSAGE, "code": "JWT_REQUIRED"}


async def test_an_api_key_reads_and_posts_signals(engine: Engine) -> None:
    agent = await engine.agent("ann")
    listed = await engine.client.get("/api/v1/agents", headers=api_key("ann"))
    assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [agent["id"]]
    config = await engine.client.get(f"/api/v1/agents/{agent['id']}/config", headers=api_key("ann"))
    assert config.status_code == 200
    body = {
        "tokenAddress": "TokenAddr1111111111111111111111111111111111",
        "signalType": "buy",
        "signalStrength": 3,
    }
    posted = await engine.client.post("/api/v1/trading-signals", json=body, headers=api_key("ann"))
    assert posted.status_code == 201, posted.text
    signal_id = posted.json()["id"]
    deleted = await engine.client.delete(f"/api/v1/trading-signals/{signal_id}", headers=api_key("ann"))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}


# ------------------------------------------------------------------------------ agents


async def test_agents_are_created_listed_read_updated_and_deleted_as_bare_objects(engine: Engine) -> None:
    created = await engine.client.post(
        "/api/v1/agents", json={"name": "  Alpha  ", "tradingMode": "simulation"}, headers=session("ann")
    )
    assert created.status_code == 201
    agent = created.json()
    assert agent["name"] == "Alpha" and agent["tradingMode"] == "simulation" and agent["isActive"] is True
    assert agent["userId"] == "ann" and agent["walletAddress"] is None
    assert agent["createdAt"].endswith("Z") and "error" not in agent and "data" not in agent
    one = f"/api/v1/agents/{agent['id']}"

    listed = await engine.client.get("/api/v1/agents", headers=session("ann"))
    assert listed.json() == [agent]
    assert (await engine.client.get(one, headers=session("ann"))).json() == agent

    renamed = await engine.client.put(one, json={"name": "Beta", "isActive": False}, headers=session("ann"))
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Beta" and renamed.json()["isActive"] is False
    patched = await engine.client.patch(
        one, json={"automatedTradingSimulation": True}, headers=session("ann")
    )
    assert patched.json()["isActive"] is True

    deleted = await engine.client.delete(one, headers=session("ann"))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    gone = await engine.client.get(one, headers=session("ann"))
    assert gone.status_code == 404 and gone.json() == {"error": "Agent not found", "code": "AGENT_NOT_FOUND"}
    assert (await engine.client.get("/api/v1/agents", headers=session("ann"))).json() == []


async def test_agent_fields_are_validated_with_the_field_named(engine: Engine) -> None:
    for body, field in [
        ({"name": "ab"}, "name"),
        ({}, "name"),
        ({"name": "Alpha", "tradingMode": "paper"}, "tradingMode"),
        ({"name": "Alpha", "colour": "red"}, "colour"),
    ]:
        answer = await engine.client.post("/api/v1/agents", json=body, headers=session("ann"))
        assert answer.status_code == 400, body
        assert answer.json()["code"] == "VALIDATION_ERROR" and answer.json()["field"] == field
    listed = await engine.client.post("/api/v1/agents", json=["Alpha"], headers=session("ann"))
    assert listed.status_code == 400 and listed.json()["code"] == "VALIDATION_ERROR"


async def test_another_users_agent_is_not_found_everywhere(engine: Engine) -> None:
    theirs = (await engine.agent("bob", "Bobs agent"))["id"]
    reads = [
        f"/agents/{theirs}",
        f"/agents/{theirs}/config",
        f"/agents/{theirs}/performance",
        f"/agents/{theirs}/balance-history",
        f"/agents/{theirs}/positions",
        f"/agent-positions/{theirs}",
        f"/agent-positions?agentId={theirs}",
        f"/agent-balances?agentId={theirs}",
        f"/agent-transactions?agentId={theirs}",
        f"/agent-historical-swaps?agentId={theirs}",
        f"/wallets/agent/{theirs}",
    ]
    for path in reads:
        answer = await engine.client.get("/api/v1" + path, headers=session("ann"))
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "AGENT_NOT_FOUND", path
    for method, path in [
        ("PUT", f"/agents/{theirs}"),
        ("DELETE", f"/agents/{theirs}"),
        ("PUT", f"/agents/{theirs}/config"),
    ]:
        answer = await engine.client.request(
            method, "/api/v1" + path, json={"name": "Mine now"}, headers=session("ann")
        )
        assert answer.status_code == 404 and answer.json()["code"] == "AGENT_NOT_FOUND"
    assert (await engine.client.get(f"/api/v1/agents/{theirs}", headers=session("bob"))).status_code == 200
    assert (await engine.client.get("/api/v1/agents", headers=session("ann"))).json() == []


# ------------------------------------------------------------------------------ config


async def test_the_config_is_read_merged_and_validated(engine: Engine) -> None:
    agent = await engine.agent()
    path = f"/api/v1/agents/{agent['id']}/config"
    config = (await engine.client.get(path, headers=session("ann"))).json()
    assert {"purchaseLimits", "signals", "stopLoss", "takeProfit", "staleTrade", "positionCalculator"} <= set(
        config
    )
    assert isinstance(config["stopLoss"]["defaultPercentage"], int | float)

    changed = await engine.client.put(
        path, json={"stopLoss": {"defaultPercentage": -20}}, headers=session("ann")
    )
    assert changed.status_code == 200, changed.text
    merged = changed.json()
    assert merged["stopLoss"]["defaultPercentage"] == -20
    assert (
        merged["purchaseLimits"] == config["purchaseLimits"] and merged["takeProfit"] == config["takeProfit"]
    )

    wrapped = await engine.client.patch(
        path, json={"tradingConfig": {"staleTrade": {"enabled": False}}}, headers=session("ann")
    )
    assert wrapped.status_code == 200 and wrapped.json()["staleTrade"]["enabled"] is False
    assert wrapped.json()["stopLoss"]["defaultPercentage"] == -20
    assert (await engine.client.get(path, headers=session("ann"))).json() == wrapped.json()

    wrong = await engine.client.put(
        path, json={"stopLoss": {"defaultPercentage": 50}}, headers=session("ann")
    )
    assert wrong.status_code == 400
    body = wrong.json()
    assert body["code"] == "INVALID_CONFIG" and "defaultPercentage" in body["field"]
    assert body["errors"] and all({"field", "message"} <= set(e) for e in body["errors"])
    assert (await engine.client.get(path, headers=session("ann"))).json() == wrapped.json()


# ------------------------------------------------------------------------------ wallets


async def test_wallets_are_shown_without_their_secrets(engine: Engine) -> None:
    added = await engine.client.post(
        "/api/v1/wallets", json={"apiKey": KEY, "apiSecret": SECRET, "label": "paper"}, headers=session("ann")
    )
    assert added.status_code == 201, added.text
    wallet = added.json()
    assert wallet["walletType"] == "simulation" and wallet["label"] == "paper" and wallet["agentId"] is None
    assert wallet["apiKeyPrefix"] == KEY[:12] and wallet["address"] == wallet["walletAddress"]
    assert set(wallet) == {
        "address",
        "walletAddress",
        "walletType",
        "label",
        "agentId",
        "apiKeyPrefix",
        "createdAt",
    }
    agent = await engine.agent()
    assigned = await engine.client.post(
        "/api/v1/wallets/assign",
        json={"agentId": agent["id"], "walletAddress": wallet["address"]},
        headers=session("ann"),
    )
    assert assigned.status_code == 200
    assert assigned.json()["success"] is True and assigned.json()["wallet"]["agentId"] == agent["id"]
    assert assigned.json()["agent"]["walletAddress"] == wallet["address"]
    answers = [
        added,
        assigned,
        await engine.client.get("/api/v1/wallets", headers=session("ann")),
        await engine.client.get(f"/api/v1/wallets/agent/{agent['id']}", headers=session("ann")),
        await engine.client.get("/api/v1/wallets", headers=api_key("ann")),
    ]
    for answer in answers:
        assert SECRET not in answer.text and KEY not in answer.text
    assert [w["agentId"] for w in answers[2].json()] == [agent["id"]]
    assert answers[3].json() == answers[2].json()


async def test_wallets_reset_by_body_or_path_and_stay_their_owners(engine: Engine) -> None:
    agent = await engine.funded_agent("ann")
    address = agent["walletAddress"]
    # Bob sees neither the wallet nor the agent.
    assert (await engine.client.get("/api/v1/wallets", headers=session("bob"))).json() == []
    for body in ({"walletAddress": address}, {"agentId": agent["id"]}):
        refused = await engine.client.post("/api/v1/wallets/reset", json=body, headers=session("bob"))
        assert refused.status_code == 404
    refused = await engine.client.post(f"/api/v1/wallets/{address}/reset", headers=session("bob"))
    assert refused.status_code == 404 and refused.json()["code"] == "WALLET_NOT_FOUND"
    stolen = await engine.client.post(
        "/api/v1/wallets/assign",
        json={"agentId": (await engine.agent("bob"))["id"], "walletAddress": address},
        headers=session("bob"),
    )
    assert stolen.status_code == 404 and stolen.json()["code"] == "WALLET_NOT_FOUND"

    reset = await engine.client.post(f"/api/v1/wallets/{address}/reset", headers=session("ann"))
    assert reset.status_code == 200, reset.text
    assert reset.json()["agent"]["walletAddress"] is None and reset.json()["wallet"]["agentId"] is None
    again = await engine.client.post(
        "/api/v1/wallets/assign",
        json={"agentId": agent["id"], "walletAddress": address},
        headers=session("ann"),
    )
    assert again.status_code == 200
    by_body = await engine.client.post(
        "/api/v1/wallets/reset", json={"agentId": agent["id"]}, headers=session("ann")
    )
    assert by_body.status_code == 200 and by_body.json()["wallet"]["address"] == address
    assert (await engine.client.get("/api/v1/agent-balances", headers=session("ann"))).json() == []


async def test_a_wallet_with_bad_keys_is_refused_with_the_field(engine: Engine) -> None:
    for body, field in [
        ({"apiKey": "short", "apiSecret": SECRET}, "apiKey"),
        ({"apiKey": "xx_test_0123456789", "apiSecret": SECRET}, "apiKey"),
        ({"apiKey": KEY, "apiSecret": "x"}, "apiSecret"),
        ({"apiKey": KEY, "apiSecret": SECRET, "extra": 1}, "extra"),
    ]:
        answer = await engine.client.post("/api/v1/wallets", json=body, headers=session("ann"))
        assert answer.status_code == 400 and answer.json()["field"] == field, body
    # No keys: this engine cannot open sandbox accounts.
    assert (await engine.client.post("/api/v1/wallets", headers=session("ann"))).status_code == 400


# ------------------------------------------------------------------------------ bodies and pages


async def test_bodies_over_64_kib_are_refused_before_they_are_read_or_while_they_stream(
    engine: Engine,
) -> None:
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    answer = await engine.client.post(
        "/api/v1/agents", content=big, headers={**session("ann"), "Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and answer.json()["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b" " * 1024

    streamed = await engine.client.post("/api/v1/agents", content=chunks(), headers=session("ann"))
    assert streamed.status_code == 413 and streamed.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert (await engine.client.get("/api/v1/agents", headers=session("ann"))).json() == []


async def test_a_body_that_is_not_json_is_invalid_json(engine: Engine) -> None:
    agent = await engine.agent()
    for path in ("/api/v1/agents", "/api/v1/trading-signals", f"/api/v1/agents/{agent['id']}/config"):
        method = "PUT" if path.endswith("config") else "POST"
        answer = await engine.client.request(method, path, content=b"{not json", headers=session("ann"))
        assert answer.status_code == 400, path
        assert answer.json() == {"error": "The body is not valid JSON", "code": "INVALID_JSON"}


async def test_lists_are_paginated_with_limit_and_offset(engine: Engine) -> None:
    names = [f"Agent {n}" for n in range(5)]
    for name in names:
        await engine.agent("ann", name)

    async def page(query: str) -> httpx.Response:
        return await engine.client.get(f"/api/v1/agents{query}", headers=session("ann"))

    assert [a["name"] for a in (await page("")).json()] == names
    assert [a["name"] for a in (await page("?limit=2")).json()] == names[:2]
    assert [a["name"] for a in (await page("?limit=2&offset=3")).json()] == names[3:]
    assert (await page("?offset=9")).json() == []
    for query, field in [
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=" + "9" * 5000, "limit"),
        ("?offset=-1", "offset"),
        ("?offset=1.5", "offset"),
    ]:
        answer = await page(query)
        assert answer.status_code == 400, query
        assert answer.json()["code"] == "INVALID_PAGINATION" and answer.json()["field"] == field
    assert len((await page("?limit=500")).json()) == 5


async def test_sixty_agents_come_fifty_to_a_page_by_default(engine: Engine) -> None:
    for n in range(60):
        await engine.agent("ann", f"Agent {n:02}")
    first = (await engine.client.get("/api/v1/agents", headers=session("ann"))).json()
    rest = (await engine.client.get("/api/v1/agents?offset=50", headers=session("ann"))).json()
    assert len(first) == 50 and len(rest) == 10
    assert rest[-1]["name"] == "Agent 59"


# ------------------------------------------------------------------------------ routing


async def test_unknown_routes_and_methods_answer_in_the_seed_shape(engine: Engine) -> None:
    missing = await engine.client.get("/api/v1/no-such-thing", headers=session("ann"))
    assert missing.status_code == 404 and missing.json() == {"error": "No such route", "code": "NOT_FOUND"}
    wrong = await engine.client.patch("/api/v1/trading-signals", headers=session("ann"))
    assert wrong.status_code == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
