"""The order-updates subscription: the signing account's events and bar closes as artifacts until
canceled, a bounded queue per subscriber, subscribers removed when canceled or dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agents_examples.trading.exchange import skills as skills_module
from agents_examples.trading.exchange.engine import OrderUpdate
from agents_examples.trading.exchange.skills import UpdatesHub
from tests.trading.exchange.skill_helpers import Exchange, auth, exchange, order_string, signed_order, state


async def _until(ex: Exchange, task_id: str, done: Any) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            doc = await ex.rpc("GetTask", {"id": task_id})
            task: dict[str, Any] = doc["result"]
            if done(task):
                return task
            await asyncio.sleep(0.01)


def _kinds(task: dict[str, Any]) -> list[str]:
    return [a["parts"][0]["data"]["type"] for a in task.get("artifacts", [])]


async def test_order_updates_streams_the_accounts_orders_fills_and_prices_until_canceled(
    tmp_path: Path,
) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        other = await ex.register()
        task = await ex.call(
            "order-updates", {"auth": auth(agent, "GET", "/order-updates")}, returnImmediately=True
        )
        await _until(ex, task["id"], lambda t: state(t) == "TASK_STATE_WORKING")
        assert ex.skills.hub.count == 1
        mine = await ex.call(
            "place-order",
            signed_order(agent, order_string(symbol="BTC", side="buy", type="market", quantity=0.01)),
        )
        await ex.call(
            "place-order",
            signed_order(other, order_string(symbol="ETH", side="buy", type="market", quantity=0.01)),
        )
        ex.service.simulator.advance(1)
        seen = await _until(ex, task["id"], lambda t: "price" in _kinds(t))
        kinds = _kinds(seen)
        assert "fill" in kinds and "order" in kinds, kinds
        orders = [
            a["parts"][0]["data"] for a in seen["artifacts"] if a["parts"][0]["data"]["type"] == "order"
        ]
        placed = mine["artifacts"][-1]["parts"][0]["data"]["order"]["orderId"]
        assert {o["order"]["orderId"] for o in orders} == {placed}  # the other account's order is not here
        canceled = await ex.rpc("CancelTask", {"id": task["id"]})
        assert canceled["result"]["status"]["state"] == "TASK_STATE_CANCELED", canceled
        async with asyncio.timeout(5):
            while ex.skills.hub.count:
                await asyncio.sleep(0.01)


async def test_order_updates_needs_a_valid_signature_and_read_portfolio(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register(permissions=["read:market"])
        denied = await ex.call("order-updates", {"auth": auth(agent, "GET", "/order-updates")})
        assert state(denied) == "TASK_STATE_REJECTED"
        full = await ex.register()
        wrong = await ex.call("order-updates", {"auth": auth(full, "GET", "/portfolio")})
        assert state(wrong) == "TASK_STATE_REJECTED"
        assert ex.skills.hub.count == 0


def test_a_subscriber_that_falls_a_queue_behind_is_dropped_and_removed(monkeypatch: Any) -> None:
    monkeypatch.setattr(skills_module, "QUEUE_SIZE", 3)
    hub = UpdatesHub()
    slow = hub.add("acct")
    keeping = hub.add("acct")
    event = OrderUpdate("acct", 1, {"id": "ord_1", "status": "open"})
    for _ in range(3):
        hub.on_event(event)
    for _ in range(3):
        keeping.queue.get_nowait()
    assert not slow.dropped and hub.count == 2
    hub.on_event(event)
    assert slow.dropped and not keeping.dropped
    assert hub.count == 1
    hub.on_event(event)
    assert slow.queue.qsize() == 3  # nothing more is queued for a dropped subscriber
