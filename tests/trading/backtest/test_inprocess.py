"""The engine's exchange port over an exchange in the same process: the network's answers, no network."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from agents_examples.trading.backtest.inprocess import InProcessExchange, UnknownKey
from agents_examples.trading.engine.exchange_link import WalletKeys
from agents_examples.trading.exchange.api.routes import AgentConnectApi
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore


@pytest.fixture
def port(tmp_path: Path) -> Iterator[tuple[InProcessExchange, WalletKeys]]:
    service = ExchangeService(AccountStore(tmp_path), load_market_data(use_real=False, seed=5))
    service.simulator.advance(40)
    keys = service.register("port test", ["read:portfolio", "write:orders"], "sandbox")
    yield InProcessExchange(service), WalletKeys(keys.api_key, keys.account.secret)
    service.store.close()


async def test_listings_are_what_get_market_lists(port: tuple[InProcessExchange, WalletKeys]) -> None:
    exchange, _ = port
    listings = await exchange.listings()
    market = AgentConnectApi(exchange.service).market_doc(None)["data"]
    assert [(x.symbol, x.token_address, x.name, x.quote) for x in listings] == [
        (e["symbol"], e["tokenAddress"], e["name"], e["quote"]) for e in market
    ]
    assert [x.price for x in listings] == [e["price"] for e in market]


async def test_a_market_buy_fills_at_the_exchanges_price_with_its_fee(
    port: tuple[InProcessExchange, WalletKeys],
) -> None:
    exchange, keys = port
    order = {"symbol": "BTC", "side": "buy", "type": "market", "quantity": "0.01", "clientOrderId": "c1"}
    outcome = await exchange.place_order(keys, order)
    assert outcome.accepted and outcome.status == "closed"
    assert outcome.filled == Decimal("0.01")
    price = Decimal(exchange.service.simulator.price("BTC")).scaleb(-8)
    assert outcome.average is not None and outcome.average > price  # slippage and impact against a buyer
    assert outcome.fee > 0 and outcome.order_id is not None
    trades = exchange.service.engine.trades(exchange.account_id(keys))
    again = await exchange.place_order(keys, order)  # the same clientOrderId: the same order, not a second
    assert again.order_id == outcome.order_id
    assert exchange.service.engine.trades(exchange.account_id(keys)) == trades != []
    portfolio = await exchange.portfolio(keys)
    assert portfolio["cash"] == Decimal(100_000) - outcome.cost - outcome.fee


async def test_refusals_carry_the_exchanges_codes(port: tuple[InProcessExchange, WalletKeys]) -> None:
    exchange, keys = port
    too_big = await exchange.place_order(
        keys, {"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1000}
    )
    assert not too_big.accepted
    assert too_big.code in {"INSUFFICIENT_BALANCE", "PRICE_IMPACT_TOO_HIGH"}
    assert too_big.order is not None and too_big.order["status"] == "rejected"
    unknown = await exchange.place_order(
        keys, {"symbol": "DOGE", "side": "buy", "type": "market", "quantity": 1}
    )
    assert (unknown.accepted, unknown.code) == (False, "UNKNOWN_INSTRUMENT")
    bad = await exchange.place_order(keys, {"symbol": "BTC", "side": "buy", "type": "market"})
    assert (bad.accepted, bad.code) == (False, "INVALID_REQUEST")
    with pytest.raises(UnknownKey):
        await exchange.portfolio(WalletKeys("nx_test_unknown", "secret"))
