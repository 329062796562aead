"""The exchange's skills through a gateway running in process: the exchange registers itself with the
gateway (POST /api/v1/agents {cardUrl} with the owner's key) and requires the gateway; orders are
placed, refused and replayed through the gateway's routing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from a2a_gateway.billing.service import BillingService
from agents_examples.trading.exchange.service import ExchangeService
from tests.api.test_self_registration import Router
from tests.conftest import make_settings
from tests.factories import envelope
from tests.trading.exchange.skill_helpers import (
    ALL,
    HOST,
    artifact_data,
    auth,
    exchange_app,
    message,
    order_string,
    signed_order,
    state,
    status_text,
)

PUBLIC = "93.184.216.34"


async def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC] if host in ("gw.test", HOST) else []


@dataclass
class Routed:
    gw: httpx.AsyncClient
    direct: httpx.AsyncClient
    service: ExchangeService
    agent_id: str
    user_id: str
    billing: BillingService

    async def register(self, **extra: Any) -> dict[str, Any]:
        body = {"name": "bot", "permissions": ALL, **extra}
        response = await self.direct.post("/v1/agent/register", json=body)
        assert response.status_code == 201, response.text
        agent: dict[str, Any] = response.json()["agent"]
        return agent

    async def call(self, skill: str, data: Any) -> dict[str, Any]:
        params = {"message": message(data), "metadata": {"agentId": self.agent_id, "skillId": skill}}
        answer = await self.gw.post(
            "/a2a", json=envelope("SendMessage", params), headers={"A2A-Version": "1.0"}
        )
        doc = answer.json()
        assert "result" in doc, doc
        task: dict[str, Any] = doc["result"]["task"]
        return task


@asynccontextmanager
async def routed(tmp_path: Path) -> AsyncIterator[Routed]:
    router = Router()
    gateway = create_gateway_app(
        make_settings(tmp_path / "gw", public_url="http://gw.test", outbound_allowlist=[]),
        outbound_transport=router,
        resolver=resolver,
    )
    router.apps["gw.test"] = gateway
    async with LifespanManager(gateway), httpx.AsyncClient(transport=router, base_url="http://gw.test") as gw:
        credentials = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "long enough"}
        await gw.post("/api/v1/auth/register", json=credentials)
        login = (await gw.post("/api/v1/auth/login", json=credentials)).json()["data"]
        gw.headers["Authorization"] = f"Bearer {login['accessToken']}"
        scopes = ["agents:read", "agents:write", "keys:write"]
        created = await gw.post("/api/v1/api-keys", json={"name": "exchange", "scopes": scopes})
        key = created.json()["data"]["key"]
        app, service = exchange_app(
            tmp_path,
            settings={
                "gateway_url": "http://gw.test",
                "gateway_key": key,
                "require_gateway": True,
                "outbound_allowlist": [],
            },
            outbound_transport=router,
            resolver=resolver,
        )
        router.apps[HOST] = app
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=router, base_url=f"http://{HOST}") as direct,
        ):
            async with asyncio.timeout(5):
                while not (agents := (await gw.get("/api/v1/agents")).json()["data"]):
                    await asyncio.sleep(0.02)
            yield Routed(gw, direct, service, agents[0]["id"], login["user"]["id"], gateway.state.billing)


async def test_an_order_through_the_gateway_fills_for_the_signing_account_and_names_the_caller(
    tmp_path: Path,
) -> None:
    async with routed(tmp_path) as ex:
        agent = await ex.register()
        order = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
        task = await ex.call("place-order", signed_order(agent, order))
        assert state(task) == "TASK_STATE_COMPLETED", task
        placed = artifact_data(task)["order"]
        assert placed["status"] == "closed"
        assert [o.id for o in ex.service.engine.orders(agent["id"])] == [placed["orderId"]]
        caller = task["artifacts"][-1]["metadata"]["caller"]
        assert caller["viaGateway"] is True and caller["user"] == ex.user_id
        market = await ex.call("market-data", {"coins": "ETH"})
        assert [d["symbol"] for d in artifact_data(market)["data"]] == ["ETH"]


async def test_a_refused_order_through_the_gateway_ends_rejected_with_its_code(tmp_path: Path) -> None:
    async with routed(tmp_path) as ex:
        agent = await ex.register(maxPositionSize=10)
        order = order_string(symbol="BTC", side="buy", type="market", quantity=1)
        task = await ex.call("place-order", signed_order(agent, order))
        assert state(task) == "TASK_STATE_REJECTED", task
        assert status_text(task).startswith("MAX_POSITION_SIZE: "), status_text(task)
        assert [o.status.value for o in ex.service.engine.orders(agent["id"])] == ["rejected"]


async def test_an_order_replayed_or_tampered_through_the_gateway_is_refused(tmp_path: Path) -> None:
    async with routed(tmp_path) as ex:
        agent = await ex.register()
        order = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
        signed = signed_order(agent, order)
        tampered = await ex.call("place-order", dict(signed, order=order.replace('"buy"', '"sell"')))
        assert state(tampered) == "TASK_STATE_REJECTED"
        assert status_text(tampered) == "INVALID_SIGNATURE: Invalid request signature"
        assert state(await ex.call("place-order", signed)) == "TASK_STATE_COMPLETED"
        replayed = await ex.call("place-order", signed)
        assert state(replayed) == "TASK_STATE_REJECTED"
        assert status_text(replayed) == "INVALID_SIGNATURE: Replayed request"
        assert len(ex.service.engine.orders(agent["id"])) == 1


async def test_a_refused_paid_order_gives_the_buyer_its_credits_back_and_counts_neither_way(
    tmp_path: Path,
) -> None:
    """The exchange charges 5 credits a call; another gateway user's order is refused by a breaker: the
    task ends rejected, the hold is released, and trust records it as not counted."""
    async with routed(tmp_path) as ex:
        priced = await ex.gw.patch(f"/api/v1/agents/{ex.agent_id}", json={"pricePerTask": 5})
        assert priced.status_code == 200, priced.text
        credentials = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "long enough"}
        await ex.gw.post("/api/v1/auth/register", json=credentials)
        login = (await ex.gw.post("/api/v1/auth/login", json=credentials)).json()["data"]
        buyer = {"Authorization": f"Bearer {login['accessToken']}"}
        await ex.billing.grant(login["user"]["id"], 20, "test")
        agent = await ex.register(maxPositionSize=10)
        order = order_string(symbol="BTC", side="buy", type="market", quantity=1)
        params = {
            "message": message(signed_order(agent, order)),
            "metadata": {"agentId": ex.agent_id, "skillId": "place-order"},
        }
        answer = await ex.gw.post(
            "/a2a", json=envelope("SendMessage", params), headers={"A2A-Version": "1.0", **buyer}
        )
        task = answer.json()["result"]["task"]
        assert state(task) == "TASK_STATE_REJECTED" and status_text(task).startswith("MAX_POSITION_SIZE")
        balance = (await ex.gw.get("/api/v1/billing/balance", headers=buyer)).json()["data"]
        assert balance["available"] == 20 and balance["held"] == 0 and balance["total_spent"] == 0
        async with asyncio.timeout(5):
            while not (
                events := (await ex.gw.get(f"/api/v1/trust/{ex.agent_id}")).json()["data"]["recentEvents"]
            ):
                await asyncio.sleep(0.02)
        assert [(e["taskId"], e["counted"]) for e in events] == [(task["id"], False)]
        assert events[0]["eventType"] == "task_not_counted"
        # The call is priced: an order that goes through costs the buyer its 5 credits.
        small = order_string(symbol="BTC", side="buy", type="market", quantity=0.0001)
        params["message"] = message(signed_order(agent, small))
        answer = await ex.gw.post(
            "/a2a", json=envelope("SendMessage", params), headers={"A2A-Version": "1.0", **buyer}
        )
        assert state(answer.json()["result"]["task"]) == "TASK_STATE_COMPLETED", answer.text
        paid = (await ex.gw.get("/api/v1/billing/balance", headers=buyer)).json()["data"]
        assert paid["available"] == 15 and paid["total_spent"] == 5
        assert (await ex.billing.check()).ok


async def test_portfolio_and_cancel_order_work_through_the_gateway(tmp_path: Path) -> None:
    async with routed(tmp_path) as ex:
        agent = await ex.register()
        resting = order_string(symbol="BTC", side="buy", type="limit", quantity=0.01, price=1)
        placed = await ex.call("place-order", signed_order(agent, resting))
        order_id = artifact_data(placed)["order"]["orderId"]
        assert artifact_data(placed)["order"]["status"] == "open"
        portfolio = await ex.call("portfolio", {"auth": auth(agent, "GET", "/portfolio")})
        assert state(portfolio) == "TASK_STATE_COMPLETED", portfolio
        assert artifact_data(portfolio)["data"]["cash"] == ex.service.engine.portfolio(agent["id"])["cash"]
        path = f"/orders/{order_id}"
        canceled = await ex.call("cancel-order", {"orderId": order_id, "auth": auth(agent, "DELETE", path)})
        assert state(canceled) == "TASK_STATE_COMPLETED", canceled
        assert artifact_data(canceled)["order"]["status"] == "canceled"
        assert [o.status.value for o in ex.service.engine.orders(agent["id"])] == ["canceled"]
