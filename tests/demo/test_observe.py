"""The demo's live view reads the network over HTTP: what it reports, what it leaves out, how it renders.

The engine's and the gateway's answers come from an httpx MockTransport standing in for both (their
real shapes are covered by the engine's and the gateway's own tests and by the demo test on real
sockets); each test drives the observer's polls the way the view does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from agents_examples.demo.accounts import Account
from agents_examples.demo.network import ANALYST, OPERATOR, TRADER, Network, Node
from agents_examples.demo.observe import Observer
from agents_examples.demo.view import render, status_line

ENGINE = "http://127.0.0.1:9003"
GATEWAY = "http://127.0.0.1:9000"


def _network() -> Network:
    accounts = {}
    for role in (TRADER, OPERATOR, ANALYST):
        keys = (f"nex_agent_{role.name}", f"nex_view_{role.name}")
        accounts[role.name] = Account(role, f"user-{role.name}", "token", *keys, Path(f"/srv/{role.name}"))
    network = Network(GATEWAY, accounts)
    for name, offset in (("exchange", 2), ("engine", 3), ("signals", 4)):
        network.nodes[name] = Node(name, f"http://127.0.0.1:{9000 + offset}", f"id-{name}")
    network.trading_agents = {"Bold Boris": "agent-b"}
    return network


class World:
    """The answers both servers give now; tests change them between polls."""

    def __init__(self) -> None:
        self.signals: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.swaps: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.balances = {"trader": (5000, 0), "operator": (5000, 0), "analyst": (5000, 0)}
        self.tasks = 10
        self.down: set[str] = set()
        self.seen_keys: list[tuple[str, str | None]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen_keys.append((path, request.headers.get("X-API-Key")))
        if path in self.down:
            return httpx.Response(503, json={"error": "down"})
        if request.url.host == "127.0.0.1" and request.url.port == 9003:
            body = {
                "/api/v1/price-feeds": [{"symbol": "SOL", "price": 9.86}, {"symbol": "BTC", "price": None}],
                "/api/v1/agent-positions": self.positions,
                "/api/v1/agent-transactions": self.orders,
                "/api/v1/agent-historical-swaps": self.swaps,
                "/api/v1/trading-signals": self.signals,
            }[path]
            return httpx.Response(200, json=body)
        if path == "/metrics":
            text = (
                f'a2a_tasks{{state="TASK_STATE_COMPLETED"}} {self.tasks}.0\n'
                'a2a_tasks{state="TASK_STATE_WORKING"} 2.0\n'
            )
            return httpx.Response(200, text=text)
        if path == "/api/v1/discover":
            data = [{"id": "id-exchange", "trustScore": 55.5}, {"id": "someone-else", "trustScore": 1.0}]
            return httpx.Response(200, json={"data": data})
        if path == "/api/v1/billing/balance":
            role = request.headers["X-API-Key"].removeprefix("nex_view_")
            available, held = self.balances[role]
            return httpx.Response(200, json={"data": {"available": available, "held": held}})
        return httpx.Response(404)


def _observer(world: World) -> Observer:
    transport = httpx.MockTransport(world.handle)
    engine = httpx.AsyncClient(transport=transport, base_url=ENGINE + "/api/v1")
    return Observer(httpx.AsyncClient(transport=transport, base_url=GATEWAY), _network(), engine=engine)


BUY = {"id": "t1", "agentId": "agent-b", "side": "buy", "outputAmount": 9.98, "outputSymbol": "SOL",
       "outputPrice": 10.0363, "inputAmount": 100.26}  # fmt: skip
SWAP = {"id": "s1", "agentId": "agent-b", "tokenSymbol": "SOL", "closeReason": "stop_loss", "partial": False,
        "profitLossUsd": -1.44, "changePercent": -1.24}  # fmt: skip
SIGNAL = {"id": 7, "symbol": "SOL", "signalType": "buy", "signalStrength": 3}


def test_records_from_before_the_first_poll_are_not_news_and_later_ones_are_each_reported_once() -> None:
    world = World()
    world.signals = [{"id": 1, "symbol": "SOL", "signalType": "sell", "signalStrength": 1}]

    async def scenario() -> None:
        observer = _observer(world)
        first = await observer.poll()
        assert first.events == [] and first.counts == {"signal": 0, "order": 0, "closed": 0}
        world.signals = [SIGNAL, *world.signals]  # newest first, as the engine lists them
        world.orders = [BUY]
        world.swaps = [SWAP]
        second = await observer.poll()
        assert [e.kind for e in second.events] == ["order", "closed", "signal"]
        texts = [e.text for e in second.events]
        assert texts[0] == (
            "order   Bold Boris bought 9.98 SOL at 10.0363 for 100.26 USD: engine -> gateway -> exchange"
        )
        assert texts[1] == "closed  Bold Boris SOL (stop_loss): P/L -1.44 USD (-1.24 %)"
        assert texts[2] == "signal  SOL buy strength 3: the signal agent -> gateway -> engine"
        third = await observer.poll()
        assert third.events == [] and third.counts == {"signal": 1, "order": 1, "closed": 1}
        await observer.aclose()

    asyncio.run(scenario())


def test_credits_move_against_the_first_poll_tasks_are_counted_and_trust_is_ours_only() -> None:
    world = World()

    async def scenario() -> None:
        observer = _observer(world)
        await observer.poll()
        world.balances = {"trader": (4990, 4), "operator": (5008, 0), "analyst": (4998, 0)}
        world.tasks = 30
        snap = await observer.poll()
        assert {r: (c.available, c.held, c.change) for r, c in snap.credits.items()} == {
            "trader": (4990, 4, -6),
            "operator": (5008, 0, 8),
            "analyst": (4998, 0, -2),
        }
        assert snap.tasks_total == 32 and snap.tasks_per_second > 0
        assert snap.trust == {"exchange": 55.5}
        assert snap.prices == {"SOL": 9.86}
        line = status_line(snap)
        assert "32 gateway tasks" in line and "trader 4,990 (-6)" in line and "exchange 55.50" in line
        await observer.aclose()

    asyncio.run(scenario())
    # Each user's balance is read with that user's own read-only key; the signals with the analyst's.
    assert ("/api/v1/trading-signals", "nex_view_analyst") in world.seen_keys
    assert ("/api/v1/agent-positions", "nex_view_trader") in world.seen_keys
    assert {k for p, k in world.seen_keys if p == "/api/v1/billing/balance"} == {
        "nex_view_trader", "nex_view_operator", "nex_view_analyst"
    }  # fmt: skip


def test_a_source_that_does_not_answer_keeps_its_last_values_and_is_named() -> None:
    world = World()
    world.positions = [{"agentId": "agent-b", "tokenSymbol": "SOL", "remainingAmount": 9.98,
                        "purchasePrice": 10.03, "currentPrice": 9.9, "profitLossSol": -1.3,
                        "profitLossPercent": -1.2}]  # fmt: skip

    async def scenario() -> None:
        observer = _observer(world)
        await observer.poll()
        world.down = {"/api/v1/agent-positions", "/metrics"}
        world.positions = []
        snap = await observer.poll()
        assert sorted(snap.stale) == ["metrics", "positions"]
        assert [p["agentName"] for p in snap.positions] == ["Bold Boris"]
        console = Console(record=True, width=160)
        console.print(render(_network(), snap, deque(["15:00:00 signal  SOL buy"]), 75))
        screen = console.export_text()
        assert "up 01:15" in screen and "not answering: positions, metrics" in screen
        assert "Bold Boris" in screen and "-1.30" in screen and "15:00:00 signal  SOL buy" in screen
        assert "trader (demo user)" in screen and "55.50" in screen
        await observer.aclose()

    asyncio.run(scenario())


def test_records_there_before_a_source_first_answers_are_not_news_even_when_it_answers_late() -> None:
    world = World()
    world.orders = [BUY]
    world.down = {"/api/v1/agent-transactions"}

    async def scenario() -> None:
        observer = _observer(world)
        assert (await observer.poll()).stale == ["orders"]
        world.down = set()
        late = await observer.poll()  # its first answer: the order was there before, so not news
        assert late.events == [] and late.counts["order"] == 0
        world.orders = [{**BUY, "id": "t2", "side": "sell", "inputAmount": 9.98, "inputSymbol": "SOL",
                         "inputPrice": 9.9, "outputAmount": 98.8}, BUY]  # fmt: skip
        [sold] = (await observer.poll()).events
        assert sold.text.startswith("order   Bold Boris sold 9.98 SOL at 9.9 for 98.80 USD")
        await observer.aclose()

    asyncio.run(scenario())
