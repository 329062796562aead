"""The trader over an in-memory exchange: scripted price paths drive each exit as an order, risk limits
pause an agent, a catch-up tick replays the gap, sell signals close, prices reach followers batched."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agents_examples.trading.engine.codec import trade_view
from agents_examples.trading.engine.domain.models import Position
from agents_examples.trading.engine.domain.signals import SignalInput
from agents_examples.trading.engine.events import Follower
from agents_examples.trading.engine.exchange_link import OrderOutcome, Tick, WalletKeys
from agents_examples.trading.engine.records import ExecutionStatus
from agents_examples.trading.engine.service import EngineService
from agents_examples.trading.engine.store import EngineStore
from agents_examples.trading.engine.trading import Trader
from tests.trading.engine.api_support import KEY, SECRET, START_MS, TKN, WALL, FakeExchange

HOUR = 3_600_000
USER = "ann"


@dataclass
class Book:
    service: EngineService
    exchange: FakeExchange
    agent_id: str

    @property
    def trader(self) -> Trader:
        return self.service.trader

    async def buy(self, token: str = TKN, strength: int = 4) -> None:
        _, executions = self.service.post_signal(USER, SignalInput(token, None, "buy", strength, None, None))
        await self.trader.drain()
        settled = self.service.execution(executions[0].signal_id, self.agent_id)
        assert settled is not None and settled.status is ExecutionStatus.EXECUTED, settled

    async def tick(self, price: str, at_ms: int, **extra: Any) -> None:
        self.exchange.prices["TKN"] = Decimal(price)
        await self.trader.on_ticks([Tick("TKN", TKN, Decimal(price), at_ms, **extra)])
        await self.trader.drain()

    def positions(self) -> list[Position]:
        return self.trader.open_positions(self.agent_id)

    def swaps(self) -> list[dict[str, Any]]:
        """The closed trades' views, oldest first."""
        return [trade_view(t) for t in self.service.trades(self.agent_id)]


def _drain(follower: Follower) -> list[dict[str, Any]]:
    found = [follower.queue.get_nowait() for _ in range(follower.queue.qsize())]
    return [m for m in found if m is not None]


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[Book]:
    exchange = FakeExchange()
    service = EngineService(EngineStore(tmp_path), exchange, wall=lambda: WALL)
    await service.trader.refresh_listings()
    agent = service.create_agent(USER, {"name": "Alpha"})
    wallet = await service.add_wallet(USER, {"apiKey": KEY, "apiSecret": SECRET})
    await service.assign_wallet(
        USER, {"agentId": agent.id, "walletAddress": wallet.address, "startingBalance": 100}
    )
    # Looser limits than Nexgent's defaults, so the exits under test are the only thing acting.
    service.put_config(USER, agent.id, {"riskLimits": {"dailyLossLimit": None, "maxDrawdownPercent": None}})
    yield Book(service, exchange, agent.id)
    await service.trader.close()
    service.store.close()


async def test_a_fixed_stop_loss_sells_everything_when_the_price_falls_through_it(book: Book) -> None:
    await book.buy()
    position = book.positions()[0]
    assert position.purchase_price == Decimal(2)
    await book.tick("1.40", START_MS + 60_000)  # -30%: above the -32% stop
    assert book.positions()
    await book.tick("1.30", START_MS + 120_000)  # -35%
    assert book.positions() == []
    swaps = book.swaps()
    assert [s["closeReason"] for s in swaps] == ["stop_loss"]
    assert book.exchange.orders[-1]["side"] == "sell"
    assert Decimal(str(book.exchange.orders[-1]["quantity"])) == position.purchase_amount


