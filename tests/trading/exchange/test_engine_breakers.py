"""Circuit breakers: the daily loss limit (at the limit, just past it, the halt, its event, the day
boundary) and the position cap in quote value (at the cap and just past it)."""

from __future__ import annotations

from decimal import Decimal

from agents_examples.trading.exchange.engine import (
    BreakerEvent,
    Event,
    Exchange,
    FillConfig,
    OrderStatus,
)
from agents_examples.trading.exchange.market.bars import to_price
from tests.trading.exchange.engine_helpers import DAY, FLAT, MINUTE, T0, flat, limit, market


def _exchange(
    config: FillConfig = FLAT, loss: str | None = None, cap: str | None = None
) -> tuple[Exchange, list[Event]]:
    exchange = Exchange(config)
    events: list[Event] = []
    exchange.subscribe(events.append)
    exchange.open_account("a", Decimal(10_000), daily_loss_limit=loss, max_position_size=cap)
    exchange.on_bar("BTC", flat(T0, "100"))
    return exchange, events


def _breakers(events: list[Event]) -> list[BreakerEvent]:
    return [event for event in events if isinstance(event, BreakerEvent)]


def test_a_loss_equal_to_the_limit_is_allowed_and_one_unit_past_it_halts_all_new_orders() -> None:
    exchange, events = _exchange(loss="100")
    exchange.place("a", market("BTC", "buy", "10"), T0)
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "90"))  # down 100: at the limit
    assert not exchange.portfolio("a")["limits"]["halted"]
    assert exchange.place("a", market("BTC", "buy", "1"), T0 + 2 * MINUTE).status is OrderStatus.CLOSED
    # 11 BTC now; 90 -> 89.99999999 loses 11e-8 more: past the limit
    exchange.on_bar("BTC", flat(T0 + 3 * MINUTE, "89.99999999"))
    p = exchange.portfolio("a")
    assert p["limits"]["halted"] and p["limits"]["haltedUntil"] == T0 + DAY
    assert p["dailyPnl"] == Decimal("-100.00000011")
    [halted] = _breakers(events)
    assert (halted.state, halted.code, halted.ts_ms, halted.until_ms) == (
        "halted",
        "DAILY_LOSS_LIMIT",
        T0 + 3 * MINUTE,
        T0 + DAY,
    )
    assert (halted.limit, halted.loss) == (Decimal(100), Decimal("100.00000011"))
    refused = exchange.place("a", limit("BTC", "buy", "1", "80"), T0 + 4 * MINUTE)
    assert (refused.status, refused.reason) == (OrderStatus.REJECTED, "DAILY_LOSS_LIMIT")
    # sells are halted too, market and limit, for the rest of the simulated day
    sold = exchange.place("a", market("BTC", "sell", "11"), T0 + 4 * MINUTE)
    assert (sold.status, sold.reason) == (OrderStatus.REJECTED, "DAILY_LOSS_LIMIT")
    assert exchange.place("a", limit("BTC", "sell", "1", "120"), T0 + 4 * MINUTE).reason == "DAILY_LOSS_LIMIT"
    assert exchange.place("a", market("BTC", "buy", "1"), T0 + 5 * MINUTE).reason == "DAILY_LOSS_LIMIT"
    assert exchange.place("a", market("BTC", "sell", "1"), T0 + DAY - 1).reason == "DAILY_LOSS_LIMIT"
    assert exchange.portfolio("a")["positions"][0]["quantity"] == 11  # nothing was sold
    assert len(_breakers(events)) == 1  # one event per halt


def test_a_buy_whose_own_cost_would_take_the_loss_past_the_limit_is_rejected() -> None:
    exchange, events = _exchange(FillConfig(fee_rate=Decimal("0.01"), slippage_bps=Decimal(0)), loss="10")
    exchange.on_bar("BTC", flat(T0, "100", volume="1000000000"))
    # 10 BTC at 100 x (1 + 0.1 x 10 / 1e9) = 100.0000001: 1000.000001 + fee 10.00000001 - 1000 > 10
    refused = exchange.place("a", market("BTC", "buy", "10"), T0)
    assert refused.reason == "DAILY_LOSS_LIMIT"
    # a resting buy only risks its fee: 1000 x 1% = 10, at the limit
    resting = exchange.place("a", limit("BTC", "buy", "10", "100"), T0)
    assert resting.status is OrderStatus.OPEN
    exchange.cancel("a", resting.id, T0)
    assert exchange.place("a", limit("BTC", "buy", "10.00000001", "100"), T0).reason == "DAILY_LOSS_LIMIT"
    assert not exchange.portfolio("a")["limits"]["halted"]
    assert _breakers(events) == []


def test_fees_alone_can_take_an_account_past_its_limit() -> None:
    exchange, events = _exchange(FillConfig(fee_rate=Decimal("0.01"), slippage_bps=Decimal(0)), loss="15")
    exchange.on_bar("BTC", flat(T0, "100", volume="1000000000"))
    exchange.place("a", limit("BTC", "buy", "10", "100"), T0)  # fee 10 when it fills
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "100"))
    assert exchange.portfolio("a")["dailyPnl"] == -10
    exchange.place("a", limit("BTC", "sell", "10", "100"), T0 + MINUTE)  # sells are not checked
    exchange.replay_bar("BTC", flat(T0 + 2 * MINUTE, "100"))
    assert exchange.portfolio("a")["dailyPnl"] == -20
    [halted] = _breakers(events)
    assert halted.ts_ms == T0 + 2 * MINUTE and halted.loss == 20


