"""What the engine's REST API tests share: an in-memory exchange, a fake gateway auth, the app and client.

The exchange lists three tokens at known prices and fills every market order whole at the current
price with a 0.1 % fee, stamped with its own simulated clock; every wallet's portfolio holds 100,000
of cash. The auth maps ``Authorization: Bearer t-<user>`` to a login session of ``<user>`` and
``X-API-Key: nex_<user>`` to a ``nex_`` key of ``<user>``, so no gateway is needed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import Mount

from a2a_gateway.agent import Caller
from a2a_gateway.errors import Unauthenticated
from agents_examples.trading.engine.api.forward import GatewayForwarder
from agents_examples.trading.engine.api.routes import EngineApi
from agents_examples.trading.engine.exchange_link import Listing, OrderOutcome, WalletKeys
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore

SOL = "So11111111111111111111111111111111111111112"
TKN = "TokenAddr1111111111111111111111111111111111"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
PRICES = {"SOL": Decimal("150"), "TKN": Decimal("2"), "BONK": Decimal("0.00002")}
ADDRESSES = {"SOL": SOL, "TKN": TKN, "BONK": BONK}
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, simulated
WALL = 1_780_000_000.0
KEY = "nx_test_0123456789abcdef"
SECRET = "wallet-secret-0123456789"


@dataclass
class FakeExchange:
    """The paper exchange as the trader sees it, in memory."""

    prices: dict[str, Decimal] = field(default_factory=lambda: dict(PRICES))
    clock_ms: int = START_MS
    orders: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def listings(self) -> list[Listing]:
        return [Listing(s, ADDRESSES[s], s, p, "USD") for s, p in self.prices.items()]

    async def portfolio(self, keys: WalletKeys) -> dict[str, Any]:
        return {"data": {"cash": 100000}}

    async def place_order(self, keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome:
        self.orders.append(order)
        price = self.prices[order["symbol"]]
        quantity = Decimal(str(order["quantity"]))
        cost = quantity * price
        self.clock_ms += 1000
        view = {
            "id": f"order-{next(self.ids)}",
            "status": "closed",
            "filled": quantity,
            "average": price,
            "cost": cost,
            "fee": {"cost": cost * Decimal("0.001"), "currency": "USD"},
            "timestamp": self.clock_ms,
        }
        return OrderOutcome(True, None, None, view)


@dataclass(frozen=True)
class FakeCredential:
    caller: Caller
    scopes: frozenset[str] = frozenset()


class FakeAuth:
    """``Bearer t-<user>``: a session of ``<user>``; ``X-API-Key: nex_<user>``: a key of ``<user>``."""

    async def credential(self, conn: HTTPConnection) -> FakeCredential:
        bearer = conn.headers.get("authorization", "")
        if bearer.startswith("Bearer t-"):
            user = bearer.removeprefix("Bearer t-")
            return FakeCredential(Caller(user=user, key_kind="session", key_id=f"session-{user}"))
        key = conn.headers.get("x-api-key", "")
        if key.startswith("nex_"):
            user = key.removeprefix("nex_")
            return FakeCredential(Caller(user=user, key_kind="user", key_id=f"key-{user}"))
        raise Unauthenticated("Use 'Authorization: Bearer <token>' or 'X-API-Key: nex_...'")


def session(user: str) -> dict[str, str]:
    """Headers of a login session of ``user``."""
    return {"Authorization": f"Bearer t-{user}"}


def api_key(user: str) -> dict[str, str]:
    """Headers of a ``nex_`` key of ``user``."""
    return {"X-API-Key": f"nex_{user}"}


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Engine:
    """A running API: the service behind it, its exchange, its client and the rate limit's clock."""

    service: EngineService
    exchange: FakeExchange
    api: EngineApi
    client: httpx.AsyncClient
    clock: Clock

    async def agent(self, user: str = "ann", name: str = "Alpha", **fields: Any) -> dict[str, Any]:
        """A new trading agent of ``user``."""
        answer = await self.client.post(
            "/api/v1/agents", json={"name": name, **fields}, headers=session(user)
        )
        assert answer.status_code == 201, answer.text
        doc: dict[str, Any] = answer.json()
        return doc

    async def funded_agent(self, user: str = "ann", name: str = "Alpha", key: str = KEY) -> dict[str, Any]:
        """A new trading agent of ``user`` with a wallet assigned (100,000 of cash)."""
        agent = await self.agent(user, name)
        wallet = await self.client.post(
            "/api/v1/wallets",
            json={"apiKey": key, "apiSecret": SECRET, "label": "paper"},
            headers=session(user),
        )
        assert wallet.status_code == 201, wallet.text
        body = {"agentId": agent["id"], "walletAddress": wallet.json()["address"]}
        assigned = await self.client.post("/api/v1/wallets/assign", json=body, headers=session(user))
        assert assigned.status_code == 200, assigned.text
        doc: dict[str, Any] = assigned.json()["agent"]
        return doc

    async def signal(
        self, user: str = "ann", token: str = TKN, strength: int = 4, **fields: Any
    ) -> httpx.Response:
        """POST a buy signal as ``user``'s session."""
        body = {"tokenAddress": token, "signalType": "buy", "signalStrength": strength, **fields}
        return await self.client.post("/api/v1/trading-signals", json=body, headers=session(user))


@contextlib.asynccontextmanager
async def running_engine(
    data_dir: Path,
    *,
    listings: bool = True,
    forwarder: GatewayForwarder | None = None,
    feed_status: Callable[[], dict[str, Any]] | None = None,
    exchange: FakeExchange | None = None,
    **api_options: Any,
) -> AsyncIterator[Engine]:
    """The API over a fresh service, mounted at ``/api/v1`` of a Starlette app, with a client."""
    exchange = exchange or FakeExchange()
    service = EngineService(EngineStore(data_dir), exchange, wall=lambda: WALL)
    if listings:
        await service.trader.refresh_listings()
    clock = Clock()
    api = EngineApi(
        service, FakeAuth(), forwarder, version="9.9.9", feed_status=feed_status, clock=clock, **api_options
    )
    app = Starlette(routes=[Mount("/api/v1", routes=api.routes())])
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://engine.test") as client:
            yield Engine(service, exchange, api, client, clock)
            await service.trader.drain()
    finally:
        await service.trader.close()
        service.store.close()