async def test_take_profit_levels_sell_parts_and_the_moon_bag_rides_the_trailing_stop(book: Book) -> None:
    book.service.put_config(
        USER,
        book.agent_id,
        {
            "takeProfit": {
                "enabled": True,
                "mode": "custom",
                "levels": [
                    {"targetPercent": 50, "sellPercent": 40},
                    {"targetPercent": 100, "sellPercent": 40},
                ],
                "moonBag": {"enabled": True, "triggerPercent": 100, "retainPercent": 20},
            },
            "staleTrade": {"enabled": False},
        },
    )
    await book.buy()
    bought = book.positions()[0].purchase_amount
    await book.tick("3.0", START_MS + 60_000)  # +50%: the first level sells 40% of the original
    held = book.positions()[0]
    assert held.remaining_amount == bought - (bought * Decimal("0.4")).quantize(Decimal("1e-8"), "ROUND_DOWN")
    assert held.take_profit_levels_hit == 1
    await book.tick("4.0", START_MS + 120_000)  # +100%: the second level; the moon bag stays
    held = book.positions()[0]
    assert held.take_profit_levels_hit == 2 and held.moon_bag_activated
    assert held.held == pytest.approx(bought * Decimal("0.2"), rel=Decimal("1e-6"))
    # The fixed trailing stop after a +100% peak is +90%: a fall to +80% sells the moon bag.
    await book.tick("3.6", START_MS + 180_000)
    assert book.positions() == []
    reasons = [s["closeReason"] for s in book.swaps()]
    assert reasons == ["take_profit", "take_profit", "stop_loss"]


async def test_a_stale_trade_is_closed_after_the_hold_time_inside_its_window(book: Book) -> None:
    await book.buy()
    await book.tick("2.05", START_MS + 30 * 60_000)  # +2.5% but held 30 minutes only
    assert book.positions()
    await book.tick("2.05", START_MS + 61 * 60_000)
    assert [s["closeReason"] for s in book.swaps()] == ["stale_trade"]


async def test_a_catch_up_tick_replays_the_gap_low_so_a_crossed_stop_still_fires(book: Book) -> None:
    await book.buy()
    # The stream was down while the price fell to 1.2 and came back to 1.9: the stop was crossed.
    await book.tick("1.9", START_MS + 60_000, low=Decimal("1.2"), high=Decimal("2.0"), catch_up=True)
    assert [s["closeReason"] for s in book.swaps()] == ["stop_loss"]


async def test_a_live_tick_at_the_same_price_does_not_fire(book: Book) -> None:
    await book.buy()
    await book.tick("1.9", START_MS + 60_000)
    assert book.positions() and book.swaps() == []


