"""Signals, executions, positions and the ledgers through the engine's REST API.

A funded agent (a sandbox wallet with 100,000 of cash) follows its owner's signals; the in-memory
exchange fills every order at the listed price (:mod:`tests.trading.engine.api_support`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.trading.engine.api_support import BONK, TKN, Engine, api_key, running_engine, session


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with running_engine(tmp_path) as running:
        yield running


def numbers_only(doc: dict[str, Any], *fields: str) -> None:
    for name in fields:
        assert isinstance(doc[name], int | float) and not isinstance(doc[name], bool), (name, doc[name])


async def test_a_signal_executes_for_the_following_agent_and_opens_a_position(engine: Engine) -> None:
    agent = await engine.funded_agent()
    posted = await engine.signal(activationReason="Volume spike", source="test-bot")
    assert posted.status_code == 201, posted.text
    signal = posted.json()
    assert isinstance(signal["id"], int) and signal["tokenAddress"] == TKN
    assert signal["signalStrength"] == 4 and signal["userId"] == "ann"
    assert [(e["agentId"], e["status"]) for e in signal["executions"]] == [(agent["id"], "PENDING")]

    await engine.service.trader.drain()
    read = (await engine.client.get(f"/api/v1/trading-signals/{signal['id']}", headers=session("ann"))).json()
    [execution] = read["executions"]
    assert execution["status"] == "EXECUTED" and execution["error"] is None
    assert execution["positionId"] and execution["transactionId"]

    positions = (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json()
    assert [p["id"] for p in positions] == [execution["positionId"]]
    position = positions[0]
    assert position["agentId"] == agent["id"] and position["tokenAddress"] == TKN
    assert position["tokenSymbol"] == "TKN" and position["signalId"] == signal["id"]
    numbers_only(position, "purchasePrice", "purchaseAmount", "currentPrice", "profitLossPercent")
    assert position["purchasePrice"] == 2
    for path in (
        f"/api/v1/agent-positions?agentId={agent['id']}",
        f"/api/v1/agent-positions/{agent['id']}",
        f"/api/v1/agents/{agent['id']}/positions",
    ):
        assert (await engine.client.get(path, headers=api_key("ann"))).json() == positions, path
    assert (await engine.client.get("/api/v1/agent-positions", headers=session("bob"))).json() == []

    listed = (await engine.client.get("/api/v1/trading-signals", headers=session("ann"))).json()
    assert [s["id"] for s in listed] == [signal["id"]] and "executions" not in listed[0]


async def test_balances_transactions_and_swaps_follow_a_buy_and_a_manual_close(engine: Engine) -> None:
    agent = await engine.funded_agent()
    await engine.signal()
    await engine.service.trader.drain()
    [position] = (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json()

    balances = (await engine.client.get("/api/v1/agent-balances", headers=session("ann"))).json()
    assert [b["tokenSymbol"] for b in balances] == ["USD", "TKN"]
    for row in balances:
        numbers_only(row, "balance", "priceSol")
        assert row["agentId"] == agent["id"] and isinstance(row["lastUpdated"], str)
    assert balances[1]["balance"] == position["purchaseAmount"]
    assert 99_990 < balances[0]["balance"] < 100_000

    closed = await engine.client.post(
        f"/api/v1/agent-positions/{position['id']}/close", headers=session("ann")
    )
    assert closed.status_code == 200, closed.text
    swap = closed.json()
    assert swap["positionId"] == position["id"] and swap["closeReason"] == "manual"
    assert swap["agentId"] == agent["id"] and swap["tokenSymbol"] == "TKN" and swap["partial"] is False
    numbers_only(swap, "amount", "purchasePrice", "salePrice", "profitLossSol", "changePercent")
    assert (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json() == []

    swaps = (await engine.client.get("/api/v1/agent-historical-swaps", headers=session("ann"))).json()
    assert swaps == [swap]
    filtered = f"/api/v1/agent-historical-swaps?agentId={agent['id']}"
    assert (await engine.client.get(filtered, headers=api_key("ann"))).json() == [swap]

    transactions = (await engine.client.get("/api/v1/agent-transactions", headers=session("ann"))).json()
    assert [(t["transactionType"], t.get("side")) for t in transactions] == [
        ("SWAP", "sell"),
        ("SWAP", "buy"),
        ("DEPOSIT", None),
    ]
    for row in transactions:
        numbers_only(row, "transactionValueUsd", "inputAmount", "outputAmount", "fees")
    assert transactions[2]["transactionValueUsd"] == 100000
    page = await engine.client.get("/api/v1/agent-transactions?limit=1&offset=1", headers=session("ann"))
    assert [t["id"] for t in page.json()] == [transactions[1]["id"]]
    assert (await engine.client.get("/api/v1/agent-transactions", headers=session("bob"))).json() == []


async def test_the_nexgent_close_route_takes_the_agent_and_a_reason(engine: Engine) -> None:
    agent = await engine.funded_agent()
    other = await engine.funded_agent("ann", "Second", key="nx_test_fedcba9876543210")
    await engine.signal(token=BONK, strength=5)
    await engine.service.trader.drain()
    positions = (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json()
    assert sorted(p["agentId"] for p in positions) == sorted([agent["id"], other["id"]])
    mine = next(p for p in positions if p["agentId"] == agent["id"])

    wrong_agent = f"/api/v1/agent-positions/{other['id']}/{mine['id']}/close"
    refused = await engine.client.post(wrong_agent, headers=session("ann"))
    assert refused.status_code == 404 and refused.json()["code"] == "POSITION_NOT_FOUND"
    path = f"/api/v1/agent-positions/{agent['id']}/{mine['id']}/close"
    bad = await engine.client.post(path, json={"reason": "because"}, headers=session("ann"))
    assert bad.status_code == 400 and bad.json()["field"] == "reason"
    stranger = await engine.client.post(path, json={"reason": "manual"}, headers=session("bob"))
    assert stranger.status_code == 404
    closed = await engine.client.post(path, json={"reason": "take_profit"}, headers=session("ann"))
    assert closed.status_code == 200, closed.text
    assert closed.json()["closeReason"] == "take_profit" and closed.json()["positionId"] == mine["id"]
    again = await engine.client.post(path, headers=session("ann"))
    assert again.status_code == 404 and again.json()["code"] == "POSITION_NOT_FOUND"
    left = (await engine.client.get("/api/v1/agent-positions", headers=session("ann"))).json()
    assert [p["agentId"] for p in left] == [other["id"]]


async def test_a_malformed_signal_is_invalid_with_the_field_and_a_repeat_is_a_duplicate(
    engine: Engine,
) -> None:
    await engine.funded_agent()
    wrong = await engine.client.post(
        "/api/v1/trading-signals",
        json={"tokenAddress": TKN, "signalType": "buy", "signalStrength": 9},
        headers=session("ann"),
    )
    assert wrong.status_code == 400
    body = wrong.json()
    assert body["code"] == "INVALID_SIGNAL" and body["field"] == "signalStrength" and body["errors"]
    empty = await engine.client.post("/api/v1/trading-signals", headers=session("ann"))
    assert empty.status_code == 400 and empty.json()["code"] == "INVALID_SIGNAL"

    assert (await engine.signal()).status_code == 201
    repeat = await engine.signal()
    assert repeat.status_code == 409 and repeat.json()["code"] == "SIGNAL_DUPLICATE"
    # The seed's spelling of the same signal is the same signal.
    seed = await engine.client.post(
        "/api/v1/trading-signals",
        json={"tokenAddress": TKN, "action": "buy", "score": 4},
        headers=session("ann"),
    )
    assert seed.status_code == 409
    assert (await engine.signal(strength=3)).status_code == 201


async def test_signals_of_other_users_and_non_integer_ids_are_not_found(engine: Engine) -> None:
    posted = (await engine.signal("bob")).json()
    for path in (
        f"/api/v1/trading-signals/{posted['id']}",
        "/api/v1/trading-signals/abc",
        "/api/v1/trading-signals/0",
        "/api/v1/trading-signals/99999999999999999999999",
    ):
        answer = await engine.client.get(path, headers=session("ann"))
        assert answer.status_code == 404, path
        assert answer.json() == {"error": "Signal not found", "code": "SIGNAL_NOT_FOUND"}
    refused = await engine.client.delete(f"/api/v1/trading-signals/{posted['id']}", headers=session("ann"))
    assert refused.status_code == 404
    assert (await engine.client.get("/api/v1/trading-signals", headers=session("ann"))).json() == []

    deleted = await engine.client.delete(f"/api/v1/trading-signals/{posted['id']}", headers=session("bob"))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    gone = await engine.client.get(f"/api/v1/trading-signals/{posted['id']}", headers=session("bob"))
    assert gone.status_code == 404


async def test_signals_are_listed_newest_first_in_pages(engine: Engine) -> None:
    ids = [(await engine.signal(strength=s)).json()["id"] for s in (1, 2, 3, 4, 5)]
    listed = (
        await engine.client.get("/api/v1/trading-signals?limit=2&offset=1", headers=session("ann"))
    ).json()
    assert [s["id"] for s in listed] == [ids[3], ids[2]]


async def test_posting_signals_is_limited_per_credential(tmp_path: Path) -> None:
    async with running_engine(tmp_path, signals_per_minute=3) as engine:
        for strength in (1, 2, 3):
            assert (await engine.signal(strength=strength)).status_code == 201
        limited = await engine.signal(strength=4)
        assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) == 60
        # Another credential has its own budget: the same user's API key, another user.
        by_key = await engine.client.post(
            "/api/v1/trading-signals",
            json={"tokenAddress": TKN, "signalType": "buy", "signalStrength": 4},
            headers=api_key("ann"),
        )
        assert by_key.status_code == 201
        assert (await engine.signal("bob", strength=4)).status_code == 201
        # Refused posts do not count; the window slides.
        engine.clock.now += 30
        assert int((await engine.signal(strength=5)).headers["retry-after"]) == 30
        engine.clock.now += 30
        assert (await engine.signal(strength=5)).status_code == 201


async def test_performance_and_balance_history_have_nexgents_shapes(engine: Engine) -> None:
    agent = await engine.funded_agent()
    await engine.signal()
    await engine.service.trader.drain()
    path = f"/api/v1/agents/{agent['id']}"
    performance = (await engine.client.get(f"{path}/performance", headers=session("ann"))).json()
    assert performance["agentId"] == agent["id"] and performance["timeframe"] == "all"
    assert performance["totalOpenPositions"] == 1 and performance["totalClosedTrades"] == 0
    numbers_only(performance, "portfolioBalanceSol", "totalProfitLossSol", "winRate")
    day = await engine.client.get(f"{path}/performance?timeframe=24h", headers=session("ann"))
    assert day.json()["timeframe"] == "24h"
    wrong = await engine.client.get(f"{path}/performance?timeframe=week", headers=session("ann"))
    assert wrong.status_code == 400 and wrong.json()["field"] == "timeframe"

    history = (await engine.client.get(f"{path}/balance-history", headers=session("ann"))).json()
    assert history["agentId"] == agent["id"] and history["timeframe"] == "24h"
    assert isinstance(history["snapshots"], list)
    engine.service.trader.snapshot(engine.service.agent("ann", agent["id"]), engine.service.trader.now_ms)
    history = (
        await engine.client.get(f"{path}/balance-history?timeframe=all", headers=session("ann"))
    ).json()
    [point] = history["snapshots"]
    assert set(point) == {
        "timestamp",
        "portfolioBalanceSol",
        "solBalance",
        "positionsValueSol",
        "unrealizedPnLSol",
    }
    numbers_only(point, "portfolioBalanceSol", "solBalance", "positionsValueSol")