def test_the_next_utc_day_lifts_the_halt_and_starts_counting_again() -> None:
    exchange, events = _exchange(loss="50")
    exchange.place("a", market("BTC", "buy", "10"), T0)
    late = T0 + DAY - 4 * MINUTE
    exchange.replay_bar("BTC", flat(late, "94.9"))  # -51
    assert exchange.portfolio("a")["limits"]["halted"]
    exchange.replay_bar("BTC", flat(late + MINUTE, "94"))  # the day ends at -60
    assert exchange.place("a", market("BTC", "buy", "1"), T0 + DAY - 1).reason == "DAILY_LOSS_LIMIT"
    assert exchange.place("a", market("BTC", "sell", "1"), T0 + DAY - 1).reason == "DAILY_LOSS_LIMIT"
    exchange.replay_bar("BTC", flat(T0 + DAY, "93"))  # the new day's first bar
    p = exchange.portfolio("a")
    assert not p["limits"]["halted"]
    assert p["dailyPnl"] == -10  # from 94, the last price before the new day's first event
    lifted = _breakers(events)[-1]
    assert (lifted.state, lifted.ts_ms, lifted.until_ms) == ("lifted", T0 + DAY, None)
    assert exchange.place("a", market("BTC", "buy", "1"), T0 + DAY + MINUTE).status is OrderStatus.CLOSED
    # from 9940 at the day's start: 8907 cash + 11 BTC, so -50 is at 11 x p = 983, p = 89.3636...
    exchange.replay_bar("BTC", flat(T0 + DAY + 2 * MINUTE, "89.37"))
    assert not exchange.portfolio("a")["limits"]["halted"]
    exchange.replay_bar("BTC", flat(T0 + DAY + 3 * MINUTE, "89.36"))
    assert exchange.portfolio("a")["limits"]["halted"]
    assert exchange.portfolio("a")["limits"]["haltedUntil"] == T0 + 2 * DAY


def test_an_account_already_past_a_new_limit_is_halted_at_its_next_order_even_a_sell() -> None:
    exchange, events = _exchange()
    exchange.place("a", market("BTC", "buy", "10"), T0)
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "80"))  # -200, no limit yet
    exchange.set_limits("a", daily_loss_limit="100")
    refused = exchange.place("a", market("BTC", "sell", "1"), T0 + 2 * MINUTE)
    assert refused.reason == "DAILY_LOSS_LIMIT"
    assert exchange.portfolio("a")["limits"]["halted"]
    assert [e.state for e in _breakers(events)] == ["halted"]


def test_the_loss_is_seen_between_a_bars_ticks() -> None:
    exchange, events = _exchange(loss="100")
    exchange.place("a", market("BTC", "buy", "10"), T0)
    exchange.on_bar("BTC", flat(T0 + MINUTE, "100"))
    exchange.on_tick("BTC", to_price("89"), T0 + MINUTE + 15_000)  # the low; it closes back at 100
    exchange.on_tick("BTC", to_price("100"), T0 + MINUTE + 30_000)
    [halted] = _breakers(events)
    assert halted.ts_ms == T0 + MINUTE + 15_000 and halted.loss == 110


def test_the_position_cap_in_quote_value_allows_the_cap_and_refuses_past_it() -> None:
    exchange, _ = _exchange(cap="1000")
    assert exchange.place("a", market("BTC", "buy", "10"), T0).status is OrderStatus.CLOSED  # 1000
    refused = exchange.place("a", market("BTC", "buy", "0.00000001"), T0)
    assert (refused.status, refused.reason) == (OrderStatus.REJECTED, "MAX_POSITION_SIZE")
    assert exchange.place("a", market("BTC", "sell", "10"), T0).status is OrderStatus.CLOSED


def test_open_buy_orders_count_toward_the_position_cap_at_the_last_price() -> None:
    exchange, _ = _exchange(cap="1000")
    exchange.on_bar("ETH", flat(T0, "10"))
    assert exchange.place("a", limit("BTC", "buy", "4", "90"), T0).status is OrderStatus.OPEN  # 400 at 100
    assert exchange.place("a", market("BTC", "buy", "6"), T0).status is OrderStatus.CLOSED  # 1000
    assert exchange.place("a", limit("BTC", "buy", "0.01", "50"), T0).reason == "MAX_POSITION_SIZE"
    assert exchange.place("a", market("ETH", "buy", "100"), T0).status is OrderStatus.CLOSED  # per symbol
    # the price falls: the same position is worth less, so there is room again
    exchange.replay_bar("BTC", flat(T0 + MINUTE, "95"))  # the 90 buy stays open
    assert exchange.place("a", market("BTC", "buy", "0.5"), T0 + 2 * MINUTE).status is OrderStatus.CLOSED
    assert exchange.place("a", market("BTC", "buy", "0.03"), T0 + 2 * MINUTE).reason == "MAX_POSITION_SIZE"
