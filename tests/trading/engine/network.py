"""A whole trading network on real loopback servers for the engine's end-to-end tests.

A gateway, the paper exchange (synthetic seeded bars, replay stepped by the test) registered at it by
its owner, and the trading engine registered by its own process (the kit's registrar, with the owner's
``nex_`` key), trading through the gateway with that key. The engine's price feed follows the
exchange's ``order-updates`` subscription through the gateway.

With ``signals`` (a strategy config) the network also runs the signal agent, owned by another user (an
analyst): registered by its own process with the analyst's key, following the exchange's prices through
the gateway with a sandbox account of its own, and sending its signals to the engine's
``signal-intake`` through the gateway as the analyst.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from a2a_gateway.app import create_gateway_app
from agents_examples.trading.engine.agent import create_engine_app, deliver, feed_keys
from agents_examples.trading.engine.exchange_link import ExchangeLink, PriceFeed
from agents_examples.trading.engine.sandbox import SandboxAccounts
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from agents_examples.trading.gateway_client import GatewayClient
from agents_examples.trading.signals.agent import FeedAccount, Owner, create_signals_app
from agents_examples.trading.signals.service import INTAKE_TIMEOUT_SECONDS, EngineIntake, SignalService
from agents_examples.trading.signals.strategy import Strategy, StrategyConfig
from tests.conftest import LiveServer, free_port, make_settings

PASSWORD = "long enough"
OWNER_SCOPES = ["agents:read", "agents:write", "tasks:read", "tasks:write", "keys:read", "keys:write"]


async def login(client: httpx.AsyncClient, email: str) -> str:
    """Register ``email`` at the gateway (if new) and log in: the access token."""
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    answer = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["data"]["accessToken"]
    return token


async def user_key(client: httpx.AsyncClient, token: str, scopes: list[str] | None = None) -> str:
    """A new ``nex_`` key of the user ``token`` is for."""
    answer = await client.post(
        "/api/v1/api-keys",
        json={"name": "engine", "scopes": scopes or OWNER_SCOPES},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["data"]["key"]
    return key


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``condition()`` holds (polling a real process's state; fails after ``seconds``)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


@dataclass
class SignalNode:
    """The signal agent of a network and its owner, the analyst."""

    server: LiveServer
    service: SignalService
    feed: PriceFeed
    token: str
    key: str
    owner_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Network:
    gateway: LiveServer
    exchange: LiveServer
    engine: LiveServer
    market: ExchangeService
    service: EngineService
    feed: PriceFeed
    gw: httpx.AsyncClient
    api: httpx.AsyncClient
    token: str
    owner_key: str
    exchange_agent_id: str
    gateway_app: Starlette
    exchange_auth: dict[str, str]
    signals: SignalNode | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def trading_agent(
        self, config: dict[str, Any] | None = None, starting: float = 1000, **fields: Any
    ) -> dict[str, Any]:
        """A new trading agent of the owner with a fresh sandbox wallet funded with ``starting``."""
        created = await self.api.post("/api/v1/agents", json={"name": "bot one", **fields}, headers=self.auth)
        assert created.status_code == 201, created.text
        agent: dict[str, Any] = created.json()
        if config is not None:
            put = await self.api.put(f"/api/v1/agents/{agent['id']}/config", json=config, headers=self.auth)
            assert put.status_code == 200, put.text
        wallet = await self.api.post("/api/v1/wallets", json={"label": "sandbox"}, headers=self.auth)
        assert wallet.status_code == 201, wallet.text
        address = wallet.json()["walletAddress"]
        assigned = await self.api.post(
            "/api/v1/wallets/assign",
            json={"agentId": agent["id"], "walletAddress": address, "startingBalance": starting},
            headers=self.auth,
        )
        assert assigned.status_code == 200, assigned.text
        return agent

    def token_of(self, symbol: str) -> str:
        return next(x.token_address for x in self.service.trader.listings.values() if x.symbol == symbol)


@asynccontextmanager
async def network(
    tmp_path: Path, *, seed: int = 7, exchange_price: int = 0, signals: StrategyConfig | None = None
) -> AsyncIterator[Network]:
    """The network; with ``exchange_price`` the exchange charges that per call (set before any call, as
    the gateway caches an agent's routing for a few seconds) and the owner is granted 100 credits; with
    ``signals`` the signal agent runs that strategy (the module doc)."""
    gw_port, ex_port, en_port = free_port(), free_port(), free_port()
    gateway_app = create_gateway_app(make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{gw_port}"))
    gateway = LiveServer(gateway_app, gw_port)
    await gateway.start()
    market = ExchangeService(AccountStore(tmp_path / "exchange"), load_market_data(use_real=False, seed=seed))
    market.simulator.advance(30)
    exchange = LiveServer(
        create_exchange_app(
            market,
            make_settings(tmp_path / "exchange", public_url=f"http://127.0.0.1:{ex_port}"),
            paced=False,
        ),
        ex_port,
    )
    await exchange.start()
    servers = [gateway, exchange]
    clients: list[httpx.AsyncClient] = []
    try:
        gw = httpx.AsyncClient(base_url=gateway.url, timeout=15)
        clients.append(gw)
        token = await login(gw, "owner@example.com")
        owner_key = await user_key(gw, token)
        # The exchange is another user's agent: the engine's owner is its customer.
        operator = await login(gw, "exchange-operator@example.com")
        exchange_auth = {"Authorization": f"Bearer {operator}"}
        registered = await gw.post("/api/v1/agents", json={"cardUrl": exchange.url}, headers=exchange_auth)
        assert registered.status_code == 201, registered.text
        exchange_agent_id = registered.json()["data"]["id"]
        if exchange_price:
            priced = await gw.patch(
                f"/api/v1/agents/{exchange_agent_id}",
                json={"pricePerTask": exchange_price},
                headers=exchange_auth,
            )
            assert priced.status_code == 200, priced.text
            me = await gw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            await gateway_app.state.billing.grant(me.json()["data"]["id"], 100, "test")

        outbound = httpx.AsyncClient(timeout=15)
        clients.append(outbound)
        link = ExchangeLink(outbound, gateway.url, lambda: owner_key, exchange_agent_id=exchange_agent_id)
        service = EngineService(
            EngineStore(tmp_path / "engine"), link, sandbox=SandboxAccounts(outbound, exchange.url)
        )
        feed = PriceFeed(link, feed_keys(service), lambda ticks: deliver(service, ticks), backoff=(0.05,))
        settings = make_settings(
            tmp_path / "engine",
            public_url=f"http://127.0.0.1:{en_port}",
            gateway_url=gateway.url,
            gateway_key=owner_key,
        )
        app = create_engine_app(service, settings, feed=feed, forwarder_client=outbound)
        engine = LiveServer(app, en_port)
        await engine.start()
        servers.append(engine)
        api = httpx.AsyncClient(base_url=engine.url, timeout=15)
        clients.append(api)
        await until(lambda: bool(service.trader.listings))
        node = None
        if signals is not None:
            node = await _signal_agent(tmp_path, gw, outbound, exchange.url, exchange_agent_id, signals)
            servers.append(node.server)
        yield Network(
            gateway,
            exchange,
            engine,
            market,
            service,
            feed,
            gw,
            api,
            token,
            owner_key,
            exchange_agent_id,
            gateway_app,
            exchange_auth,
            node,
        )
    finally:
        for server in reversed(servers):
            await server.stop()
        for client in reversed(clients):
            await client.aclose()


async def _signal_agent(
    tmp_path: Path,
    gw: httpx.AsyncClient,
    outbound: httpx.AsyncClient,
    exchange_url: str,
    exchange_agent_id: str,
    config: StrategyConfig,
) -> SignalNode:
    """The analyst's signal agent, started (its feed opens its sandbox account and subscribes)."""
    token = await login(gw, "analyst@example.com")
    key = await user_key(gw, token)
    me = await gw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    owner_id: str = me.json()["data"]["id"]
    base = str(gw.base_url).rstrip("/")
    intake = EngineIntake(GatewayClient(outbound, base, lambda: key, timeout=INTAKE_TIMEOUT_SECONDS))
    service = SignalService(Strategy(config), intake)
    account = FeedAccount(opener=SandboxAccounts(outbound, exchange_url))
    link = ExchangeLink(outbound, base, lambda: key, exchange_agent_id=exchange_agent_id)
    feed = PriceFeed(link, account.keys, service.on_ticks, backoff=(0.05,))
    port = free_port()
    settings = make_settings(
        tmp_path / "signals", public_url=f"http://127.0.0.1:{port}", gateway_url=base, gateway_key=key
    )
    app = create_signals_app(
        service, settings, owner=Owner(GatewayClient(outbound, base, lambda: key)), feed=feed, account=account
    )
    server = LiveServer(app, port)
    await server.start()
    return SignalNode(server, service, feed, token, key, owner_id)
