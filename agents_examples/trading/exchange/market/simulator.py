"""The market simulator: every instrument's bars replayed as ticks on one simulation clock.

Each instrument replays its own series on its own and loops over it: its first bar opens at the
simulator's epoch, later bars keep their offsets from the first (gaps such as weekends included) and
their spans, and when the series ends it starts again one period later (period = the series' first open
to its last bar's end). Each bar gives four ticks a quarter of its span apart (at ``ts + k * (span //
4)``): open, low, high, close for an up bar (close >= open) and open, high, low, close for a down bar.
Ticks of all instruments are delivered in time order (at equal times, in the order the series were
given).

The hot path is small on purpose (the exchange's benchmark replays 100,000 bars/s through the matching
engine): tick times and prices are precomputed per instrument as flat integer lists, a step is a few
integer operations plus the listeners' calls, and nothing is allocated per tick (one Bar per bar, on
the simulated clock, when there are listeners). The 24-hour statistics
cost nothing per tick either: since a replay is a fixed function of time, :meth:`MarketSimulator.stats`
finds the window's ticks by bisection and answers from sparse tables (range max and min) and prefix sums
(volume) built once per instrument, the first time it is asked; so does
:meth:`MarketSimulator.price_range`, the low and high since a given time (what a client that lost its feed
missed).

:meth:`MarketSimulator.advance` / :meth:`~MarketSimulator.advance_to` / :meth:`~MarketSimulator.ticks`
step as fast as possible (tests, backtests, benchmarks); :meth:`~MarketSimulator.run` paces the replay in
wall time at ``bars_per_second`` bars of the finest series per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, NamedTuple

from agents_examples.trading.exchange.clock import DAY_MS, SimClock
from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.sources import Provenance, Series

DEFAULT_EPOCH_MS: Final = 1_735_689_600_000  # 2025-01-01T00:00Z: where simulated time starts by default
TICKS_PER_BAR: Final = 4
OPEN, FIRST_EXTREME, SECOND_EXTREME, CLOSE = range(TICKS_PER_BAR)  # a tick's phase within its bar
_FOREVER: Final = sys.maxsize
_PERCENT_QUANTUM: Final = Decimal("0.0001")

TickListener = Callable[[str, int, int, int, Bar], None]
"""Called for every tick with ``(symbol, ts_ms, price, phase, bar)``: the simulated time, the price in
price units, the phase (0 open, 1 and 2 the extremes, 3 close) and the bar being replayed, moved onto the
simulation clock (its ``ts_ms`` is its simulated open time; one object per bar, shared by its 4 ticks).
A listener must not step the simulator itself."""


class Tick(NamedTuple):
    """One tick, as :meth:`MarketSimulator.ticks` yields it (see :data:`TickListener`)."""

    symbol: str
    ts_ms: int
    price: int
    phase: int
    bar: Bar


@dataclass(frozen=True, slots=True)
class MarketStats:
    """An instrument's last 24 hours of simulated time, or the replayed window when that is shorter.

    ``full_window`` is False (and ``window_ms`` under a day) while the replay has run for less than 24
    hours; then the window starts at the first tick and ``open24h`` is the first open. Otherwise
    ``open24h`` is the price at exactly 24 hours ago and the window holds the ticks after that.
    ``change24h`` is the percent change from ``open24h`` to ``price`` (4 decimal places); volume counts
    a quarter of a bar's volume per tick seen.
    """

    symbol: str
    ts_ms: int
    price: int
    open24h: int
    change24h: Decimal
    high24h: int
    low24h: int
    volume24h: int
    window_ms: int
    full_window: bool


@dataclass(frozen=True, slots=True)
class PriceRange:
    """The lowest and highest tick price of an instrument from ``from_ms`` to ``to_ms`` (simulated ms,
    both inclusive). ``from_ms`` is the asked start clamped to the replay (no earlier than the epoch, no
    later than now); without a tick in the window, ``low`` and ``high`` are the current price."""

    symbol: str
    from_ms: int
    to_ms: int
    low: int
    high: int


class _Track:
    """One instrument's replay: its ticks as flat lists and where the replay is in them."""

    __slots__ = (
        "_maxima",
        "_minima",
        "_volume_prefix",
        "bar_offsets",
        "bars",
        "base",
        "current",
        "index",
        "loops",
        "n_ticks",
        "offsets",
        "period",
        "prices",
        "r",
        "series",
        "symbol",
    )

    def __init__(self, index: int, series: Series, epoch_ms: int) -> None:
        self.index = index
        self.series = series
        self.symbol = series.symbol
        self.bars = series.bars
        first = self.bars[0].ts_ms
        self.bar_offsets = [bar.ts_ms - first for bar in self.bars]
        self.offsets: list[int] = []
        self.prices: list[int] = []
        for bar, offset in zip(self.bars, self.bar_offsets, strict=True):
            quarter = bar.span_ms // TICKS_PER_BAR
            self.offsets.extend(offset + phase * quarter for phase in range(TICKS_PER_BAR))
            if bar.up:
                self.prices.extend((bar.open, bar.low, bar.high, bar.close))
            else:
                self.prices.extend((bar.open, bar.high, bar.low, bar.close))
        last = self.bars[-1]
        self.period = last.ts_ms + last.span_ms - first
        self.n_ticks = len(self.offsets)
        self.r = 0  # the next tick's index in the series' ticks
        self.loops = 0  # how many times the series has been replayed in full
        self.base = epoch_ms  # simulated time of the current loop's first tick
        self.current: Bar | None = None  # the current bar on the simulated clock, once made for listeners
        self._maxima: list[list[int]] | None = None
        self._minima: list[list[int]] = []
        self._volume_prefix: list[int] = []

    @property
    def done(self) -> int:
        """How many ticks have been replayed in all (the last one's global index is ``done - 1``)."""
        return self.loops * self.n_ticks + self.r

    def _tables(self) -> tuple[list[list[int]], list[list[int]], list[int]]:
        if self._maxima is None:
            maxima, minima = [self.prices], [self.prices]
            width = 1
            while 2 * width <= self.n_ticks:
                top, bottom = maxima[-1], minima[-1]
                count = self.n_ticks - 2 * width + 1
                maxima.append(list(map(max, top[:count], top[width : width + count])))
                minima.append(list(map(min, bottom[:count], bottom[width : width + count])))
                width *= 2
            prefix = [0]
            running = 0
            for bar in self.bars:
                volume = bar.volume
                for phase in range(TICKS_PER_BAR):
                    running += volume * (phase + 1) // TICKS_PER_BAR - volume * phase // TICKS_PER_BAR
                    prefix.append(running)
            self._maxima, self._minima, self._volume_prefix = maxima, minima, prefix
        return self._maxima, self._minima, self._volume_prefix

    def extremes(self, first: int, last: int) -> tuple[int, int]:
        """The highest and lowest tick price among global ticks ``first..last`` (inclusive)."""
        maxima, minima, _ = self._tables()
        n = self.n_ticks
        if last - first + 1 >= n:
            level = len(maxima) - 1
            return (
                max(maxima[level][0], maxima[level][n - (1 << level)]),
                min(minima[level][0], minima[level][n - (1 << level)]),
            )
        lo, hi = first % n, last % n
        if lo <= hi:
            return self._query(lo, hi)
        high_a, low_a = self._query(lo, n - 1)
        high_b, low_b = self._query(0, hi)
        return max(high_a, high_b), min(low_a, low_b)

    def _query(self, lo: int, hi: int) -> tuple[int, int]:
        maxima, minima, _ = self._tables()
        level = (hi - lo + 1).bit_length() - 1
        end = hi - (1 << level) + 1
        return max(maxima[level][lo], maxima[level][end]), min(minima[level][lo], minima[level][end])

    def volume(self, first: int, last: int) -> int:
        """The volume of global ticks ``first..last`` (inclusive), a quarter bar's volume per tick."""
        _, _, prefix = self._tables()
        n = self.n_ticks
        total = prefix[n]

        def upto(g: int) -> int:
            loops, rest = divmod(g, n)
            return loops * total + prefix[rest]

        return upto(last + 1) - upto(first)


