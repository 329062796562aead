"""Accounts and orders: balance checks and what open orders hold, the portfolio view, cancels,
clientOrderId idempotency, and the errors a malformed or unknown request raises."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents_examples.trading.exchange.engine import (
    AccountExists,
    AccountNotFound,
    ClientOrderIdConflict,
    Exchange,
    InvalidOrder,
    OrderNotFound,
    OrderNotOpen,
    OrderRequest,
    OrderStatus,
    UnknownSymbol,
)
from tests.trading.exchange.engine_helpers import FLAT, MINUTE, T0, bar, flat, limit, market


def _exchange(cash: str = "1000") -> Exchange:
    exchange = Exchange(FLAT)
    exchange.open_account("a", Decimal(cash))
    exchange.on_bar("BTC", flat(T0, "100"))
    return exchange


def test_a_new_account_starts_with_the_sandbox_default_of_100000_usd() -> None:
    exchange = Exchange()
    exchange.open_account("a")
    p = exchange.portfolio("a")
    assert p["totalValue"] == p["cash"] == Decimal(100_000)
    assert p["positions"] == []
    assert p["balances"] == {"USD": {"free": Decimal(100_000), "used": Decimal(0), "total": Decimal(100_000)}}
    with pytest.raises(AccountExists):
        exchange.open_account("a")


def test_a_buy_costing_more_than_the_free_cash_is_rejected_and_recorded() -> None:
    exchange = _exchange("1000")
    order = exchange.place("a", market("BTC", "buy", "10.00000001"), T0)
    v = exchange.order_view(order)
    assert (v["status"], v["reason"]) == ("rejected", "INSUFFICIENT_BALANCE")
    assert v["filled"] == 0 and v["trades"] == []
    assert exchange.orders("a", "rejected") == [order]
    assert exchange.place("a", market("BTC", "buy", "10"), T0).status is OrderStatus.CLOSED
    assert exchange.portfolio("a")["cash"] == 0


def test_the_fee_counts_toward_the_balance_check() -> None:
    exchange = Exchange()  # 0.1% fee, 10 bps slippage
    exchange.open_account("a", Decimal("1002"))
    exchange.on_bar("BTC", flat(T0, "100", volume="1000000"))
    # 10 BTC at 100.1 (+ 1e-6 impact: 100.10001) = 1001.0001, fee 1.0010001: 1002.0011001 > 1002
    refused = exchange.place("a", market("BTC", "buy", "10"), T0)
    assert refused.reason == "INSUFFICIENT_BALANCE"


def test_open_buy_orders_hold_cash_so_it_cannot_be_spent_twice() -> None:
    exchange = _exchange("1000")
    exchange.place("a", limit("BTC", "buy", "6", "99"), T0)  # holds 594
    refused = exchange.place("a", limit("BTC", "buy", "5", "99"), T0)  # 495 > 406 free
    assert refused.reason == "INSUFFICIENT_BALANCE"
    assert exchange.place("a", limit("BTC", "buy", "4", "99"), T0).status is OrderStatus.OPEN


def test_selling_more_than_is_held_free_is_rejected() -> None:
    exchange = _exchange("1000")
    nothing = exchange.place("a", market("BTC", "sell", "1"), T0)
    assert nothing.reason == "INSUFFICIENT_BALANCE"
    exchange.place("a", market("BTC", "buy", "3"), T0)
    exchange.place("a", limit("BTC", "sell", "2", "110"), T0)  # holds 2 BTC
    assert exchange.place("a", market("BTC", "sell", "1.00000001"), T0).reason == "INSUFFICIENT_BALANCE"
    assert exchange.place("a", market("BTC", "sell", "1"), T0).status is OrderStatus.CLOSED
    assert exchange.portfolio("a")["balances"]["BTC"] == {
        "free": Decimal(0),
        "used": Decimal(2),
        "total": Decimal(2),
    }


def test_canceling_an_open_order_releases_what_it_held_and_keeps_its_fills() -> None:
    exchange = _exchange("10000")
    order = exchange.place("a", limit("BTC", "buy", "15", "99"), T0)
    exchange.replay_bar("BTC", bar(T0 + MINUTE, "100", "100", "98", "99"))  # fills 10 of 15
    canceled = exchange.cancel("a", order.id, T0 + 2 * MINUTE)
    v = exchange.order_view(canceled)
    assert (v["status"], v["reason"], v["filled"], v["remaining"]) == ("canceled", "CANCELED", 10, 0)
    assert v["lastUpdateTimestamp"] == T0 + 2 * MINUTE
    assert exchange.portfolio("a")["balances"]["USD"] == {
        "free": Decimal(9010),
        "used": Decimal(0),
        "total": Decimal(9010),
    }
    with pytest.raises(OrderNotOpen):
        exchange.cancel("a", order.id, T0 + 2 * MINUTE)
    with pytest.raises(OrderNotFound):
        exchange.cancel("a", "ord_999", T0)
    # A canceled order is out of the book: the next crossing bar fills nothing
    exchange.replay_bar("BTC", bar(T0 + 3 * MINUTE, "100", "100", "90", "95"))
    assert exchange.order(canceled.account_id, canceled.id).filled == 10 * 10**8


def test_the_portfolio_values_positions_at_the_last_price_and_adds_up() -> None:
    exchange = Exchange()  # fees and slippage on
    exchange.open_account("a", Decimal(100_000))
    exchange.on_bar("BTC", flat(T0, "50000", volume="100"))
    exchange.on_bar("ETH", flat(T0, "2000", volume="1000"))
    exchange.place("a", market("BTC", "buy", "1"), T0)  # 50,100 + 50.1
    exchange.place("a", market("ETH", "buy", "10"), T0)  # 2000 x 1.002 = 2004 each: 20,040 + 20.04
    exchange.place("a", market("ETH", "sell", "4"), T0)  # 2000 x 0.9986 = 1997.2 each: 7988.8 - 7.9888
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "51000"))
    p = exchange.portfolio("a")
    btc, eth = p["positions"]
    assert btc["symbol"] == "BTC" and eth["symbol"] == "ETH"
    assert btc["quantity"] == 1 and btc["currentPrice"] == 51_000 and btc["value"] == 51_000
    assert btc["averageEntryPrice"] == 50_100
    assert btc["costBasis"] == Decimal("50150.1")
    assert btc["unrealizedPnl"] == Decimal("849.9")
    assert eth["quantity"] == 6 and eth["averageEntryPrice"] == 2004
    assert eth["costBasis"] == Decimal("12036.024")  # 6/10 of 20,060.04
    assert eth["realizedPnl"] == Decimal("7980.8112") - Decimal("8024.016")
    start = Decimal(100_000)
    assert p["totalValue"] == p["cash"] + p["positionsValue"]
    assert p["totalValue"] - start == p["realizedPnl"] + p["unrealizedPnl"]
    assert p["feesPaid"] == Decimal("50.1") + Decimal("20.04") + Decimal("7.9888")
    assert p["balances"]["ETH"]["total"] == 6


def test_a_client_order_id_makes_placing_idempotent() -> None:
    exchange = _exchange("1000")
    first = exchange.place("a", limit("BTC", "buy", "1", "99", cid="mine-1"), T0)
    again = exchange.place("a", limit("BTC", "buy", "1", "99", cid="mine-1"), T0 + 5)
    assert again is first
    assert len(exchange.orders("a")) == 1
    assert exchange.portfolio("a")["balances"]["USD"]["used"] == 99  # held once
    with pytest.raises(ClientOrderIdConflict) as conflict:
        exchange.place("a", limit("BTC", "buy", "2", "99", cid="mine-1"), T0)
    assert conflict.value.code == "CLIENT_ORDER_ID_CONFLICT"
    # the same id is free in another account
    exchange.open_account("b", Decimal(1000))
    assert exchange.place("b", limit("BTC", "buy", "2", "99", cid="mine-1"), T0).id != first.id


def test_a_retried_market_order_fills_once_and_a_retried_rejection_stays_rejected() -> None:
    exchange = _exchange("1000")
    order = exchange.place("a", market("BTC", "buy", "2", cid="m"), T0)
    assert exchange.place("a", market("BTC", "buy", "2", cid="m"), T0) is order
    assert len(exchange.trades("a")) == 1
    refused = exchange.place("a", market("BTC", "buy", "100", cid="big"), T0)
    assert exchange.place("a", market("BTC", "buy", "100", cid="big"), T0) is refused
    assert refused.reason == "INSUFFICIENT_BALANCE"


def test_the_order_view_has_the_ccxt_fields() -> None:
    exchange = _exchange("1000")
    order = exchange.place("a", limit("BTC", "buy", "1", "99", cid="c1"), T0)
    v = exchange.order_view(order)
    assert set(v) >= {
        "id",
        "clientOrderId",
        "timestamp",
        "symbol",
        "type",
        "side",
        "price",
        "average",
        "amount",
        "filled",
        "remaining",
        "cost",
        "status",
        "fee",
        "trades",
    }
    assert (v["clientOrderId"], v["type"], v["side"], v["price"], v["average"]) == (
        "c1",
        "limit",
        "buy",
        99,
        None,
    )
    assert str(v["price"]) == "99" and str(v["remaining"]) == "1"  # plain JSON numbers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"side": "long"}, "side"),
        ({"type": "stop"}, "type"),
        ({"quantity": "0"}, "positive"),
        ({"quantity": "-1"}, "positive"),
        ({"quantity": "0.000000001"}, "decimal places"),
        ({"quantity": "NaN"}, "finite"),
        ({"quantity": True}, "number"),
        ({"quantity": "lots"}, "number"),
        ({"price": None}, "price"),
        ({"type": "market", "price": "10"}, "no price"),
        ({"client_order_id": ""}, "clientOrderId"),
        ({"client_order_id": "x" * 65}, "clientOrderId"),
    ],
)
def test_malformed_orders_raise_invalid_order(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "symbol": "BTC",
        "side": "buy",
        "type": "limit",
        "quantity": "1",
        "price": "1",
    }
    fields.update(kwargs)
    with pytest.raises(InvalidOrder, match=message):
        OrderRequest.create(**fields)  # type: ignore[arg-type]


def test_a_json_float_quantity_is_taken_as_the_client_wrote_it() -> None:
    request = OrderRequest.create("BTC", "buy", "market", 0.01)
    assert request.amount == 1_000_000


def test_unknown_accounts_symbols_and_orders_raise() -> None:
    exchange = _exchange()
    with pytest.raises(AccountNotFound):
        exchange.place("nobody", market("BTC", "buy", "1"), T0)
    with pytest.raises(UnknownSymbol) as unknown:
        exchange.place("a", market("DOGE", "buy", "1"), T0)
    assert unknown.value.code == "UNKNOWN_SYMBOL"
    with pytest.raises(OrderNotFound):
        exchange.order("a", "ord_404")
    assert exchange.orders("a") == []


def test_orders_and_trades_are_listed_in_order_and_by_status() -> None:
    exchange = _exchange("10000")
    a = exchange.place("a", market("BTC", "buy", "1"), T0)
    b = exchange.place("a", limit("BTC", "buy", "1", "90"), T0)
    c = exchange.place("a", market("BTC", "buy", "1000"), T0)
    assert exchange.orders("a") == [a, b, c]
    assert exchange.orders("a", OrderStatus.OPEN) == [b]
    assert exchange.orders("a", "closed") == [a]
    assert [t.order_id for t in exchange.trades("a")] == [a.id]
    assert exchange.trade_view(exchange.trades("a")[0])["fee"]["currency"] == "USD"
