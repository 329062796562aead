"""Accounting properties over arbitrary order flows (hypothesis): money moves only through trades, nothing
is created or lost beyond fees and the exchange's rounding, balances never go below what is held."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents_examples.trading.exchange.engine import (
    Exchange,
    FillConfig,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from agents_examples.trading.exchange.market.bars import QTY_SCALE, Bar
from tests.trading.exchange.engine_helpers import MINUTE, T0

ACCOUNTS = ("a", "b", "c")
START = Decimal(5_000)
CENT = 10**6  # price units

# (account, market?, buy?, quantity in 1e-8 BTC, limit offset in cents from the last price)
order_flow = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.booleans(),
        st.booleans(),
        st.integers(1, 3 * QTY_SCALE),
        st.integers(-200, 200),
    ),
    max_size=12,
)
# per bar: (open, close, down wick, up wick) in cents around 100 USD, volume in whole BTC
bar_moves = st.tuples(
    st.integers(9_000, 11_000),
    st.integers(9_000, 11_000),
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(0, 40),
)


def _bar(i: int, move: tuple[int, int, int, int, int], span: int = MINUTE) -> Bar:
    open_, close, down, up, volume = move
    high, low = max(open_, close) + up, min(open_, close) - down
    return Bar(T0 + i * span, span, open_ * CENT, high * CENT, low * CENT, close * CENT, volume * QTY_SCALE)


def _place(exchange: Exchange, flow: list[tuple[str, bool, bool, int, int]], now: int) -> None:
    price = exchange.price("BTC")
    assert price is not None
    for account, is_market, buy, amount, offset in flow:
        side = Side.BUY if buy else Side.SELL
        if is_market:
            request = OrderRequest("BTC", side, OrderType.MARKET, amount)
        else:
            request = OrderRequest("BTC", side, OrderType.LIMIT, amount, max(CENT, price + offset * CENT))
        exchange.place(account, request, now)


def _check_books(exchange: Exchange) -> None:
    collected = Decimal(0)
    for account in ACCOUNTS:
        p = exchange.portfolio(account)
        trades = exchange.trades(account)
        views = [exchange.trade_view(t) for t in trades]
        spent = sum((v["cost"] + v["fee"]["cost"] for v in views if v["side"] == "buy"), Decimal(0))
        received = sum((v["cost"] - v["fee"]["cost"] for v in views if v["side"] == "sell"), Decimal(0))
        fees = sum((v["fee"]["cost"] for v in views), Decimal(0))
        bought = sum(t.amount for t in trades if t.side is Side.BUY)
        sold = sum(t.amount for t in trades if t.side is Side.SELL)
        # cash moves only through trades
        assert p["cash"] == START - spent + received
        assert p["feesPaid"] == fees
        collected += fees
        btc = p["balances"].get("BTC", {"free": Decimal(0), "used": Decimal(0), "total": Decimal(0)})
        assert btc["total"] * QTY_SCALE == bought - sold
        # what open orders hold is exactly what the balances show as used, and never more than there is
        open_orders = exchange.orders(account, OrderStatus.OPEN)
        held_cash = sum(o.reserved for o in open_orders if o.side is Side.BUY)
        held_btc = sum(o.amount - o.filled for o in open_orders if o.side is Side.SELL)
        assert p["balances"]["USD"]["used"] * 10**8 == held_cash
        assert btc["used"] * QTY_SCALE == held_btc
        assert p["balances"]["USD"]["free"] >= 0 and btc["free"] >= 0
        # the value splits exactly into the start, realized and unrealized P/L
        assert p["totalValue"] == p["cash"] + p["positionsValue"]
        assert p["totalValue"] - START == p["realizedPnl"] + p["unrealizedPnl"]
        # every order's totals are the sums of its trades
        for order in exchange.orders(account):
            assert order.filled == sum(t.amount for t in order.trades) <= order.amount
            assert order.cost == sum(t.cost for t in order.trades)
            assert order.fee == sum(t.fee for t in order.trades)
    assert collected * 10**8 == exchange.fees_collected


def _exchange(config: FillConfig | None = None) -> Exchange:
    exchange = Exchange(config)
    for account in ACCOUNTS:
        exchange.open_account(account, START)
    return exchange


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(bar_moves, order_flow), min_size=1, max_size=25))
def test_money_moves_only_through_trades_and_the_books_always_balance(
    steps: list[tuple[tuple[int, int, int, int, int], list[tuple[str, bool, bool, int, int]]]],
) -> None:
    exchange = _exchange()
    for i, (move, flow) in enumerate(steps):
        bar = _bar(i, move, span=5 * MINUTE)  # orders time out after two bars
        exchange.replay_bar("BTC", bar)
        _place(exchange, flow, bar.ts_ms + bar.span_ms - 1)
        _check_books(exchange)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 10**6 * 10**8),  # any price from 1e-8 to 1,000,000 USD
    st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("0.0037")]),
    st.lists(order_flow, min_size=1, max_size=8),
)
def test_at_a_fixed_price_nothing_is_made_or_lost_beyond_fees_and_sub_unit_rounding(
    price: int, fee_rate: Decimal, flows: list[list[tuple[str, bool, bool, int, int]]]
) -> None:
    config = FillConfig(fee_rate=fee_rate, slippage_bps=Decimal(0), impact_coefficient=Decimal(0))
    exchange = _exchange(config)
    start_units = int(START) * 10**8
    for i, flow in enumerate(flows):
        bar = Bar(T0 + i * MINUTE, MINUTE, price, price, price, price, 1000 * QTY_SCALE)
        exchange.replay_bar("BTC", bar)
        _place(exchange, [(a, m, b, q, 0) for a, m, b, q, _ in flow], bar.ts_ms + MINUTE - 1)
    for account in ACCOUNTS:
        p = exchange.portfolio(account)
        filled_orders = sum(1 for o in exchange.orders(account) if o.trades)
        held = sum(t.amount if t.side is Side.BUY else -t.amount for t in exchange.trades(account))
        # in 1e-16 USD: cash, fees and the holding at the exact price, against the start
        kept = (int(p["cash"] * 10**8) + int(p["feesPaid"] * 10**8)) * QTY_SCALE + held * price
        lost = start_units * QTY_SCALE - kept
        assert 0 <= lost < max(1, filled_orders) * QTY_SCALE  # under 1e-8 USD per order, never a gain
        if not filled_orders:
            assert lost == 0
