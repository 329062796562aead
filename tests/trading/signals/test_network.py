"""The signal agent in a whole network on real loopback servers (tests/trading/engine/network.py): the
exchange's synthetic price path, stepped one bar close at a time, reaches the signal agent through the
gateway; its crossover's buy goes to the engine's ``signal-intake`` through the gateway as the analyst
who owns the agent, and a trading agent of another user that follows the analyst opens a position. The
signal agent's own skills, through the gateway: ``signal-feed`` streams the signal with the engine's
outcome, and only the owner may change ``strategy-config``."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.simulator import CLOSE
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.signals.strategy import Strategy, StrategyConfig
from tests.factories import envelope
from tests.trading.engine.network import Network, SignalNode, network, until

HEAD = {"A2A-Version": "1.0"}
UNIT = Decimal("0.00000001")
STRATEGY = StrategyConfig(fast_window=2, slow_window=4, volume_factor=Decimal("0.5"))
MAX_BARS = 400


def _closes(market: ExchangeService) -> list[tuple[str, int, Decimal, Decimal]]:
    """Every bar close the exchange replays from now on: (symbol, simulated ms, close, volume)."""
    seen: list[tuple[str, int, Decimal, Decimal]] = []

    def listen(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        if phase == CLOSE:
            seen.append((symbol, ts_ms, price * UNIT, bar.volume * UNIT))

    market.simulator.add_listener(listen)
    return seen


async def _agent_id(gw: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    """The id of the caller's agent ``name`` once its process registered it at the gateway."""
    async with asyncio.timeout(10):
        while True:
            answer = await gw.get("/api/v1/agents", headers=auth)
            found = [a["id"] for a in answer.json()["data"] if a["name"] == name]
            if found:
                return str(found[0])
            await asyncio.sleep(0.02)


def _params(agent_id: str, skill: str, data: Any) -> dict[str, Any]:
    return {
        "message": {
            "messageId": f"m-{skill}-{id(data)}",
            "role": "ROLE_USER",
            "parts": [{"data": data, "mediaType": "application/json"}],
        },
        "metadata": {"agentId": agent_id, "skillId": skill},
    }


async def _call(net: Network, auth: dict[str, str], agent_id: str, skill: str, data: Any) -> dict[str, Any]:
    """A blocking call through the gateway: the task it ended in."""
    answer = await net.gw.post(
        "/a2a", json=envelope("SendMessage", _params(agent_id, skill, data)), headers={**HEAD, **auth}
    )
    task: dict[str, Any] = answer.json()["result"]["task"]
    return task


def _text(task: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in task["status"].get("message", {}).get("parts", []))


class FeedFollower:
    """The ``signal-feed`` subscription through the gateway, as the analyst, in the background."""

    def __init__(self, net: Network, node: SignalNode, agent_id: str) -> None:
        self.net, self.node, self.agent_id = net, node, agent_id
        self.opened = asyncio.Event()
        self.views: list[dict[str, Any]] = []
        self.task_id = ""
        self.running = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        body = envelope("SendStreamingMessage", _params(self.agent_id, "signal-feed", {}))
        headers = {**HEAD, **self.node.auth}
        async with self.net.gw.stream("POST", "/a2a", json=body, headers=headers) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                result = orjson.loads(line[6:])["result"]
                snapshot = result.get("task") or result.get("statusUpdate") or {}
                self.task_id = self.task_id or result.get("task", {}).get("id", "")
                if snapshot.get("status", {}).get("state") == "TASK_STATE_WORKING":
                    self.opened.set()
                update = result.get("artifactUpdate")
                if update is not None:
                    self.views.append(update["artifact"]["parts"][0]["data"])

    async def cancel(self) -> dict[str, Any]:
        """Cancel the subscription at the gateway: the task's final state."""
        canceled = await self.net.gw.post(
            "/a2a", json=envelope("CancelTask", {"id": self.task_id}), headers={**HEAD, **self.node.auth}
        )
        self.running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.running
        status: dict[str, Any] = canceled.json()["result"]["status"]
        return status


