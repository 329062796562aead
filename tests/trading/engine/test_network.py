"""End to end on real servers: a signal at the engine becomes an order placed through the gateway as an
A2A task on the exchange, a position that follows the exchange's prices, and an exit sold the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from tests.factories import envelope
from tests.trading.engine.network import Network, network, until

HEAD = {"A2A-Version": "1.0"}


async def _gateway_tasks(net: Network) -> list[dict[str, Any]]:
    answer = await net.gw.get("/api/v1/tasks", headers=net.auth, params={"limit": 100})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


async def _engine_agent_id(net: Network) -> str:
    async def listed() -> list[dict[str, Any]]:
        answer = await net.gw.get("/api/v1/agents", headers=net.auth)
        return [a for a in answer.json()["data"] if a["name"] == "Trading Engine"]

    for _ in range(500):
        found = await listed()
        if found:
            return str(found[0]["id"])
        await asyncio.sleep(0.02)
    raise AssertionError("the engine never registered at the gateway")


async def test_a_signal_becomes_an_order_through_the_gateway_and_a_live_position(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        agent = await net.trading_agent()
        btc = net.token_of("BTC")
        posted = await net.api.post(
            "/api/v1/trading-signals",
            json={"tokenAddress": btc, "symbol": "BTC", "signalType": "buy", "signalStrength": 4},
            headers=net.auth,
        )
        assert posted.status_code == 201, posted.text
        signal = posted.json()
        assert [e["agentId"] for e in signal["executions"]] == [agent["id"]]
        await net.service.trader.drain()
        read = await net.api.get(f"/api/v1/trading-signals/{signal['id']}", headers=net.auth)
        execution = read.json()["executions"][0]
        assert execution["status"] == "EXECUTED", execution

        positions = (await net.api.get("/api/v1/agent-positions", headers=net.auth)).json()
        assert len(positions) == 1
        position = positions[0]
        assert position["tokenAddress"] == btc and position["tokenSymbol"] == "BTC"
        # Nexgent's defaults: a 2-unit buy (the large band's max, capped by maxPurchasePerToken), sized at
        # the last price; the fill's slippage and both fees come on top.
        assert 2.0 <= position["totalInvestedSol"] < 2.02

        # The order went through the gateway: a place-order task on the exchange, owned by the owner.
        # (The gateway writes task records in groups, so the list may lag the answer a little.)
        async with asyncio.timeout(10):
            while True:
                tasks = await _gateway_tasks(net)
                # (The price subscription is a task on the exchange too, running, whose order events
                # are artifacts named "order" as well.)
                orders = [
                    t
                    for t in tasks
                    if t["assignedAgentId"] == net.exchange_agent_id
                    and t["status"] == "completed"
                    and any(a["name"] == "order" for a in t["artifacts"])
                ]
                if orders:
                    break
                await asyncio.sleep(0.02)
        assert len(orders) == 1
        # And the exchange filled it for the wallet's account.
        trades = [t for a in net.market.engine.accounts() for t in net.market.engine.trades(a)]
        assert len(trades) == 1

        # Prices stream in through the gateway and move the position.
        await until(lambda: net.feed.connected)
        before = net.service.trader.now_ms
        net.market.simulator.advance(8)
        await until(lambda: net.service.trader.now_ms > before)
        moved = net.service.trader.open_positions(agent["id"])[0]
        assert moved.current_price is not None

        # A manual close sells through the gateway too and leaves a historical swap.
        closed = await net.api.post(f"/api/v1/agent-positions/{position['id']}/close", headers=net.auth)
        assert closed.status_code == 200, closed.text
        assert closed.json()["closeReason"] == "manual"
        assert (await net.api.get("/api/v1/agent-positions", headers=net.auth)).json() == []
        swaps = (await net.api.get("/api/v1/agent-historical-swaps", headers=net.auth)).json()
        assert [s["positionId"] for s in swaps] == [position["id"]]
        trades = [t for a in net.market.engine.accounts() for t in net.market.engine.trades(a)]
        assert len(trades) == 2


async def test_signal_intake_and_positions_stream_through_the_gateway(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        agent = await net.trading_agent()
        engine_id = await _engine_agent_id(net)
        btc = net.token_of("BTC")

        def params(skill: str, data: Any) -> dict[str, Any]:
            return {
                "message": {
                    "messageId": f"m-{skill}-{id(data)}",
                    "role": "ROLE_USER",
                    "parts": [{"data": data, "mediaType": "application/json"}],
                },
                "metadata": {"agentId": engine_id, "skillId": skill},
            }

        body = envelope("SendStreamingMessage", params("positions-stream", {"agentId": agent["id"]}))
        kinds: list[str] = []
        task_id = ""
        async with net.gw.stream("POST", "/a2a", json=body, headers={**HEAD, **net.auth}) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                result = orjson.loads(line[6:])["result"]
                task_id = task_id or result.get("task", {}).get("id", "")
                update = result.get("artifactUpdate")
                if update is None:
                    continue
                message = update["artifact"]["parts"][0]["data"]
                kinds.append(message["type"])
                if message["type"] == "initial_data":
                    assert message["data"]["positions"] == []
                    intake = await net.gw.post(
                        "/a2a",
                        json=envelope(
                            "SendMessage",
                            params(
                                "signal-intake",
                                {"tokenAddress": btc, "action": "buy", "score": 5, "source": "test"},
                            ),
                        ),
                        headers={**HEAD, **net.auth},
                    )
                    task = intake.json()["result"]["task"]
                    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
                    records = task["artifacts"][-1]["parts"][0]["data"]["executions"]
                    assert [r["status"] for r in records] == ["EXECUTED"]
                if message["type"] == "position_update":
                    assert message["data"]["eventType"] == "position_created"
                    assert message["data"]["position"]["tokenAddress"] == btc
                    break
        assert kinds[:2] == ["connected", "initial_data"]
        canceled = await net.gw.post(
            "/a2a", json=envelope("CancelTask", {"id": task_id}), headers={**HEAD, **net.auth}
        )
        assert canceled.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED", canceled.text


async def test_a_forged_token_is_refused_and_a_gateway_token_accepted(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        good = await net.api.get("/api/v1/agents", headers=net.auth)
        assert good.status_code == 200
        header, payload, _ = net.token.split(".")
        forged = f"{header}.{payload}.{'A' * 43}"
        refused = await net.api.get("/api/v1/agents", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHENTICATED"
        assert forged not in refused.text
        # A nex_ key works too (checked with the gateway's introspection, once the engine registered).
        await _engine_agent_id(net)
        # The engine mints its nxk_ key just after it is listed: until then a nex_ key cannot be checked.
        async with asyncio.timeout(10):
            while (
                by_key := await net.api.get("/api/v1/agents", headers={"X-API-Key": net.owner_key})
            ).status_code == 401:
                await asyncio.sleep(0.05)
        assert by_key.status_code == 200, by_key.text


async def test_the_engines_owner_pays_the_exchanges_price_for_each_order(tmp_path: Path) -> None:
    async with network(tmp_path, exchange_price=3) as net:
        await net.trading_agent()

        async def balance() -> dict[str, int]:
            answer = await net.gw.get("/api/v1/billing/balance", headers=net.auth)
            found: dict[str, int] = answer.json()["data"]
            return found

        async def spent() -> int:
            return (await balance())["total_spent"]

        # The price subscription is a paid task too: its hold is captured once it streams.
        await until(lambda: net.feed.connected)
        async with asyncio.timeout(10):
            while (await balance())["held"]:
                await asyncio.sleep(0.02)
        before = await spent()
        assert before > 0  # the market data and the wallet's checks were paid calls too
        posted = await net.api.post(
            "/api/v1/trading-signals",
            json={"tokenAddress": net.token_of("ETH"), "signalType": "buy", "signalStrength": 3},
            headers=net.auth,
        )
        assert posted.status_code == 201, posted.text
        await net.service.trader.drain()
        assert net.service.trader.open_positions(posted.json()["executions"][0]["agentId"])
        # One order through the gateway: one paid place-order task.
        assert await spent() - before == 3
        # The ledger's invariants hold, and trust recorded what the exchange's calls did.
        assert (await net.gateway_app.state.billing.check()).ok
        async with asyncio.timeout(10):  # trust evidence is written in groups, after the answer
            while True:
                trust = await net.gw.get(f"/api/v1/trust/{net.exchange_agent_id}", headers=net.auth)
                assert trust.status_code == 200, trust.text
                if trust.json()["data"]["recentEvents"]:
                    break
                await asyncio.sleep(0.02)
