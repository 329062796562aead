"""The market simulator and the simulation clock: tick order within a bar and across instruments, looping,
stepping, 24-hour statistics (against a brute-force reference), pacing, determinism for a seed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from itertools import count, takewhile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents_examples.trading.exchange.clock import DAY_MS, SimClock
from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS
from agents_examples.trading.exchange.market.simulator import MarketSimulator, MarketStats, Tick
from agents_examples.trading.exchange.market.sources import Series, load_market_data, synthetic_series

EPOCH = 1_700_000_000_000
HOUR = 3_600_000
PROVENANCE = synthetic_series(DEFAULT_INSTRUMENTS.get("BTC"), bars=1).provenance


def series(symbol: str, bars: Sequence[Bar]) -> Series:
    return Series(symbol, tuple(bars), PROVENANCE)


def bar(ts: int, span: int, o: int, h: int, lo: int, c: int, v: int = 400) -> Bar:
    return Bar(ts, span, o, h, lo, c, v)


# A reference written from the rules, independent of the simulator's tables.


def reference_ticks(given: Series, epoch: int) -> Iterator[tuple[int, int, int, int]]:
    """(time, price, phase, volume share) of one series replayed forever from ``epoch``."""
    first = given.bars[0].ts_ms
    period = given.bars[-1].ts_ms + given.bars[-1].span_ms - first
    for loop in count():
        for b in given.bars:
            prices = (
                (b.open, b.low, b.high, b.close) if b.close >= b.open else (b.open, b.high, b.low, b.close)
            )
            for phase, price in enumerate(prices):
                share = b.volume * (phase + 1) // 4 - b.volume * phase // 4
                yield epoch + loop * period + b.ts_ms - first + phase * (b.span_ms // 4), price, phase, share


def reference_stats(given: Series, epoch: int, now: int) -> MarketStats:
    seen = []
    for tick in reference_ticks(given, epoch):
        if tick[0] > now:
            break
        seen.append(tick)
    price = seen[-1][1] if seen else given.bars[0].open
    if now - DAY_MS < epoch:
        window, reference, full, window_ms = seen, given.bars[0].open, False, now - epoch
    else:
        reference = [p for t, p, _, _ in seen if t <= now - DAY_MS][-1]
        window, full, window_ms = [s for s in seen if s[0] > now - DAY_MS], True, DAY_MS
    prices = [p for _, p, _, _ in window] or [price]
    change = (Decimal(price - reference) * 100 / reference).quantize(Decimal("0.0001"))
    volume = sum(s for _, _, _, s in window)
    return MarketStats(
        given.symbol, now, price, reference, change, max(prices), min(prices), volume, window_ms, full
    )


def listen(sim: MarketSimulator) -> list[Tick]:
    heard: list[Tick] = []
    sim.add_listener(lambda symbol, ts, price, phase, b: heard.append(Tick(symbol, ts, price, phase, b)))
    return heard


UP = bar(0, 1000, 100, 130, 90, 120)
DOWN = bar(1000, 1000, 120, 125, 80, 95)
DOJI = bar(2000, 1000, 95, 99, 91, 95)


def test_an_up_bar_ticks_open_low_high_close_and_a_down_bar_open_high_low_close() -> None:
    sim = MarketSimulator([series("BTC", [UP, DOWN, DOJI])], epoch_ms=EPOCH)
    ticks = list(sim.ticks(12))
    assert [(t.ts_ms - EPOCH, t.price, t.phase) for t in ticks] == [
        (0, 100, 0), (250, 90, 1), (500, 130, 2), (750, 120, 3),
        (1000, 120, 0), (1250, 125, 1), (1500, 80, 2), (1750, 95, 3),
        (2000, 95, 0), (2250, 91, 1), (2500, 99, 2), (2750, 95, 3),
    ]  # fmt: skip
    assert [t.bar for t in ticks[::4]] == [replace(b, ts_ms=EPOCH + b.ts_ms) for b in (UP, DOWN, DOJI)]
    assert all(t.bar is ticks[4 * (n // 4)].bar for n, t in enumerate(ticks))  # one object per bar
    assert sim.current_bar("BTC") == ticks[-1].bar and sim.source_bar("BTC") == DOJI
    assert sim.clock.now_ms() == EPOCH + 2750 and sim.price("BTC") == 95


def test_each_instrument_loops_over_its_own_series_keeping_gaps_and_spans() -> None:
    gapped = [bar(5000, 1000, 10, 12, 9, 11), bar(8000, 2000, 11, 11, 7, 8)]  # 2 s gap; period 5 s
    other = [bar(0, 3000, 50, 51, 49, 50)]  # period 3 s
    sim = MarketSimulator([series("A", gapped), series("B", other)], epoch_ms=EPOCH)
    a_times = []
    for tick in sim.ticks(40):
        if tick.symbol == "A":
            a_times.append((tick.ts_ms - EPOCH, tick.price))
    assert a_times[:8] == [
        (0, 10),
        (250, 9),
        (500, 12),
        (750, 11),
        (3000, 11),
        (3500, 11),
        (4000, 7),
        (4500, 8),
    ]
    assert a_times[8:16] == [(t + 5000, p) for t, p in a_times[:8]]
    assert sim.loops("A") >= 2 and sim.loops("B") > sim.loops("A")
    sim2 = MarketSimulator([series("A", gapped)], epoch_ms=EPOCH)
    sim2.advance_to(EPOCH + 4500)
    assert sim2.loops("A") == 1 and sim2.price("A") == 8
    assert sim2.current_bar("A") == bar(EPOCH + 3000, 2000, 11, 11, 7, 8)  # the bar at its simulated time
    sim2.advance_to(EPOCH + 5000)
    assert sim2.current_bar("A") == bar(EPOCH + 5000, 1000, 10, 12, 9, 11)


@st.composite
def random_series(draw: st.DrawFn, symbol: str) -> Series:
    span = draw(st.sampled_from([7 * 60_000, HOUR, 4 * HOUR, DAY_MS]))
    bars, ts = [], draw(st.integers(0, 10**12))
    for _ in range(draw(st.integers(1, 6))):
        o, c = draw(st.integers(50, 150)), draw(st.integers(50, 150))
        h = max(o, c) + draw(st.integers(0, 20))
        lo = min(o, c) - draw(st.integers(0, 20))
        bars.append(bar(ts, span, o, h, lo, c, draw(st.integers(0, 10**6))))
        ts += span * draw(st.sampled_from([1, 1, 2, 3]))
    return series(symbol, bars)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n_series=st.integers(1, 3),
    steps=st.lists(st.integers(0, 3 * DAY_MS), min_size=1, max_size=5),
)
def test_stats_and_ticks_match_a_brute_force_replay(
    data: st.DataObject, n_series: int, steps: list[int]
) -> None:
    replayed = [data.draw(random_series(f"S{i}")) for i in range(n_series)]
    sim = MarketSimulator(replayed, epoch_ms=EPOCH)
    heard = listen(sim)
    now = EPOCH
    for step in steps:
        now += step
        sim.advance_to(now)
        assert sim.clock.now_ms() == now
        for s in replayed:
            assert sim.stats(s.symbol) == reference_stats(s, EPOCH, now)
            assert sim.price(s.symbol) == sim.stats(s.symbol).price
    merged = sorted(
        (t, index, price, phase)
        for index, s in enumerate(replayed)
        for t, price, phase, _ in takewhile(lambda tick: tick[0] <= now, reference_ticks(s, EPOCH))
    )
    assert [(t.ts_ms, int(t.symbol[1:]), t.price, t.phase) for t in heard] == merged
    for tick in heard:  # each tick's bar is its bar on the simulated clock
        assert tick.bar.ts_ms == tick.ts_ms - tick.phase * (tick.bar.span_ms // 4)
        assert replace(tick.bar, ts_ms=0) in {replace(b, ts_ms=0) for s in replayed for b in s.bars}


def test_stats_over_a_replay_shorter_than_a_day_say_so() -> None:
    day = [bar(0, DAY_MS, 100, 110, 90, 105, 400), bar(DAY_MS, DAY_MS, 105, 120, 100, 102, 800)]
    sim = MarketSimulator([series("ETH", day)], epoch_ms=EPOCH)
    before = sim.stats("ETH")
    assert (before.price, before.open24h, before.change24h, before.volume24h) == (100, 100, Decimal(0), 0)
    assert (before.window_ms, before.full_window) == (0, False)
    sim.advance_to(EPOCH + 12 * HOUR)  # ticks so far: open 100, low 90, high 110
    half = sim.stats("ETH")
    assert (half.price, half.high24h, half.low24h, half.volume24h) == (110, 110, 90, 300)
    assert (half.open24h, half.change24h, half.window_ms, half.full_window) == (
        100,
        Decimal("10.0000"),
        12 * HOUR,
        False,
    )


def test_stats_over_the_last_day_once_a_day_has_been_replayed() -> None:
    day = [bar(0, DAY_MS, 100, 110, 90, 105, 400), bar(DAY_MS, DAY_MS, 105, 120, 100, 102, 800)]
    sim = MarketSimulator([series("ETH", day)], epoch_ms=EPOCH)
    sim.advance_to(EPOCH + DAY_MS)  # the window: low 90, high 110, close 105 of day 1 and day 2's open
    full = sim.stats("ETH")
    assert (full.price, full.open24h, full.change24h) == (105, 100, Decimal("5.0000"))
    assert (full.high24h, full.low24h, full.volume24h) == (110, 90, 3 * 100 + 200)
    assert (full.window_ms, full.full_window, full.ts_ms) == (DAY_MS, True, EPOCH + DAY_MS)
    sim.advance_to(EPOCH + 2 * DAY_MS + 5 * HOUR)  # a loop later: day 2 from its high on, day 1's open
    later = sim.stats("ETH")
    assert (later.price, later.open24h, later.high24h, later.low24h) == (100, 105, 120, 100)
    assert (later.change24h, later.volume24h) == (Decimal("-4.7619"), 3 * 200 + 100)
    with pytest.raises(KeyError, match="BTC"):
        sim.stats("BTC")


def test_a_window_across_the_end_of_the_series_covers_both_ends() -> None:
    half_day = 12 * HOUR
    bars = [
        bar(0, half_day, 100, 200, 95, 110),  # the highest high, at the start of the series
        bar(half_day, half_day, 110, 120, 105, 115),
        bar(2 * half_day, half_day, 115, 118, 100, 101),
        bar(3 * half_day, half_day, 101, 103, 50, 102),  # the lowest low, at its end
    ]
    sim = MarketSimulator([series("A", bars)], epoch_ms=EPOCH)
    sim.advance_to(EPOCH + 60 * HOUR)  # the window: bar 3 after its open, bar 0 again, bar 1's open
    stats = sim.stats("A")
    assert (stats.high24h, stats.low24h, stats.price, stats.open24h) == (200, 50, 110, 101)
    assert stats == reference_stats(sim.series("A"), EPOCH, EPOCH + 60 * HOUR)


def test_advance_counts_closed_bars_and_stops_the_clock_at_the_last_tick() -> None:
    fast = [bar(i * 1000, 1000, 10, 11, 9, 10) for i in range(3)]
    slow = [bar(0, 4000, 20, 21, 19, 20)]
    sim = MarketSimulator([series("F", fast), series("S", slow)], epoch_ms=EPOCH)
    heard = listen(sim)
    assert sim.advance(0) == 0 and heard == []
    ticks = sim.advance(2)
    closes = [t for t in heard if t.phase == 3]
    assert len(closes) == 2 and heard[-1].phase == 3 and ticks == len(heard)
    assert sim.clock.now_ms() == heard[-1].ts_ms == EPOCH + 1750
    assert sim.advance_ticks(3) == 3 and len(heard) == ticks + 3
    assert sim.next_tick_ms() > sim.clock.now_ms() == heard[-1].ts_ms
    before = sim.clock.now_ms()
    assert sim.advance_by(10) == 0 and sim.clock.now_ms() == before + 10
    with pytest.raises(ValueError):
        sim.advance(-1)
    with pytest.raises(ValueError):
        sim.advance_by(-1)


def test_ticks_and_listeners_see_the_same_stream_and_listeners_can_be_removed() -> None:
    a = MarketSimulator(
        [series("X", [UP, DOWN, DOJI]), series("Y", [bar(0, 700, 5, 6, 4, 5)])], epoch_ms=EPOCH
    )
    heard = listen(a)
    yielded = list(a.ticks(30))
    assert yielded == heard and len(heard) == 30
    b = MarketSimulator(
        [series("X", [UP, DOWN, DOJI]), series("Y", [bar(0, 700, 5, 6, 4, 5)])], epoch_ms=EPOCH
    )
    other: list[int] = []

    def count_ticks(symbol: str, ts: int, price: int, phase: int, b_: Bar) -> None:
        other.append(ts)

    b.add_listener(count_ticks)
    b.advance_ticks(30)
    assert other == [t.ts_ms for t in yielded]
    b.remove_listener(count_ticks)
    b.advance_ticks(5)
    assert len(other) == 30


def test_a_listener_added_within_a_bar_gets_that_bar_on_the_simulated_clock() -> None:
    sim = MarketSimulator([series("X", [UP, DOWN])], epoch_ms=EPOCH)
    sim.advance_ticks(6)  # into DOWN, with no listener
    heard = listen(sim)
    sim.advance_ticks(2)
    assert [(t.ts_ms - EPOCH, t.phase) for t in heard] == [(1500, 2), (1750, 3)]
    assert heard[0].bar == heard[1].bar == replace(DOWN, ts_ms=EPOCH + 1000)


def test_the_clock_never_goes_back_even_when_moved_ahead_by_someone_else() -> None:
    clock = SimClock(EPOCH)
    sim = MarketSimulator([series("X", [UP, DOWN])], clock=clock)
    heard = listen(sim)
    seen_by_listeners: list[int] = []
    sim.add_listener(lambda *_: seen_by_listeners.append(clock.now_ms() - EPOCH))
    clock.advance_to(EPOCH + 600)
    sim.advance_to(EPOCH + 900)
    assert [t.ts_ms - EPOCH for t in heard] == [0, 250, 500, 750]
    assert seen_by_listeners == [600, 600, 600, 750]
    assert clock.now_ms() == EPOCH + 900
    sim.advance_to(EPOCH + 1600)
    assert seen_by_listeners[4:] == [1000, 1250, 1500]  # in step again: the clock reads each tick's time
    with pytest.raises(ValueError, match="differs"):
        MarketSimulator([series("X", [UP])], clock=SimClock(EPOCH), epoch_ms=EPOCH + 1)


def test_a_seeded_replay_is_the_same_every_time() -> None:
    def fingerprint(seed: int) -> str:
        data = load_market_data(seed=seed, use_real=False)
        sim = MarketSimulator(data.series.values())
        digest = hashlib.sha256()
        sim.add_listener(
            lambda symbol, ts, price, phase, b: digest.update(f"{symbol}{ts}{price}{phase}".encode())
        )
        sim.advance(5000)
        stats = [sim.stats(symbol) for symbol in sim.symbols]
        digest.update(repr(stats).encode())
        return digest.hexdigest()

    assert fingerprint(1) == fingerprint(1)
    assert fingerprint(1) != fingerprint(2)


def test_the_pace_is_bars_of_the_finest_series_per_wall_second() -> None:
    fine = series("F", [bar(i * 1000, 1000, 10, 11, 9, 10) for i in range(5)])
    coarse = series("C", [bar(0, 60_000, 10, 11, 9, 10)])
    assert MarketSimulator([coarse, fine], bars_per_second=2).sim_ms_per_second == 2000
    assert MarketSimulator([coarse], bars_per_second=2).sim_ms_per_second == 120_000
    sim = MarketSimulator([coarse], epoch_ms=EPOCH, reference_span_ms=1024, bars_per_second=1)
    sim.advance_wall(1 / 2048)  # half a simulated ms: carried over, not lost
    assert sim.clock.now_ms() == EPOCH
    sim.advance_wall(1 / 2048)
    assert sim.clock.now_ms() == EPOCH + 1
    sim.advance_wall(2.0)
    assert sim.clock.now_ms() == EPOCH + 1 + 2048
    with pytest.raises(ValueError):
        MarketSimulator([fine], bars_per_second=0)


async def test_run_moves_the_clock_to_where_wall_time_says_until_stopped() -> None:
    sim = MarketSimulator(
        [series("F", [bar(i * 1000, 1000, 10, 11, 9, 10) for i in range(5)])], epoch_ms=EPOCH
    )
    stop = asyncio.Event()
    readings = iter([100.0, 100.5, 101.0, 102.5])

    def monotonic() -> float:
        value = next(readings)
        if value == 102.5:
            stop.set()
        return value

    await sim.run(stop, interval_s=0, monotonic=monotonic)
    assert sim.clock.now_ms() == EPOCH + 2500  # 2.5 s at one 1-second bar per second
    assert sim.price("F") == 11 and sim.current_bar("F").ts_ms == EPOCH + 2000  # bar 2's high, at 2.5 s


def test_the_simulator_refuses_what_it_cannot_replay() -> None:
    with pytest.raises(ValueError, match="at least one series"):
        MarketSimulator([])
    with pytest.raises(ValueError, match="two series"):
        MarketSimulator([series("X", [UP]), series("X", [DOWN])])


def test_sim_clock_moves_only_forward() -> None:
    clock = SimClock(5 * DAY_MS + 7)
    assert clock.now_ms() == 5 * DAY_MS + 7 and clock.day_start_ms() == 5 * DAY_MS
    clock.advance_by(DAY_MS)
    assert clock.day_start_ms() == 6 * DAY_MS
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(0)
    with pytest.raises(ValueError):
        clock.advance_by(-1)
    assert clock.now_ms() == 6 * DAY_MS + 7