class MarketSimulator:
    """Replays several instruments' series as ticks on one :class:`SimClock` (see the module doc).

    ``epoch_ms`` is where simulated time starts (the clock's current time when a clock is given).
    ``bars_per_second`` sets the pace of :meth:`run`: that many bars of ``reference_span_ms`` (by
    default the finest span among the series) per wall-clock second; coarser series replay
    proportionally fewer bars, since bars keep their spans on the one clock.
    """

    def __init__(
        self,
        series: Iterable[Series],
        *,
        clock: SimClock | None = None,
        epoch_ms: int | None = None,
        bars_per_second: float = 1.0,
        reference_span_ms: int | None = None,
    ) -> None:
        if clock is None:
            clock = SimClock(DEFAULT_EPOCH_MS if epoch_ms is None else epoch_ms)
        elif epoch_ms is not None and epoch_ms != clock.now_ms():
            raise ValueError("epoch_ms differs from the given clock's time")
        self._clock = clock
        self._epoch = clock.now_ms()
        self._tracks: list[_Track] = []
        self._by_symbol: dict[str, _Track] = {}
        for given in series:
            if given.symbol in self._by_symbol:
                raise ValueError(f"two series for {given.symbol}")
            track = _Track(len(self._tracks), given, self._epoch)
            self._tracks.append(track)
            self._by_symbol[given.symbol] = track
        if not self._tracks:
            raise ValueError("the simulator needs at least one series")
        # (time of the next tick, track index) per track; ties go to the lower index.
        self._heap = [(self._epoch, track.index) for track in self._tracks]
        heapq.heapify(self._heap)
        self._listeners: list[TickListener] = []
        if bars_per_second <= 0:
            raise ValueError("bars_per_second must be positive")
        span = reference_span_ms or min(bar.span_ms for t in self._tracks for bar in t.bars)
        self._sim_ms_per_second = bars_per_second * span
        self._carry = 0.0

    # ---------------------------------------------------------------------------------- inspection

    @property
    def clock(self) -> SimClock:
        return self._clock

    @property
    def epoch_ms(self) -> int:
        return self._epoch

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(track.symbol for track in self._tracks)

    @property
    def sim_ms_per_second(self) -> float:
        """Simulated milliseconds per wall-clock second when paced by :meth:`run`."""
        return self._sim_ms_per_second

    def _track(self, symbol: str) -> _Track:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise KeyError(f"no series for {symbol!r} (replaying {', '.join(self.symbols)})") from None

    def series(self, symbol: str) -> Series:
        return self._track(symbol).series

    def provenance(self, symbol: str) -> Provenance:
        return self._track(symbol).series.provenance

    def price(self, symbol: str) -> int:
        """The last tick's price (before the first tick: the first bar's open), in price units."""
        track = self._track(symbol)
        return track.prices[track.r - 1] if track.done else track.prices[0]

    def current_bar(self, symbol: str) -> Bar:
        """The whole bar the last tick belongs to (the first bar before any tick), with ``ts_ms`` moved
        to its simulated open time; prices and volume as in the source."""
        track = self._track(symbol)
        loops, index = self._bar_position(track)
        ts_ms = self._epoch + loops * track.period + track.bar_offsets[index]
        return replace(track.bars[index], ts_ms=ts_ms)

    def source_bar(self, symbol: str) -> Bar:
        """The same bar as :meth:`current_bar` with its real historical ``ts_ms`` (as in the source)."""
        track = self._track(symbol)
        return track.bars[self._bar_position(track)[1]]

    @staticmethod
    def _bar_position(track: _Track) -> tuple[int, int]:
        loops, rest = divmod(max(track.done - 1, 0), track.n_ticks)
        return loops, rest // TICKS_PER_BAR

    def loops(self, symbol: str) -> int:
        """How many times the instrument's series has been replayed to its end."""
        return self._track(symbol).loops

    def next_tick_ms(self) -> int:
        """The simulated time of the next tick of any instrument."""
        return self._heap[0][0]

    def stats(self, symbol: str) -> MarketStats:
        """Price, change, high, low and volume over the last 24 hours of simulated time, or over the
        replayed window when that is shorter (``full_window`` False); see :class:`MarketStats`."""
        track = self._track(symbol)
        now = self._clock.now_ms()
        last = track.done - 1
        price = track.prices[track.r - 1] if track.done else track.prices[0]
        start = now - DAY_MS
        if start < self._epoch:
            full, window, first, reference = False, now - self._epoch, 0, track.prices[0]
        else:
            loops, rest = divmod(start - self._epoch, track.period)
            first = loops * track.n_ticks + bisect_right(track.offsets, rest)
            full, window, reference = True, DAY_MS, track.prices[(first - 1) % track.n_ticks]
        if first > last:
            high = low = price
            volume = 0
        else:
            high, low = track.extremes(first, last)
            volume = track.volume(first, last)
        change = (Decimal(price - reference) * 100 / reference).quantize(_PERCENT_QUANTUM, ROUND_HALF_EVEN)
        return MarketStats(symbol, now, price, reference, change, high, low, volume, window, full)

    def price_range(self, symbol: str, since_ms: int) -> PriceRange:
        """The low and high of the ticks replayed at or after ``since_ms`` up to now (see
        :class:`PriceRange`): what a client that lost its feed at ``since_ms`` missed. The replay is a
        fixed function of time, so the whole run since the epoch is retained: a start before the epoch is
        clamped to it, one after now to now. Costs two bisections and two table lookups."""
        track = self._track(symbol)
        now = self._clock.now_ms()
        start = min(max(since_ms, self._epoch), now)
        loops, rest = divmod(start - self._epoch, track.period)
        first = loops * track.n_ticks + bisect_left(track.offsets, rest)
        last = track.done - 1
        if first > last:
            price = self.price(symbol)
            return PriceRange(symbol, start, now, price, price)
        high, low = track.extremes(first, last)
        return PriceRange(symbol, start, now, low, high)

    # ----------------------------------------------------------------------------------- listeners

    def add_listener(self, listener: TickListener) -> None:
        """Call ``listener`` for every tick from now on (in the order listeners were added)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: TickListener) -> None:
        self._listeners.remove(listener)

    # -------------------------------------------------------------------------------------- stepping

    def advance(self, n_bars: int) -> int:
        """Replay ticks in time order until ``n_bars`` bars (of any instruments) have closed; the clock
        ends at the last tick's time. Returns the number of ticks replayed."""
        if n_bars < 0:
            raise ValueError("n_bars must not be negative")
        return self._run(_FOREVER, _FOREVER, n_bars) if n_bars else 0

    def advance_ticks(self, n_ticks: int) -> int:
        """Replay the next ``n_ticks`` ticks; returns how many (always ``n_ticks``)."""
        if n_ticks < 0:
            raise ValueError("n_ticks must not be negative")
        return self._run(_FOREVER, n_ticks, _FOREVER) if n_ticks else 0

    def advance_to(self, t_ms: int) -> int:
        """Replay every tick up to and including ``t_ms`` and move the clock there; returns the ticks."""
        done = self._run(t_ms, _FOREVER, _FOREVER)
        if t_ms > self._clock.now_ms():
            self._clock.advance_to(t_ms)
        return done

    def advance_by(self, delta_ms: int) -> int:
        """:meth:`advance_to` ``delta_ms`` later than now."""
        if delta_ms < 0:
            raise ValueError("delta_ms must not be negative")
        return self.advance_to(self._clock.now_ms() + delta_ms)

    def advance_wall(self, seconds: float) -> int:
        """Advance by ``seconds`` of wall time at the replay pace (fractions of a ms carried over)."""
        self._carry += seconds * self._sim_ms_per_second
        whole = int(self._carry)
        self._carry -= whole
        return self.advance_by(whole)

    def ticks(self, limit: int | None = None) -> Iterator[Tick]:
        """Replay and yield ticks one by one (endless unless ``limit``); slower than :meth:`advance`,
        meant for tests and tools. Listeners are called as usual."""
        produced: list[Tick] = []

        def capture(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
            produced.append(Tick(symbol, ts_ms, price, phase, bar))

        count = 0
        while limit is None or count < limit:
            self._listeners.append(capture)
            try:
                self._run(_FOREVER, 1, _FOREVER)
            finally:
                self._listeners.remove(capture)
            count += 1
            yield produced.pop()

    async def run(
        self,
        stop: asyncio.Event,
        *,
        interval_s: float = 0.05,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Replay at the configured pace until ``stop`` is set: every ``interval_s`` the clock moves to
        where ``monotonic`` time says it should be (so a slow step is caught up, never drifts)."""
        wall_start = monotonic()
        sim_start = self._clock.now_ms()
        while not stop.is_set():
            target = sim_start + int((monotonic() - wall_start) * self._sim_ms_per_second)
            if target > self._clock.now_ms():
                self.advance_to(target)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    def _run(self, until: int, max_ticks: int, max_closes: int) -> int:
        """The hot loop: replay ticks with time <= ``until`` until ``max_ticks`` ticks or ``max_closes``
        bar closes. Runs of one instrument are replayed without touching the heap."""
        heap = self._heap
        tracks = self._tracks
        clock = self._clock
        listeners = tuple(self._listeners)
        floor = clock.now_ms()  # the clock never goes back, even if moved ahead by someone else
        ticks = closes = 0
        while ticks < max_ticks and closes < max_closes:
            t, i = heap[0]
            if t > until:
                break
            if len(heap) == 1:
                other_t, other_i = _FOREVER, 0
            elif len(heap) == 2 or heap[1] < heap[2]:
                other_t, other_i = heap[1]
            else:
                other_t, other_i = heap[2]
            track = tracks[i]
            offsets, n, r, base = track.offsets, track.n_ticks, track.r, track.base
            while True:
                if t > floor:
                    clock._now_ms = t  # the simulator owns the clock; a method call per tick costs
                index = r
                phase = r & 3
                r += 1
                if r == n:
                    r = 0
                    base += track.period
                    track.base = base
                    track.loops += 1
                track.r = r
                ticks += 1
                if listeners:
                    bar = track.current
                    if phase == 0 or bar is None:  # one Bar per bar, and only for listeners
                        source = track.bars[index >> 2]
                        bar = Bar(
                            t - phase * (source.span_ms >> 2),
                            source.span_ms,
                            source.open,
                            source.high,
                            source.low,
                            source.close,
                            source.volume,
                        )
                        track.current = bar
                    price = track.prices[index]
                    for listener in listeners:
                        listener(track.symbol, t, price, phase, bar)
                elif phase == 0:
                    track.current = None
                t = base + offsets[r]
                if phase == 3:
                    closes += 1
                    if closes >= max_closes:
                        break
                if ticks >= max_ticks or t > until or t > other_t or (t == other_t and i > other_i):
                    break
            heapq.heapreplace(heap, (t, i))
        return ticks
