"""Orders, breakers, sentiment, the social feed and restarts through a real server."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.trading.exchange.api_helpers import Running, running_exchange


async def _order(ex: Running, key: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await ex.client.post(f"{ex.url}/orders", json=body, headers={"X-NX-Key": key})
    doc: dict[str, Any] = response.json()
    return response.status_code, doc


def _btc(ex: Running) -> Decimal:
    price = ex.service.engine.price("BTC")
    assert price is not None
    return Decimal(price).scaleb(-8)


async def test_the_daily_loss_limit_at_its_limit_and_just_past_it(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        # a resting buy risks its fee: 1 BTC at 100 costs 100, fee 0.1% = 0.1
        at = await ex.register(dailyLossLimit="0.1")
        past = await ex.register(dailyLossLimit="0.09999999")
        status, doc = await _order(
            ex, at["apiKey"], symbol="BTC", side="buy", type="limit", quantity=1, price=100
        )
        assert (status, doc["order"]["status"]) == (201, "open")
        status, doc = await _order(
            ex, past["apiKey"], symbol="BTC", side="buy", type="limit", quantity=1, price=100
        )
        assert (status, doc["error"]["code"], doc["order"]["status"]) == (422, "DAILY_LOSS_LIMIT", "rejected")


async def test_a_breach_halts_buys_and_sells_for_the_rest_of_the_day(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        agent = await ex.register(dailyLossLimit=2)
        key = agent["apiKey"]
        status, _ = await _order(ex, key, symbol="BTC", side="buy", type="market", quantity=0.01)
        assert status == 201
        for _ in range(5000):
            if ex.service.engine.portfolio(agent["id"])["limits"]["halted"]:
                break
            ex.service.simulator.advance(1)
        response = await ex.client.get(f"{ex.url}/portfolio", headers={"X-NX-Key": key})
        limits = response.json()["data"]["limits"]
        assert limits["halted"] and limits["haltedUntil"] > ex.service.now_ms
        for side in ("sell", "buy"):
            status, doc = await _order(ex, key, symbol="BTC", side=side, type="market", quantity=0.001)
            assert (status, doc["error"]["code"]) == (422, "DAILY_LOSS_LIMIT"), side


async def test_the_position_cap_at_the_cap_and_just_past_it(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        price = _btc(ex)
        at = await ex.register(maxPositionSize=str(price))  # 1 BTC at the last price: at the cap
        status, doc = await _order(
            ex, at["apiKey"], symbol="BTC", side="buy", type="limit", quantity=1, price=100
        )
        assert (status, doc["order"]["status"]) == (201, "open")
        status, doc = await _order(
            ex, at["apiKey"], symbol="BTC", side="buy", type="limit", quantity=0.00000001, price=100
        )
        assert (status, doc["error"]["code"]) == (422, "MAX_POSITION_SIZE")


async def test_insufficient_balance_and_the_order_lifecycle(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        agent = await ex.register()
        key = agent["apiKey"]
        headers = {"X-NX-Key": key}
        status, doc = await _order(ex, key, symbol="ETH", side="sell", type="market", quantity=1)
        assert (status, doc["error"]["code"]) == (422, "INSUFFICIENT_BALANCE")
        status, doc = await _order(
            ex, key, symbol="bitcoin", side="buy", type="limit", quantity=0.5, price=100, clientOrderId="c1"
        )
        assert status == 201
        order = doc["order"]
        assert order["symbol"] == "BTC" and order["amount"] == 0.5 and order["remaining"] == 0.5
        assert order["orderId"] == order["id"] and order["clientOrderId"] == "c1"
        again = await _order(
            ex, key, symbol="BTC", side="buy", type="limit", quantity=0.5, price=100, clientOrderId="c1"
        )
        assert again[1]["order"]["orderId"] == order["orderId"]  # idempotent
        conflict = await _order(
            ex, key, symbol="BTC", side="buy", type="limit", quantity=0.6, price=100, clientOrderId="c1"
        )
        assert (conflict[0], conflict[1]["error"]["code"]) == (409, "CLIENT_ORDER_ID_CONFLICT")
        got = (await ex.client.get(f"{ex.url}/orders/{order['orderId']}", headers=headers)).json()["order"]
        assert got["status"] == "open"
        listed = (await ex.client.get(f"{ex.url}/orders?status=open", headers=headers)).json()["data"]
        assert [o["orderId"] for o in listed] == [order["orderId"]]
        canceled = await ex.client.delete(f"{ex.url}/orders/{order['orderId']}", headers=headers)
        assert canceled.status_code == 200 and canceled.json()["order"]["status"] == "canceled"
        twice = await ex.client.delete(f"{ex.url}/orders/{order['orderId']}", headers=headers)
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "ORDER_NOT_OPEN")
        status, doc = await _order(ex, key, symbol="BTC", side="buy", type="market", quantity=0.01)
        trades = (await ex.client.get(f"{ex.url}/trades", headers=headers)).json()["data"]
        assert [t["order"] for t in trades] == [doc["order"]["orderId"]]
        assert Decimal(str(trades[0]["amount"])) == Decimal("0.01")


async def test_sentiment_is_the_rsi_of_the_replayed_closes(tmp_path: Path) -> None:
    async with running_exchange(tmp_path, bars=200) as ex:
        agent = await ex.register()
        response = await ex.client.get(f"{ex.url}/sentiment?coins=BTC", headers={"X-NX-Key": agent["apiKey"]})
        [row] = response.json()["data"]
        closes = ex.service.closes("BTC")
        assert len(closes) == 15 == row["bars"]
        changes = [b - a for a, b in itertools.pairwise(closes)]
        gains = sum(c for c in changes if c > 0)
        losses = -sum(c for c in changes if c < 0)
        rsi = (Decimal(100) * gains / (gains + losses)).quantize(Decimal("0.0001"))
        assert Decimal(str(row["rsi"])) == rsi
        assert Decimal(str(row["score"])) == ((rsi - 50) / 50).quantize(Decimal("0.0001"))
        assert "RSI" in response.json()["meta"]["method"]


async def test_the_social_feed_shows_fills_of_accounts_that_opted_in_only(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        public = await ex.register(social=True, name="public-bot")
        private = await ex.register()
        await _order(ex, private["apiKey"], symbol="ETH", side="buy", type="market", quantity=0.1)
        await _order(ex, public["apiKey"], symbol="BTC", side="buy", type="market", quantity=0.01)
        feed = (await ex.client.get(f"{ex.url}/social", headers={"X-NX-Key": private["apiKey"]})).json()[
            "data"
        ]
        assert [(f["agent"], f["symbol"], f["amount"]) for f in feed] == [("public-bot", "BTC", 0.01)]


async def test_a_restart_keeps_accounts_orders_and_balances(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        agent = await ex.register("live")
        await _order(ex, agent["apiKey"], symbol="BTC", side="buy", type="market", quantity=0.01)
        before = ex.service.engine.portfolio(agent["id"])
        now = ex.service.now_ms
    async with running_exchange(tmp_path, bars=0) as ex:
        assert ex.service.now_ms == now
        assert ex.service.engine.portfolio(agent["id"]) == before
        record = ex.service.by_key(agent["apiKey"])
        assert record is not None and record.secret == agent["apiSecret"]
    stored = (tmp_path / "exchange" / "exchange.sqlite3").read_bytes()
    assert agent["apiSecret"].encode() not in stored and agent["apiKey"].encode() not in stored
