"""The trading network the demo runs: its users, its agent processes, their prices and two trading agents.

Everything goes over HTTP to the gateway and the agents, so the same steps serve the gateway running in
the demo's process and one started elsewhere (``--agents-only``). The order matters:

1. the users (accounts.py) and, where the gateway is ours, their demo credits;
2. the echo agent and the exchange, each registering itself with its owner's key (the kit's registrar);
3. the exchange's prices, set by its operator before anyone calls it (the gateway caches an agent's
   routing for a few seconds, so a price set after the first call would apply late);
4. the trading engine, registered by the trader, then its price, then two trading agents of the trader
   made through the engine's REST API, each with a sandbox wallet at the exchange, following the
   analyst's signals;
5. the signal agent, registered by the analyst, which then follows the exchange's prices and sends its
   signals to the engine: every one of those calls is a gateway task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx

from agents_examples.demo.accounts import Account, Accounts, Role, SetupFailed, answer
from agents_examples.demo.children import Child, spawn

READY_SECONDS: Final = 60.0
CALLER_SCOPES: Final = ("agents:read", "agents:write", "keys:write", "tasks:read", "tasks:write")
TRADER: Final = Role("trader", "demo@example.com", CALLER_SCOPES)
OPERATOR: Final = Role("operator", "exchange@example.com", ("agents:read", "agents:write", "keys:write"))
ANALYST: Final = Role("analyst", "analyst@example.com", CALLER_SCOPES)
ROLES: Final = (TRADER, OPERATOR, ANALYST)

DEMO_CREDITS: Final = 5_000
"""Each user's balance is topped up to this many credits when the demo starts (its own gateway only)."""
EXCHANGE_PRICES: Final = {"place-order": 2, "cancel-order": 1}
ENGINE_PRICES: Final = {"signal-intake": 1}
"""Credits per call of each skill; every other skill of the agents is free (market data above all)."""

PORTS: Final = {"echo": 1, "exchange": 2, "engine": 3, "signals": 4}
"""Each agent's port, as an offset from the gateway's."""
BARS_PER_SECOND: Final = 10.0
STRATEGY_FLAGS: Final = ("--fast", "3", "--slow", "10", "--volume-factor", "0.5", "--cooldown", "10")
DUPLICATE_WINDOW_SECONDS: Final = 10
STARTING_BALANCE: Final = 1000


def _config(analyst_id: str, **blocks: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "signals": {"sources": [f"user:{analyst_id}"]},
        "purchaseLimits": {"maxPurchasePerToken": 150, "minimumAgentBalance": 10},
        "riskLimits": {"maxPositionSize": 150, "dailyLossLimit": 100, "maxDrawdownPercent": 30},
        "staleTrade": {"enabled": True, "minHoldTimeMinutes": 45, "minProfitPercent": 0.05,
                       "maxProfitPercent": 5},
    }  # fmt: skip
    return base | blocks


def trading_agents(analyst_id: str) -> dict[str, dict[str, Any]]:
    """The two trading agents' configs: a careful one and a bold one, both following the analyst."""
    return {
        "Careful Carla": _config(
            analyst_id,
                        positionCalculator={"positionSizes": {"large": {"min": 40, "max": 40}}},
            stopLoss={"enabled": True, "mode": "fixed", "defaultPercentage": -0.4},
            takeProfit={"enabled": True, "mode": "custom", "levels": [
                {"targetPercent": 0.3, "sellPercent": 50}, {"targetPercent": 0.6, "sellPercent": 50}],
                "moonBag": {"enabled": False}},
        ),
        "Bold Boris": _config(
            analyst_id,
            positionCalculator={"positionSizes": {"large": {"min": 100, "max": 100}}},
            stopLoss={"enabled": True, "mode": "custom", "defaultPercentage": -1,
                      "trailingLevels": [{"change": 0.5, "stopLoss": 0.2}, {"change": 1, "stopLoss": 0.6}]},
        ),
    }  # fmt: skip


@dataclass
class Node:
    """One agent of the network: its process (None when not ours), URL and id at the gateway."""

    name: str
    url: str
    agent_id: str = ""
    child: Child | None = None
    started_at: str = ""  # the gateway's clock when the process was started


