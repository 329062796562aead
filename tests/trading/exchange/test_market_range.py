"""The low and high since a given simulated time: :meth:`MarketSimulator.price_range` against the ticks
a listener saw (across a loop's wrap too), and the ``market-data`` skill's ``since`` (its ``range`` per
instrument, clamped to the replay, and the answer unchanged without it)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS
from agents_examples.trading.exchange.market.simulator import MarketSimulator
from agents_examples.trading.exchange.market.sources import Series, synthetic_series
from tests.trading.exchange.skill_helpers import artifact_data, exchange, state, status_text

EPOCH = 1_700_000_000_000
HOUR = 3_600_000
PROVENANCE = synthetic_series(DEFAULT_INSTRUMENTS.get("BTC"), bars=1).provenance
UNIT = Decimal("0.00000001")


def recorder(simulator: MarketSimulator) -> dict[str, list[tuple[int, int]]]:
    """Every tick the simulator replays from now on, per symbol: (time, price)."""
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def listen(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        seen[symbol].append((ts_ms, price))

    simulator.add_listener(listen)
    return seen


def test_the_range_is_the_low_and_high_of_the_ticks_since_then_across_the_wrap() -> None:
    bars = (Bar(EPOCH, HOUR, 100, 120, 90, 110, 1), Bar(EPOCH + HOUR, HOUR, 110, 300, 5, 200, 1))
    simulator = MarketSimulator([Series("BTC", bars, PROVENANCE)], epoch_ms=EPOCH)
    seen = recorder(simulator)
    simulator.advance(5)  # two and a half loops: the price jumps back from 200 to 100 at each wrap
    ticks = seen["BTC"]
    now = simulator.clock.now_ms()
    for since, _ in ticks:
        found = simulator.price_range("BTC", since)
        gap = [price for ts, price in ticks if ts >= since]
        assert (found.from_ms, found.to_ms, found.low, found.high) == (since, now, min(gap), max(gap))
    between = ticks[3][0] + 1  # no tick at this time: the range starts at the next one
    found = simulator.price_range("BTC", between)
    assert found.low == min(p for ts, p in ticks if ts > between)
    assert found.high == max(p for ts, p in ticks if ts > between)


def test_the_range_is_clamped_to_the_replay_and_is_the_price_when_no_tick_came_since() -> None:
    bars = (Bar(EPOCH, HOUR, 100, 120, 90, 110, 1), Bar(EPOCH + HOUR, HOUR, 110, 300, 5, 200, 1))
    simulator = MarketSimulator([Series("BTC", bars, PROVENANCE)], epoch_ms=EPOCH)
    simulator.advance(1)
    early = simulator.price_range("BTC", 0)
    assert (early.from_ms, early.low, early.high) == (EPOCH, 90, 120)
    now = simulator.clock.now_ms()
    late = simulator.price_range("BTC", now + HOUR)
    assert (late.from_ms, late.to_ms, late.low, late.high) == (now, now, 110, 110)  # the close at now


async def test_market_data_with_since_adds_each_instruments_range_of_the_gap(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        simulator = ex.service.simulator
        seen = recorder(simulator)
        since = simulator.clock.now_ms() + 1  # every tick from then on is one the recorder sees
        simulator.advance(40)
        task = await ex.call("market-data", {"since": since})
        assert state(task) == "TASK_STATE_COMPLETED", task
        doc = artifact_data(task)
        assert {d["symbol"] for d in doc["data"]} == set(simulator.symbols)
        for entry in doc["data"]:
            gap = [p for ts, p in seen[entry["symbol"]] if ts >= since] or [simulator.price(entry["symbol"])]
            low, high = Decimal(str(entry["range"]["low"])), Decimal(str(entry["range"]["high"]))
            assert entry["range"]["since"] == entry["range"]["fromMs"] == since
            assert entry["range"]["toMs"] == doc["meta"]["simulatedTime"]
            assert (low, high) == (min(gap) * UNIT, max(gap) * UNIT), entry["symbol"]
            assert low <= Decimal(str(entry["price"])) <= high
        clamped = artifact_data(await ex.call("market-data", {"coins": "BTC", "since": 0}))
        assert clamped["data"][0]["range"]["since"] == 0
        assert clamped["data"][0]["range"]["fromMs"] == simulator.epoch_ms


async def test_market_data_without_since_is_unchanged_and_a_bad_since_is_refused(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        plain = artifact_data(await ex.call("market-data", {"coins": "BTC,ETH"}))
        rest = await ex.client.get(
            "/v1/agent/market?coins=BTC,ETH", headers={"X-NX-Key": (await ex.register())["apiKey"]}
        )
        assert plain == rest.json()
        assert all("range" not in entry for entry in plain["data"])
        for bad in ("1700000000000", True, -1, 1.5):
            task = await ex.call("market-data", {"since": bad})
            assert state(task) == "TASK_STATE_REJECTED", bad
            assert status_text(task).startswith("INVALID_REQUEST: since"), status_text(task)
