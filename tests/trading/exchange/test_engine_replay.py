"""Replay determinism: the same bars and orders give the same fills, events and snapshot; a bar replayed
at once equals its four ticks; a snapshot restored carries on exactly; the market simulator drives it."""

from __future__ import annotations

import contextlib
import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents_examples.trading.exchange.engine import (
    BreakerEvent,
    Event,
    Exchange,
    ExchangeError,
    Fill,
    OrderNotOpen,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from agents_examples.trading.exchange.market.bars import Bar
from tests.trading.exchange.engine_helpers import MINUTE, T0, flat, limit, market

UNIT = 10**6  # 0.01 USD in price units: the test prices move in cents


def random_bars(seed: int, count: int, start: int = T0, span: int = MINUTE) -> list[Bar]:
    """Seeded bars around 100 USD, some gapping from the previous close, volumes 0 to 50 BTC."""
    rng = random.Random(seed)
    price = 10_000  # cents
    bars = []
    for i in range(count):
        open_ = price if rng.random() < 0.7 else price + rng.randint(-150, 150)
        close = open_ + rng.randint(-120, 120)
        high = max(open_, close) + rng.randint(0, 80)
        low = min(open_, close) - rng.randint(0, 80)
        volume = rng.choice([0, rng.randint(1, 50)]) if rng.random() < 0.05 else rng.randint(1, 50)
        bars.append(
            Bar(start + i * span, span, open_ * UNIT, high * UNIT, low * UNIT, close * UNIT, volume * 10**8)
        )
        price = close
    return bars


Action = tuple[
    str, str, int, int, int
]  # (account, kind, side-ish, quantity in 0.01 BTC, price offset in cents)


def random_actions(seed: int, count: int) -> list[list[Action]]:
    """Per bar, a few seeded actions: market and limit orders, and cancels of the oldest open order."""
    rng = random.Random(seed)
    return [
        [
            (
                rng.choice(["plain", "guarded"]),
                rng.choice(["market", "limit", "limit", "limit", "cancel"]),
                rng.randint(0, 1),
                rng.randint(1, 800),
                rng.randint(-300, 300),
            )
            for _ in range(rng.randint(0, 3))
        ]
        for _ in range(count)
    ]


def _new_exchange(events: list[Event], *, breakers: bool = True) -> Exchange:
    """Two accounts; the second with breakers (which make the bars it trades run tick by tick)."""
    exchange = Exchange(symbols=["BTC"])
    exchange.subscribe(events.append)
    exchange.open_account("plain", Decimal(20_000))
    if breakers:
        exchange.open_account("guarded", Decimal(20_000), daily_loss_limit="40", max_position_size="9000")
    else:
        exchange.open_account("guarded", Decimal(20_000))
    return exchange


def _act(exchange: Exchange, actions: list[Action], now: int) -> None:
    for account, kind, side_bit, hundredths, offset in actions:
        if kind == "cancel":
            open_orders = exchange.orders(account, OrderStatus.OPEN)
            if open_orders:
                with contextlib.suppress(OrderNotOpen):  # it may time out on the way to ``now``
                    exchange.cancel(account, open_orders[0].id, now)
            continue
        side = Side.BUY if side_bit else Side.SELL
        amount = hundredths * 10**6
        price = exchange.price("BTC")
        if kind == "market" or price is None:
            request = OrderRequest("BTC", side, OrderType.MARKET, amount)
        else:
            request = OrderRequest("BTC", side, OrderType.LIMIT, amount, max(UNIT, price + offset * UNIT))
        exchange.place(account, request, now)


def _ticks(exchange: Exchange, bar: Bar) -> None:
    quarter = bar.span_ms // 4
    exchange.on_bar("BTC", bar)
    middle = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    exchange.on_tick("BTC", middle[0], bar.ts_ms + quarter)
    exchange.on_tick("BTC", middle[1], bar.ts_ms + 2 * quarter)
    exchange.on_tick("BTC", bar.close, bar.ts_ms + 3 * quarter)


def run(
    bars: list[Bar], actions: list[list[Action]], *, whole_bars: bool = True, breakers: bool = True
) -> tuple[Exchange, list[Event]]:
    """Replay ``bars`` (at once or tick by tick), doing each bar's actions at its end."""
    events: list[Event] = []
    exchange = _new_exchange(events, breakers=breakers)
    for bar, todo in zip(bars, actions, strict=True):
        if whole_bars:
            exchange.replay_bar("BTC", bar)
        else:
            _ticks(exchange, bar)
        _act(exchange, todo, bar.ts_ms + bar.span_ms - 1)
    return exchange, events


def _plain(events: list[Event]) -> list[Any]:
    return [json.loads(json.dumps(_event_doc(event), default=str)) for event in events]


def _event_doc(event: Event) -> dict[str, Any]:
    if isinstance(event, OrderUpdate):
        return {"type": event.type, "account": event.account_id, "ts": event.ts_ms, "order": event.order}
    if isinstance(event, Fill):
        return {"type": event.type, "account": event.account_id, "ts": event.ts_ms, "trade": event.trade}
    return {"type": event.type, "account": event.account_id, "ts": event.ts_ms, "state": event.state}


def test_the_same_bars_and_orders_give_the_same_fills_events_and_snapshot() -> None:
    bars, actions = random_bars(7, 3000), random_actions(8, 3000)
    first, first_events = run(bars, actions)
    second, second_events = run(bars, actions)
    # Both traded; the guarded account's breaker halted it (a halt stops every new order for the day).
    assert len(first.trades("plain")) > 100 and len(first.trades("guarded")) > 10
    assert any(isinstance(e, BreakerEvent) and e.account_id == "guarded" for e in first_events)
    assert any(o.reason == "UNFILLED_TIMEOUT" for o in first.orders("plain"))
    assert first.snapshot() == second.snapshot()
    assert _plain(first_events) == _plain(second_events)
    json.dumps(first.snapshot())  # JSON-safe as it is


def test_a_different_order_flow_gives_different_fills() -> None:
    bars = random_bars(7, 500)
    first, _ = run(bars, random_actions(8, 500))
    other, _ = run(bars, random_actions(9, 500))
    assert first.snapshot() != other.snapshot()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from([MINUTE, 3_600_000, 86_400_000]),
    st.booleans(),
)
def test_a_bar_replayed_at_once_equals_its_four_ticks(
    bar_seed: int, action_seed: int, span: int, breakers: bool
) -> None:
    start = T0 - 3 * span  # daily bars cross day boundaries, minute bars start just before one
    bars, actions = random_bars(bar_seed, 60, start, span), random_actions(action_seed, 60)
    whole, whole_events = run(bars, actions, whole_bars=True, breakers=breakers)
    ticks, tick_events = run(bars, actions, whole_bars=False, breakers=breakers)
    assert whole.snapshot() == ticks.snapshot()
    assert _plain(whole_events) == _plain(tick_events)