@dataclass
class Network:
    """The running network, as the view, the banner and ``demo.json`` describe it."""

    gateway_url: str
    accounts: dict[str, Account]
    nodes: dict[str, Node] = field(default_factory=dict)
    trading_agents: dict[str, str] = field(default_factory=dict)  # name -> the engine's agent id
    children: list[Child] = field(default_factory=list)

    @property
    def engine_ws(self) -> str:
        return self.nodes["engine"].url.replace("http://", "ws://", 1) + "/ws"

    def describe(self) -> dict[str, Any]:
        """``demo.json``: what a script needs to use the network."""
        trader = self.accounts[TRADER.name]
        return {
            "gateway": self.gateway_url,
            "agents": {n.name: {"url": n.url, "agentId": n.agent_id} for n in self.nodes.values()},
            "engineWebSocket": self.engine_ws,
            "tradingAgents": self.trading_agents,
            "demoUser": {"email": trader.role.email, "passwordFile": str(trader.password_file)},
            "users": {
                a.role.name: {
                    "email": a.role.email,
                    "userId": a.user_id,
                    "passwordFile": str(a.password_file),
                }
                for a in self.accounts.values()
            },
        }


Grant = Callable[[str, int], Awaitable[None]]


class Launcher:
    """Brings the network up step by step (module doc); ``stopped`` aborts the waits."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        data_dir: Path,
        host: str,
        port: int,
        *,
        stopped: asyncio.Event,
        grant: Grant | None = None,
    ) -> None:
        self._client = client
        self._data_dir = data_dir
        self._host = host
        self._port = port
        self._stopped = stopped
        self._grant = grant
        self.gateway_url = str(client.base_url).rstrip("/")
        self.network: Network | None = None

    def url_of(self, name: str) -> str:
        return f"http://{self._host}:{self._port + PORTS[name]}"

    async def launch(self) -> Network:
        """Every step; the network is kept in ``self.network`` as it grows, so a failure can stop it."""
        accounts = Accounts(self._client, self._data_dir)
        users = {role.name: await accounts.ensure(role) for role in ROLES}
        network = self.network = Network(self.gateway_url, users)
        if self._grant is not None:
            for account in users.values():
                await self._grant(account.user_id, DEMO_CREDITS)
        trader, operator, analyst = users[TRADER.name], users[OPERATOR.name], users[ANALYST.name]
        exchange = await self._start(network, "exchange", operator, "agents_examples.trading.exchange",
                                     ["--bars-per-second", str(BARS_PER_SECOND)])  # fmt: skip
        echo = await self._start(network, "echo", trader, "agents_examples.echo", [])
        await self._registered(network, exchange, operator)
        await set_prices(self._client, operator, exchange.agent_id, EXCHANGE_PRICES)
        engine = await self._start(
            network, "engine", trader, "agents_examples.trading.engine",
            ["--exchange-url", exchange.url, "--exchange-agent-id", exchange.agent_id,
             "--duplicate-window-seconds", str(DUPLICATE_WINDOW_SECONDS)],
        )  # fmt: skip
        await self._registered(network, echo, trader)
        await self._registered(network, engine, trader)
        await set_prices(self._client, trader, engine.agent_id, ENGINE_PRICES)
        await self._until_ready(network, engine)
        for name, config in trading_agents(analyst.user_id).items():
            network.trading_agents[name] = await self._trading_agent(engine.url, trader, name, config)
        signals = await self._start(
            network, "signals", analyst, "agents_examples.trading.signals",
            ["--exchange-url", exchange.url, "--exchange-agent-id", exchange.agent_id,
             "--engine-agent-id", engine.agent_id, *STRATEGY_FLAGS],
        )  # fmt: skip
        await self._registered(network, signals, analyst)
        path = self._data_dir / "demo.json"
        path.write_text(json.dumps(network.describe(), indent=2) + "\n")
        return network

    async def _start(self, network: Network, name: str, owner: Account, module: str, args: list[str]) -> Node:
        url = self.url_of(name)
        started = await self._gateway_time()
        port = str(self._port + PORTS[name])
        data_dir = self._data_dir / (f"{name}-agent" if name == "echo" else name)
        child = await spawn(
            f"{name} agent",
            module,
            ["--host", self._host, "--port", port, "--data-dir", str(data_dir),
             "--gateway-url", self.gateway_url, *args],
            url=url,
            data_dir=data_dir,
            logs=self._data_dir / "logs",
            env={"A2A_GATEWAY_GATEWAY_KEY": owner.agent_key},
        )  # fmt: skip
        network.children.append(child)
        node = Node(name, url, child=child, started_at=started)
        network.nodes[name] = node
        return node

    async def _gateway_time(self) -> str:
        """The gateway's clock now (ISO 8601), so a registration is told apart from a previous run's."""
        now: str = answer(await self._client.get("/api/v1/health"), "the gateway's health")["timestamp"]
        return now

    async def _registered(self, network: Network, node: Node, owner: Account) -> None:
        """Wait until the agent registered itself and sent a heartbeat since it was started; its id."""
        since = _instant(node.started_at)
        endpoint = node.url + "/a2a"
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            self._check(network)
            mine = answer(await self._client.get("/api/v1/agents", headers=owner.view), "listing agents")
            for agent in mine:
                beat = agent.get("lastHeartbeat")
                if agent.get("endpoint") == endpoint and beat and _instant(beat) >= since:
                    node.agent_id = str(agent["id"])
                    return
            await self._pause()
        raise SetupFailed(
            f"the {node.name} agent did not register with the gateway within {READY_SECONDS:.0f} s"
        )

    async def _until_ready(self, network: Network, node: Node) -> None:
        """Wait until the engine knows the exchange's listings (its readiness route)."""
        deadline = time.monotonic() + READY_SECONDS
        async with httpx.AsyncClient(base_url=node.url, timeout=5) as agent:
            while time.monotonic() < deadline:
                self._check(network)
                try:
                    if (await agent.get("/api/v1/health/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await self._pause()
        raise SetupFailed(f"the trading engine did not become ready within {READY_SECONDS:.0f} s")

    async def _trading_agent(
        self, engine_url: str, trader: Account, name: str, config: dict[str, Any]
    ) -> str:
        """The trader's trading agent ``name`` (made the first time) with ``config`` and a funded wallet."""
        async with httpx.AsyncClient(base_url=engine_url + "/api/v1", headers=trader.auth, timeout=15) as api:
            listed = answer(await api.get("/agents", params={"limit": 100}), "listing the trading agents")
            found = next((a for a in listed if a.get("name") == name), None)
            if found is None:
                body = {"name": name, "tradingMode": "simulation"}
                found = answer(
                    await api.post("/agents", json=body), f"creating the trading agent {name}", 201
                )
            agent_id = str(found["id"])
            answer(await api.put(f"/agents/{agent_id}/config", json=config), f"configuring {name}")
            if not found.get("walletAddress"):
                wallet = answer(
                    await api.post("/wallets", json={"label": f"{name} sandbox"}), "opening a wallet", 201
                )
                funding: dict[str, Any] = {"agentId": agent_id, "walletAddress": wallet["walletAddress"],
                                           "startingBalance": STARTING_BALANCE}  # fmt: skip
                answer(await api.post("/wallets/assign", json=funding), f"funding {name}'s wallet")
            return agent_id

    def _check(self, network: Network) -> None:
        if self._stopped.is_set():
            raise asyncio.CancelledError
        for child in network.children:
            if child.exited.done():
                raise SetupFailed(child.failure())

    async def _pause(self) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), 0.1)
        except TimeoutError:
            return


async def set_prices(
    client: httpx.AsyncClient, owner: Account, agent_id: str, prices: dict[str, int]
) -> None:
    """Each skill of the agent at its price in ``prices`` (others free), set by its owner."""
    agent = answer(await client.get(f"/api/v1/agents/{agent_id}", headers=owner.auth), "reading an agent")
    skills = [s | {"price": prices.get(s["id"], 0)} for s in agent["skills"]]
    body: dict[str, Any] = {"skills": skills, "pricePerTask": 0}
    patched = await client.patch(f"/api/v1/agents/{agent_id}", json=body, headers=owner.auth)
    answer(patched, f"pricing the agent {agent['name']}")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