async def test_a_crossover_at_the_exchange_reaches_the_engine_through_the_gateway_and_opens_a_position(
    tmp_path: Path,
) -> None:
    async with network(tmp_path, signals=STRATEGY) as net:
        node = net.signals
        assert node is not None
        # A trading agent of the network's owner, following the analyst's signals.
        agent = await net.trading_agent({"signals": {"sources": [f"user:{node.owner_id}"]}})
        engine_id = await _agent_id(net.gw, net.auth, "Trading Engine")
        signals_id = await _agent_id(net.gw, node.auth, "Signal Agent")
        follower = FeedFollower(net, node, signals_id)
        async with asyncio.timeout(5):
            await follower.opened.wait()
        await until(lambda: node.feed.connected)

        # Step the replay one bar close at a time until the strategy buys.
        seen = _closes(net.market)
        buys: list[dict[str, Any]] = []
        for _ in range(MAX_BARS):
            net.market.simulator.advance(1)
            await until(lambda: node.service.bars >= len(seen))
            buys = [v for v in node.service.recent() if v["signal"]["signalType"] == "buy"]
            if buys:
                break
        assert buys, f"no buy in {MAX_BARS} bars"
        seq = buys[0]["seq"]

        def entry() -> dict[str, Any]:
            return next(v for v in node.service.recent() if v["seq"] == seq)

        await until(lambda: entry()["status"] != "pending")
        bought = entry()
        assert bought["status"] == "delivered", bought
        [record] = bought["outcome"]["executions"]
        assert (record["agentId"], record["status"]) == (agent["id"], "EXECUTED"), record
        token = bought["signal"]["tokenAddress"]
        assert token == net.token_of(bought["signal"]["symbol"])
        positions = (await net.api.get("/api/v1/agent-positions", headers=net.auth)).json()
        assert [(p["agentId"], p["tokenAddress"]) for p in positions] == [(agent["id"], token)]

        # It went through the gateway: the analyst's signal-intake task, routed to the engine.
        task_id = bought["outcome"]["taskId"]
        async with asyncio.timeout(10):
            while True:
                read = await net.gw.get(f"/api/v1/tasks/{task_id}", headers=node.auth)
                if read.status_code == 200 and read.json()["data"]["status"] == "completed":
                    break
                await asyncio.sleep(0.02)
        task = read.json()["data"]
        assert (task["assignedAgentId"], task["routing"]["skillId"]) == (engine_id, "signal-intake")

        # The signals are the strategy's on the bars the exchange replayed, volumes included.
        offline = Strategy(STRATEGY)
        expected = []
        for symbol, ts_ms, close, volume in seen:
            signal = offline.on_bar(symbol, net.token_of(symbol), close, volume, ts_ms)
            if signal is not None:
                expected.append((symbol, signal.signal_type, signal.strength, ts_ms, signal.volume))
        emitted = [
            (
                v["signal"]["symbol"],
                v["signal"]["signalType"],
                v["signal"]["signalStrength"],
                v["bar"]["timestamp"],
            )
            for v in node.service.recent()
        ]
        assert emitted == [e[:4] for e in expected]
        assert [v["bar"]["volume"] for v in node.service.recent()] == [e[4] for e in expected]

        # The feed streamed each signal with its outcome, the buy with its execution.
        await until(lambda: any(v["seq"] == seq for v in follower.views))
        streamed = next(v for v in follower.views if v["seq"] == seq)
        assert streamed["status"] == "delivered"
        assert streamed["outcome"]["executions"][0]["status"] == "EXECUTED"
        assert streamed["signal"] == bought["signal"]
        assert (await follower.cancel())["state"] == "TASK_STATE_CANCELED"


async def test_anyone_reads_the_strategy_and_only_its_owner_changes_it_through_the_gateway(
    tmp_path: Path,
) -> None:
    async with network(tmp_path, signals=STRATEGY) as net:
        node = net.signals
        assert node is not None
        signals_id = await _agent_id(net.gw, node.auth, "Signal Agent")
        read = await _call(net, net.auth, signals_id, "strategy-config", {})
        assert read["status"]["state"] == "TASK_STATE_COMPLETED", read["status"]
        view = read["artifacts"][-1]["parts"][0]["data"]
        assert view["strategy"] == "ma-crossover"
        assert view["config"] == {
            "fastWindow": 2,
            "slowWindow": 4,
            "volumeFactor": 0.5,
            "cooldownBars": 0,
            "symbols": [],
            "minStrength": 1,
        }
        # Another user (the network's owner) may read it, not change it.
        refused = await _call(net, net.auth, signals_id, "strategy-config", {"cooldownBars": 3})
        assert refused["status"]["state"] == "TASK_STATE_REJECTED"
        assert _text(refused).startswith("PERMISSION_DENIED: ")
        assert node.service.config == STRATEGY
        # The owner may, with a valid document.
        bad = await _call(net, node.auth, signals_id, "strategy-config", {"fastWindow": 9, "speed": 1})
        assert bad["status"]["state"] == "TASK_STATE_REJECTED"
        assert _text(bad) == "INVALID_CONFIG: speed: unknown field"
        bad = await _call(net, node.auth, signals_id, "strategy-config", {"fastWindow": 9})
        assert _text(bad) == "INVALID_CONFIG: fastWindow: must be less than slowWindow (4)"
        changed = await _call(
            net, node.auth, signals_id, "strategy-config", {"cooldownBars": 3, "symbols": ["btc"]}
        )
        assert changed["status"]["state"] == "TASK_STATE_COMPLETED", changed["status"]
        config = changed["artifacts"][-1]["parts"][0]["data"]["config"]
        assert (config["cooldownBars"], config["symbols"], config["fastWindow"]) == (3, ["BTC"], 2)
        assert node.service.config == replace(STRATEGY, cooldown_bars=3, symbols=("BTC",))
