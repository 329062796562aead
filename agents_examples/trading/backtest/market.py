"""What a backtest replays: one instrument's bars over a date range, historical or synthetic.

``--symbol`` names an instrument the exchange lists (symbol or id, any case: ``BTC``, ``bitcoin``).

- **Historical** (the default): the instrument's installed real series (docs/trading.md, "Market
  data"). ``--from`` and ``--to`` are the series' own, real dates: the bars opening in the range are
  kept and replayed with the simulation clock set to the first one's real open time, so simulated time
  is the historical time (weekend gaps included). Nothing installed for the instrument, or no bar in
  the range, is a :class:`BacktestError` that says what is there.
- **Synthetic** (``--synthetic``): the exchange's seeded generator (``sources.synthetic_bars``, the
  instrument's model) at ``--interval`` bars (default 1 minute), as many as fit in the range, the
  first opening at ``--from`` on the simulated clock. The same seed, range and interval give the same
  bars.

Dates are ISO 8601: ``2025-01-01`` or ``2025-01-01T12:30`` (``Z`` or an offset allowed; none means
UTC). A date alone as ``--to`` means the end of that day, so ``--from 2025-01-01 --to 2025-12-31`` is
the whole year 2025 (525,600 one-minute bars).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from agents_examples.trading.exchange.clock import DAY_MS
from agents_examples.trading.exchange.market.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    UnknownInstrumentError,
)
from agents_examples.trading.exchange.market.simulator import DEFAULT_EPOCH_MS
from agents_examples.trading.exchange.market.sources import (
    Provenance,
    Series,
    load_market_data,
    span_label,
    synthetic_series,
)

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
INTERVALS: Final = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "1d": DAY_MS,
}
DEFAULT_INTERVAL: Final = "1m"
DEFAULT_SYNTHETIC_DAYS: Final = 30
MAX_BARS: Final = 5_000_000  # about 9.5 years of 1-minute bars: past it the replay's tables get large
INSTALL_HINT: Final = "python -m agents_examples.trading.exchange.market.install"


class BacktestError(Exception):
    """A backtest that cannot run as asked; the message says why and what would work."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The bars to replay and where they come from.

    ``series`` holds only the range's bars (its provenance counts those); ``requested_from`` and
    ``requested_to`` are the range as given (None: not given), ``seed`` the synthetic seed (None for
    historical data).
    """

    instrument: Instrument
    series: Series = field(repr=False)
    interval: str
    requested_from: str | None
    requested_to: str | None
    seed: int | None

    @property
    def provenance(self) -> Provenance:
        return self.series.provenance

    @property
    def start_ms(self) -> int:
        """The first bar's open time (simulated and, for historical data, real)."""
        return self.series.bars[0].ts_ms

    @property
    def end_ms(self) -> int:
        """The last bar's end."""
        last = self.series.bars[-1]
        return last.ts_ms + last.span_ms


def parse_moment(text: str, *, end: bool = False) -> int:
    """An ISO 8601 date or date-time as ms since the Unix epoch (UTC unless an offset is given).

    With ``end``, a date alone means the end of that day (00:00 of the next); a date-time is taken as
    it is. Raises :class:`BacktestError` for anything else.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise BacktestError(
            f"{text!r} is not an ISO 8601 date (2025-01-31) or date-time (2025-01-31T12:00Z)"
        ) from None
    return int(moment.timestamp() * 1000)


def iso_minute(ts_ms: int) -> str:
    """Simulated ms as ``2025-01-01T00:00Z`` (what messages and the summary show)."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def instrument_named(name: str) -> Instrument:
    """The listed instrument ``name`` (symbol or id, any case); BacktestError naming the listed ones."""
    try:
        return DEFAULT_INSTRUMENTS.get(name)
    except UnknownInstrumentError as error:
        raise BacktestError(str(error)) from None


def select(
    symbol: str,
    start: str | None = None,
    end: str | None = None,
    *,
    synthetic: bool = False,
    seed: int = 0,
    interval: str | None = None,
    cache_dir: Path | None = None,
    stocks_file: Path | None = None,
) -> Selection:
    """The bars of ``symbol`` from ``start`` to ``end`` (see the module doc)."""
    instrument = instrument_named(symbol)
    if interval is not None and interval not in INTERVALS:
        raise BacktestError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    start_ms = parse_moment(start) if start else None
    end_ms = parse_moment(end, end=True) if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise BacktestError(f"the range is empty: --to {end} is not after --from {start}")
    if synthetic:
        series = _synthetic(instrument, start_ms, end_ms, seed, interval or DEFAULT_INTERVAL)
        return Selection(instrument, series, interval or DEFAULT_INTERVAL, start, end, seed)
    if interval is not None:
        raise BacktestError("--interval applies to --synthetic bars only (historical bars keep their span)")
    series = _historical(
        instrument, (start_ms, end_ms), (start, end), cache_dir=cache_dir, stocks_file=stocks_file
    )
    return Selection(instrument, series, span_label(series.provenance.span_ms), start, end, None)


def _historical(
    instrument: Instrument,
    window: tuple[int | None, int | None],
    asked: tuple[str | None, str | None],
    *,
    cache_dir: Path | None,
    stocks_file: Path | None,
) -> Series:
    start_ms, end_ms = window
    start, end = asked
    data = load_market_data([instrument], cache_dir=cache_dir, stocks_file=stocks_file)
    full = data.series[instrument.symbol]
    source = full.provenance
    if not source.real:
        raise BacktestError(
            f"no historical bars of {instrument.symbol} are installed ({source.note}); run "
            f"`{INSTALL_HINT}` or pass --synthetic"
        )
    low = start_ms if start_ms is not None else full.bars[0].ts_ms
    high = end_ms if end_ms is not None else full.bars[-1].ts_ms + 1
    bars = tuple(bar for bar in full.bars if low <= bar.ts_ms < high)
    if not bars:
        wanted = f"from {start or 'the start'} to {end or 'the end'}"
        raise BacktestError(
            f"no {instrument.symbol} bars {wanted}: the installed series ({source.series}) covers "
            f"{source.first_date} to {source.last_date} ({source.bars:,} x {source.bar_span} bars)"
        )
    provenance = dataclasses.replace(
        source, first_ts_ms=bars[0].ts_ms, last_ts_ms=bars[-1].ts_ms, bars=len(bars)
    )
    return Series(instrument.symbol, bars, provenance)


def _synthetic(
    instrument: Instrument, start_ms: int | None, end_ms: int | None, seed: int, interval: str
) -> Series:
    span = INTERVALS[interval]
    first = start_ms if start_ms is not None else DEFAULT_EPOCH_MS
    last = end_ms if end_ms is not None else first + DEFAULT_SYNTHETIC_DAYS * DAY_MS
    if last <= first:
        raise BacktestError(f"the range is empty: it ends at {iso_minute(last)}, before it starts")
    count = -(-(last - first) // span)
    if count > MAX_BARS:
        raise BacktestError(
            f"{count:,} bars of {interval} are more than a backtest replays ({MAX_BARS:,}); "
            "shorten the range or use a longer --interval"
        )
    return synthetic_series(
        instrument, seed=seed, bars=count, note="backtest --synthetic", span_ms=span, start_ts_ms=first
    )