def test_a_restored_snapshot_carries_on_exactly_like_the_original() -> None:
    bars, actions = random_bars(11, 2000), random_actions(12, 2000)
    straight, _ = run(bars, actions)
    events: list[Event] = []
    half = _new_exchange(events)
    for bar, todo in zip(bars[:1000], actions[:1000], strict=True):
        half.replay_bar("BTC", bar)
        _act(half, todo, bar.ts_ms + bar.span_ms - 1)
    saved = json.loads(json.dumps(half.snapshot()))
    restored = Exchange.restore(saved)
    assert restored.snapshot() == saved
    for bar, todo in zip(bars[1000:], actions[1000:], strict=True):
        restored.replay_bar("BTC", bar)
        _act(restored, todo, bar.ts_ms + bar.span_ms - 1)
    assert restored.snapshot() == straight.snapshot()
    assert [t.id for t in restored.trades("plain")] == [t.id for t in straight.trades("plain")]


def test_events_come_in_order_after_the_state_changed_and_listeners_may_place_orders() -> None:
    events: list[Event] = []
    exchange = Exchange()
    exchange.open_account("a", Decimal(10_000))
    exchange.on_bar("BTC", flat(T0, "100"))
    seen_filled: list[Any] = []

    def take_profit(event: Event) -> None:
        events.append(event)
        if isinstance(event, Fill) and event.trade["side"] == "buy":
            order = exchange.order("a", event.trade["order"])
            seen_filled.append(order.status)  # the engine's state is already the new one
            exchange.place("a", limit("BTC", "sell", "1", "110"), exchange.now_ms)

    exchange.subscribe(take_profit)
    buy = exchange.place("a", limit("BTC", "buy", "1", "99"), T0)
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "98"))
    kinds = [(type(e).__name__, getattr(e, "order", getattr(e, "trade", {})).get("status")) for e in events]
    assert kinds == [
        ("OrderUpdate", "open"),  # the buy placed
        ("Fill", None),
        ("OrderUpdate", "closed"),  # the buy filled
        ("OrderUpdate", "open"),  # the listener's sell
    ]
    assert seen_filled == [OrderStatus.CLOSED]
    assert buy.status is OrderStatus.CLOSED
    assert len(exchange.orders("a", "open")) == 1
    exchange.unsubscribe(take_profit)
    exchange.place("a", market("BTC", "buy", "1"), T0 + 2 * MINUTE)
    assert len(events) == 4


