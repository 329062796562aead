"""The order-updates subscription through the gateway's routing, on real servers (a subscription streams
without end, which the in-process transport cannot carry): the signing account's order and fill arrive
on the caller's stream, and canceling the gateway's task ends the exchange's subscription."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from a2a_gateway.app import create_gateway_app
from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from tests.api.test_registry import user
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import envelope
from tests.trading.exchange.skill_helpers import ALL, auth, message, order_string, signed_order

HEAD = {"A2A-Version": "1.0"}


async def test_order_updates_stream_through_the_gateway_until_canceled(tmp_path: Path) -> None:
    service = ExchangeService(AccountStore(tmp_path / "exchange"), load_market_data(use_real=False, seed=7))
    service.simulator.advance(30)
    port = free_port()
    settings = make_settings(tmp_path / "exchange", public_url=f"http://127.0.0.1:{port}")
    app = create_exchange_app(service, settings, paced=False)
    exchange = LiveServer(app, port)
    await exchange.start()
    gw_port = free_port()
    gateway = LiveServer(
        create_gateway_app(make_settings(tmp_path / "gw", public_url=f"http://127.0.0.1:{gw_port}")), gw_port
    )
    await gateway.start()
    try:
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as gw,
            httpx.AsyncClient(base_url=exchange.url, timeout=10) as direct,
        ):
            owner = await user(gw, "owner@example.com")
            created = await gw.post("/api/v1/agents", json={"cardUrl": exchange.url}, headers=owner)
            assert created.status_code == 201, created.text
            agent_id = created.json()["data"]["id"]
            registered = await direct.post("/v1/agent/register", json={"name": "bot", "permissions": ALL})
            account = registered.json()["agent"]

            def params(skill: str, data: Any) -> dict[str, Any]:
                return {"message": message(data), "metadata": {"agentId": agent_id, "skillId": skill}}

            body = envelope(
                "SendStreamingMessage",
                params("order-updates", {"auth": auth(account, "GET", "/order-updates")}),
            )
            task_id, kinds = "", set()
            async with asyncio.timeout(10), gw.stream("POST", "/a2a", json=body, headers=HEAD) as stream:
                ordered = False
                async for line in stream.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    result = orjson.loads(line[6:])["result"]
                    task_id = task_id or result.get("task", {}).get("id", "")
                    if not ordered and app.state.skills.hub.count == 1:
                        ordered = True
                        order = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
                        placed = await gw.post(
                            "/a2a",
                            json=envelope("SendMessage", params("place-order", signed_order(account, order))),
                            headers=HEAD,
                        )
                        assert placed.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
                    update = result.get("artifactUpdate")
                    if update is not None:
                        kinds.add(update["artifact"]["parts"][0]["data"]["type"])
                    if {"order", "fill"} <= kinds:
                        break
            canceled = await gw.post("/a2a", json=envelope("CancelTask", {"id": task_id}), headers=HEAD)
            assert canceled.json()["result"]["status"]["state"] == "TASK_STATE_CANCELED", canceled.text
            async with asyncio.timeout(5):
                while app.state.skills.hub.count:
                    await asyncio.sleep(0.01)
    finally:
        await gateway.stop()
        await exchange.stop()
