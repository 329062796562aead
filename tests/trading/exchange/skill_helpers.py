"""The exchange's kit agent in process for the skill tests: synthetic seeded market data, no paced
replay (tests step the simulator), A2A 1.0 JSON-RPC calls with signed auth objects."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.auth.signing import sign
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.skills import ExchangeSkills
from agents_examples.trading.exchange.store import AccountStore
from tests.conftest import make_settings
from tests.factories import envelope

ALL = ["read:market", "read:portfolio", "write:orders", "read:sentiment", "read:social", "write:webhook"]
HOST = "exchange.test"


def exchange_app(
    tmp_path: Path, seed: int = 7, bars: int = 30, **kit: Any
) -> tuple[Starlette, ExchangeService]:
    market = load_market_data(use_real=False, seed=seed)
    service = ExchangeService(AccountStore(tmp_path / "exchange"), market)
    service.simulator.advance(bars)
    settings = make_settings(tmp_path / "exchange", public_url=f"http://{HOST}", **kit.pop("settings", {}))
    return create_exchange_app(service, settings, paced=False, **kit), service


def auth(
    agent: dict[str, Any], method: str, path: str, body: str = "", *, now_ms: int | None = None
) -> dict[str, str]:
    """The auth object of one A2A call, signed with the account's secret."""
    timestamp = str(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    return {
        "apiKey": agent["apiKey"],
        "timestamp": timestamp,
        "signature": sign(agent["apiSecret"], timestamp, method, path, body),
    }


def order_string(**fields: Any) -> str:
    """An order as the exact JSON string that is signed and sent."""
    return json.dumps({"clientOrderId": uuid.uuid4().hex, **fields})


def signed_order(agent: dict[str, Any], order: str) -> dict[str, Any]:
    return {"order": order, "auth": auth(agent, "POST", "/orders", order)}


def message(data: Any = None, text: str | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if data is not None:
        parts.append({"data": data, "mediaType": "application/json"})
    if text is not None:
        parts.append({"text": text})
    return {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": parts}


@dataclass
class Exchange:
    app: Starlette
    service: ExchangeService
    client: httpx.AsyncClient

    @property
    def skills(self) -> ExchangeSkills:
        found: ExchangeSkills = self.app.state.skills
        return found

    async def register(self, permissions: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        body = {"name": "bot", "permissions": ALL if permissions is None else permissions, **extra}
        response = await self.client.post("/v1/agent/register", json=body)
        assert response.status_code == 201, response.text
        agent: dict[str, Any] = response.json()["agent"]
        return agent

    async def call(
        self, skill: str, data: Any = None, text: str | None = None, **config: Any
    ) -> dict[str, Any]:
        """SendMessage to ``skill``; the task."""
        params: dict[str, Any] = {"message": message(data, text), "metadata": {"skillId": skill}}
        if config:
            params["configuration"] = config
        answer = await self.client.post(
            "/a2a", json=envelope("SendMessage", params), headers={"A2A-Version": "1.0"}
        )
        doc = answer.json()
        assert "result" in doc, doc
        task: dict[str, Any] = doc["result"]["task"]
        return task

    async def rpc(self, method: str, params: Any) -> dict[str, Any]:
        answer = await self.client.post("/a2a", json=envelope(method, params), headers={"A2A-Version": "1.0"})
        doc: dict[str, Any] = answer.json()
        return doc


@asynccontextmanager
async def exchange(tmp_path: Path, **options: Any) -> AsyncIterator[Exchange]:
    app, service = exchange_app(tmp_path, **options)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}") as client,
    ):
        yield Exchange(app, service, client)


def state(task: dict[str, Any]) -> str:
    found: str = task["status"]["state"]
    return found


def status_text(task: dict[str, Any]) -> str:
    parts = task["status"].get("message", {}).get("parts", [])
    return "".join(p.get("text", "") for p in parts)


def artifact_data(task: dict[str, Any]) -> Any:
    return task["artifacts"][-1]["parts"][0]["data"]