async def test_a_refused_sell_keeps_the_position_and_is_tried_again_on_the_next_tick(book: Book) -> None:
    await book.buy()
    real = book.exchange.place_order
    refusals: list[dict[str, Any]] = []

    async def refuse_once(keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome:
        if order["side"] == "sell" and not refusals:
            refusals.append(order)
            return OrderOutcome(False, "NO_LIQUIDITY", "no volume in this bar", None)
        return await real(keys, order)

    book.exchange.place_order = refuse_once  # type: ignore[method-assign]
    await book.tick("1.30", START_MS + 60_000)
    assert book.positions() and len(refusals) == 1
    await book.tick("1.29", START_MS + 120_000)
    assert book.positions() == []


async def test_a_price_impact_refusal_is_retried_smaller(book: Book) -> None:
    real = book.exchange.place_order
    sizes: list[Decimal] = []

    async def impact(keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome:
        sizes.append(Decimal(str(order["quantity"])))
        if len(sizes) < 3:
            return OrderOutcome(False, "PRICE_IMPACT_TOO_HIGH", "too big for the bar", None)
        return await real(keys, order)

    book.exchange.place_order = impact  # type: ignore[method-assign]
    await book.buy()
    assert [s / sizes[0] for s in sizes] == [1, Decimal("0.9"), Decimal("0.8")]
    assert len({o["clientOrderId"] for o in book.exchange.orders}) == 1  # only the fill reached the fake


async def test_a_daily_loss_breach_pauses_the_agent_until_the_next_simulated_day(book: Book) -> None:
    book.service.put_config(
        USER, book.agent_id, {"riskLimits": {"dailyLossLimit": 0.5}, "stopLoss": {"enabled": False}}
    )
    follower = book.service.hub.follow(book.agent_id)
    await book.buy()
    await book.tick("1.4", START_MS + 60_000)  # the 2-unit position lost 0.6: past the 0.5 limit
    agent = book.service.agents[book.agent_id]
    assert agent.halted == "DAILY_LOSS_LIMIT" and not agent.automated
    kinds = [m["type"] for m in _drain(follower)]
    assert "risk_event" in kinds
    _, executions = book.service.post_signal(USER, SignalInput("SOL", "SOL", "buy", 5, None, None))
    assert executions[0].status is ExecutionStatus.SKIPPED and executions[0].error_code == "AGENT_INACTIVE"
    await book.tick("1.4", START_MS + 24 * HOUR + 1)  # 00:00 UTC of the next simulated day
    assert agent.halted is None and agent.automated


async def test_a_sell_signal_closes_the_position_with_reason_signal(book: Book) -> None:
    await book.buy()
    _, executions = book.service.post_signal(USER, SignalInput(TKN, None, "SELL", 3, None, None))
    await book.trader.drain()
    assert book.positions() == []
    assert [s["closeReason"] for s in book.swaps()] == ["signal"]
    done = book.service.execution(executions[0].signal_id, book.agent_id)
    assert done is not None and done.status is ExecutionStatus.EXECUTED


async def test_another_users_signal_does_not_reach_an_agent_following_only_its_own_user(book: Book) -> None:
    _, executions = book.service.post_signal("bob", SignalInput(TKN, None, "buy", 5, None, None))
    assert executions == []
    book.service.put_config(USER, book.agent_id, {"signals": {"sources": ["self", "user:bob"]}})
    _, executions = book.service.post_signal("bob", SignalInput(TKN, None, "buy", 4, None, None))
    assert [e.agent_id for e in executions] == [book.agent_id]


async def test_prices_reach_a_follower_as_one_batch_per_tick_and_snapshots_are_hourly(book: Book) -> None:
    await book.buy()
    await book.buy("So11111111111111111111111111111111111111112")
    follower = book.service.hub.follow(book.agent_id)
    sol = "So11111111111111111111111111111111111111112"
    await book.trader.on_ticks(
        [
            Tick("TKN", TKN, Decimal("2.1"), START_MS + HOUR + 1),
            Tick("SOL", sol, Decimal("151"), START_MS + HOUR + 1),
        ]
    )
    messages = _drain(follower)
    batches = [m for m in messages if m["type"] == "price_update_batch"]
    assert len(batches) == 1
    assert {u["tokenAddress"] for u in batches[0]["data"]["updates"]} == {TKN, sol}
    points = book.service.balance_history(USER, book.agent_id, "all")
    assert [p.timestamp_ms for p in points] == [START_MS + HOUR]


async def test_a_buy_that_breaks_unexpectedly_fails_its_record_instead_of_leaving_it_pending(
    book: Book, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(keys: WalletKeys, order: dict[str, Any]) -> OrderOutcome:
        raise RuntimeError("a bug in an adapter")

    book.exchange.place_order = broken  # type: ignore[method-assign]
    _, executions = book.service.post_signal(USER, SignalInput(TKN, None, "buy", 4, None, None))
    with caplog.at_level("ERROR"):
        await book.trader.drain()
    done = book.service.execution(executions[0].signal_id, book.agent_id)
    assert done is not None and done.status is ExecutionStatus.FAILED and done.error_code == "INTERNAL_ERROR"
    assert book.positions() == [] and not book.trader.pending.get(book.agent_id)
    assert "a bug in an adapter" in caplog.text


async def test_a_signal_whose_records_cannot_be_written_leaves_nothing_behind(
    book: Book, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(table: str, rows: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(book.service.store, "put_many", failing)
    with pytest.raises(sqlite3.OperationalError):
        book.service.post_signal(USER, SignalInput(TKN, None, "buy", 4, None, None))
    monkeypatch.undo()
    await book.trader.drain()
    assert book.exchange.orders == [] and not book.trader.pending.get(book.agent_id)
    assert book.service.signals(USER, 10, 0) == []
    # Not a duplicate either: the same signal goes through once the store works again.
    await book.buy()
