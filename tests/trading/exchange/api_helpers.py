"""A real exchange process's app on a loopback port for the API tests: synthetic, seeded market data,
no paced replay (tests step the simulator), a registration token for live accounts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from tests.conftest import LiveServer, free_port, make_settings

TOKEN = "operator-token-for-tests"
ALL = ["read:market", "read:portfolio", "write:orders", "read:sentiment", "read:social", "write:webhook"]


@dataclass
class Running:
    service: ExchangeService
    url: str  # the API's base URL (…/v1/agent)
    root: str
    client: httpx.AsyncClient

    async def register(
        self, mode: str = "sandbox", permissions: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        headers = {"X-NX-Registration-Token": TOKEN} if mode == "live" else {}
        body = {
            "name": f"bot-{mode}",
            "permissions": ALL if permissions is None else permissions,
            "mode": mode,
            **extra,
        }
        response = await self.client.post(f"{self.url}/register", json=body, headers=headers)
        assert response.status_code == 201, response.text
        agent: dict[str, Any] = response.json()["agent"]
        return agent


@asynccontextmanager
async def running_exchange(tmp_path: Path, seed: int = 7, bars: int = 30) -> AsyncIterator[Running]:
    market = load_market_data(use_real=False, seed=seed)
    service = ExchangeService(AccountStore(tmp_path / "exchange"), market, registration_token=TOKEN)
    service.simulator.advance(bars)
    port = free_port()
    settings = make_settings(tmp_path / "exchange", public_url=f"http://127.0.0.1:{port}")
    server = LiveServer(create_exchange_app(service, settings, paced=False), port)
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            yield Running(service, f"{server.url}/v1/agent", server.url, client)
    finally:
        await server.stop()


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking client code (``requests``) off the event loop the server runs on."""
    return await asyncio.to_thread(fn, *args)