def test_the_market_simulator_drives_the_engine_through_its_tick_listener() -> None:
    from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS
    from agents_examples.trading.exchange.market.simulator import MarketSimulator
    from agents_examples.trading.exchange.market.sources import synthetic_series

    btc = DEFAULT_INSTRUMENTS.get("BTC")
    series = synthetic_series(btc, seed=3, bars=300)
    simulator = MarketSimulator([series], epoch_ms=T0)
    driven = Exchange()
    driven.open_account("a")
    simulator.add_listener(driven.on_market_tick)
    simulator.advance(1)
    bought = driven.place("a", market("BTC", "buy", "0.01"), simulator.clock.now_ms())
    assert bought.status is OrderStatus.CLOSED, bought.message
    price = driven.price("BTC")
    assert price is not None
    resting = driven.place("a", OrderRequest("BTC", Side.BUY, OrderType.LIMIT, 10**6, price * 99 // 100), T0)
    simulator.advance(299)
    assert driven.price("BTC") == simulator.price("BTC")
    # The same bars on the simulated times, replayed whole, give the same engine
    replayed = Exchange()
    replayed.open_account("a")
    shifted = [
        Bar(T0 + b.ts_ms - series.bars[0].ts_ms, b.span_ms, b.open, b.high, b.low, b.close, b.volume)
        for b in series.bars
    ]
    replayed.replay_bar("BTC", shifted[0])
    replayed.place("a", market("BTC", "buy", "0.01"), bought.timestamp)
    replayed.place("a", OrderRequest("BTC", Side.BUY, OrderType.LIMIT, 10**6, price * 99 // 100), T0)
    for bar in shifted[1:]:
        replayed.replay_bar("BTC", bar)
    assert replayed.snapshot() == driven.snapshot()
    assert resting.id in {o.id for o in driven.orders("a")}


def test_errors_carry_stable_codes() -> None:
    codes = {cls.code for cls in ExchangeError.__subclasses__()}
    assert codes == {
        "INVALID_ORDER",
        "UNKNOWN_SYMBOL",
        "ACCOUNT_NOT_FOUND",
        "ACCOUNT_EXISTS",
        "ORDER_NOT_FOUND",
        "ORDER_NOT_OPEN",
        "CLIENT_ORDER_ID_CONFLICT",
    }
