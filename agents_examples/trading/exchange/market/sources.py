"""Where the exchange's bars come from, each series normalised to :class:`Bar` and carrying its provenance.

Three sources, nothing fetched at run time:

- **Crypto candles from the MIT-licensed ``jesse`` wheel** (BTC, ETH, SOL). Jesse keeps real exchange
  candles as Python literals in ``tests/data/*.py``. The install step (``install.py``) downloads the
  wheel, reads those arrays with ``ast`` (:func:`extract_jesse_wheel`), picks for each instrument the
  series covering the longest stretch of time, and writes a CSV cache with Jesse's licence beside it
  (:func:`write_jesse_cache`); the exchange reads only that cache (:func:`load_jesse_cache`).
- **Public-domain daily stock bars of ``bokeh-sampledata``** (AAPL, GOOG, IBM, MSFT, FB), installed with
  ``pip install --no-deps`` and read straight from its ``_data/stocks.csv.gz`` with ``csv`` and ``gzip``
  (:func:`load_bokeh_stocks`); the package itself (and pandas) is never imported.
- **A seeded synthetic generator** (geometric Brownian motion with jumps, :func:`synthetic_bars`) for the
  tests and for any instrument whose data is not installed, labelled so wherever it is shown.

:func:`load_market_data` puts them together: real bars where installed, synthetic otherwise, and says why.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import itertools
import json
import math
import os
import random
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any, Final

from agents_examples.trading.exchange.clock import DAY_MS
from agents_examples.trading.exchange.market.bars import PRICE_SCALE, QTY_SCALE, Bar, to_price, to_qty
from agents_examples.trading.exchange.market.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    InstrumentKind,
)

HISTORICAL_REPLAY: Final = "historical replay"
SYNTHETIC: Final = "synthetic"

CACHE_ENV: Final = "A2A_EXCHANGE_MARKET_CACHE"
INSTALL_COMMAND: Final = "python -m agents_examples.trading.exchange.market.install"

JESSE_PACKAGE: Final = "jesse"
JESSE_VERSION: Final = "3.5.3"
JESSE_DATA_DIR: Final = "tests/data/"
JESSE_LICENCE: Final = "MIT"
JESSE_MANIFEST: Final = "manifest.json"
JESSE_LICENCE_FILE: Final = "LICENSE-jesse.txt"
CACHE_FORMAT: Final = 1

BOKEH_DISTRIBUTION: Final = "bokeh-sampledata"
BOKEH_MODULE: Final = "bokeh_sampledata"
BOKEH_VERSION: Final = "2026.1"
BOKEH_STOCKS_FILE: Final = "_data/stocks.csv.gz"
BOKEH_LICENCE: Final = (
    "Public Domain (Quandl WIKI Prices, per bokeh_sampledata/stocks.py and the wheel's "
    "licenses/datasets.json); the package's own code is BSD-3-Clause"
)

# Which of Jesse's test arrays hold which instrument. The wheel names only two of them (test_candles_btc,
# test_candles_sol); the others were told apart by their price level at their dates (BTC about $4,100 on
# 2019-03-29, $7,700 to $11,400 in June 2019, $7,100 to $8,600 in Dec 2019, $35,000 in June 2021; ETH
# $125 to $315 through 2019 and early 2020) and by the wheel's own comment on test_candles_1 ("ETH traded
# on Bitfinex"). Every one is real exchange data; fake_test_candles (1, 2, 3, ...) is left out.
JESSE_CANDIDATES: Final[Mapping[str, tuple[str, ...]]] = {
    "BTC": ("test_candles_0", "test_candles_3", "test_candles_15", "wavetrend_candles", "test_candles_btc"),
    "ETH": (
        "test_candles_1",
        "test_candles_2",
        *(f"test_candles_{n}" for n in range(4, 15)),
        *(f"test_candles_{n}" for n in range(16, 20)),
    ),
    "SOL": ("test_candles_sol",),
}

_COLUMNS: Final = ("ts_ms", "span_ms", "open", "high", "low", "close", "volume")


class MarketDataError(Exception):
    """Market data that cannot be read or is not what it should be; the message says which and why."""


def default_cache_dir() -> Path:
    """Where the install step writes, and the exchange reads, the candle cache.

    ``$A2A_EXCHANGE_MARKET_CACHE`` when set, else ``<sys.prefix>/share/a2a-gateway/market-data``: inside
    the project's ``.venv`` (created by ``make``, ignored by git, removed by ``make clean``), next to the
    bokeh-sampledata package the same step installs there.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "share" / "a2a-gateway" / "market-data"


def _iso(ts_ms: int, span_ms: int) -> str:
    """A bar's open time: its date for daily or longer bars, else date, hour and minute (UTC)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    if span_ms % DAY_MS == 0 and ts_ms % DAY_MS == 0:
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def span_label(span_ms: int) -> str:
    """A bar span as ``1m``, ``4h``, ``1d`` (or ms when it is none of those)."""
    for unit_ms, unit in ((DAY_MS, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")):
        if span_ms % unit_ms == 0:
            return f"{span_ms // unit_ms}{unit}"
    return f"{span_ms}ms"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a series comes from: enough to cite it and to say what is real about it.

    ``first_ts_ms`` / ``last_ts_ms`` are the open times of the first and last bars as in the source (the
    real dates, before the replay shifts them onto the simulation clock). ``label`` is
    ``"historical replay"`` for real data and ``"synthetic"`` otherwise; ``note`` says why a series is
    synthetic, ``adjustment`` what was changed in real data (stock splits).
    """

    symbol: str
    label: str
    package: str | None
    version: str | None
    file: str | None
    series: str
    licence: str
    first_ts_ms: int
    last_ts_ms: int
    span_ms: int
    bars: int
    notice: str | None = None
    adjustment: str | None = None
    note: str | None = None

    @property
    def real(self) -> bool:
        return self.label == HISTORICAL_REPLAY

    @property
    def first_date(self) -> str:
        return _iso(self.first_ts_ms, self.span_ms)

    @property
    def last_date(self) -> str:
        return _iso(self.last_ts_ms, self.span_ms)

    @property
    def bar_span(self) -> str:
        return span_label(self.span_ms)

    def as_dict(self) -> dict[str, object]:
        """The provenance as JSON-ready camelCase fields (for the API's metadata)."""
        return {
            "symbol": self.symbol,
            "label": self.label,
            "package": self.package,
            "version": self.version,
            "file": self.file,
            "series": self.series,
            "licence": self.licence,
            "notice": self.notice,
            "firstDate": self.first_date,
            "lastDate": self.last_date,
            "barSpan": self.bar_span,
            "bars": self.bars,
            "adjustment": self.adjustment,
            "note": self.note,
        }


def check_bars(bars: Sequence[Bar]) -> None:
    """Raise ``ValueError`` unless the bars form a replayable series.

    At least one bar; positive prices with low <= open, close <= high; volume not negative; a span of
    at least 4 ms (so the four ticks of a bar have distinct times); each bar starting no earlier than the
    previous one ends (gaps are allowed, overlaps are not).
    """
    if not bars:
        raise ValueError("a series needs at least one bar")
    previous_end = None
    for index, bar in enumerate(bars):
        if bar.span_ms < 4:
            raise ValueError(f"bar {index}: span {bar.span_ms} ms is under 4 ms")
        if not (0 < bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
            raise ValueError(f"bar {index}: inconsistent prices {bar}")
        if bar.volume < 0:
            raise ValueError(f"bar {index}: negative volume")
        if previous_end is not None and bar.ts_ms < previous_end:
            raise ValueError(f"bar {index} at {bar.ts_ms} starts before the previous bar ends")
        previous_end = bar.ts_ms + bar.span_ms


@dataclass(frozen=True, slots=True)
class Series:
    """The bars of one instrument, oldest first, with their provenance (checked on creation)."""

    symbol: str
    bars: tuple[Bar, ...]
    provenance: Provenance

    def __post_init__(self) -> None:
        check_bars(self.bars)


# --------------------------------------------------------------------------------------------------
# Jesse: the wheel's tests/data arrays -> a CSV cache -> Series


@dataclass(frozen=True, slots=True)
class JesseArray:
    """One candle array read from the wheel: its name, the file it is in, its bars and column order."""

    name: str
    file: str
    bars: tuple[Bar, ...]
    column_order: str

    @property
    def span_ms(self) -> int:
        return self.bars[0].span_ms

    @property
    def covered_ms(self) -> int:
        """The stretch of time the array covers, from its first bar's open to its last bar's end."""
        return self.bars[-1].ts_ms + self.bars[-1].span_ms - self.bars[0].ts_ms


@dataclass(frozen=True, slots=True)
class JesseExtract:
    """What the install step keeps from a Jesse wheel: the chosen array per symbol and the licence."""

    version: str
    licence_text: str
    series: Mapping[str, JesseArray]
    skipped: tuple[str, ...] = field(default=())

    @property
    def notice(self) -> str:
        return _copyright_line(self.licence_text)


def _copyright_line(licence_text: str) -> str:
    for line in licence_text.splitlines():
        if line.strip().lower().startswith("copyright"):
            return line.strip()
    return "Copyright (c) Jesse.Trade"


def _rows_from(node: ast.expr) -> list[Any]:
    """The literal rows of an array assignment: a list or tuple literal, ``np.array(<literal>)``, or
    ``<literal>[::-1]`` (Jesse writes some arrays newest first and reverses them)."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name != "array" or len(node.args) != 1:
            raise ValueError(f"a call to {name or 'something'} is not a candle literal")
        return _rows_from(node.args[0])
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        piece = node.slice
        reverse = piece.lower is None and piece.upper is None and piece.step is not None
        if reverse and piece.step is not None and ast.literal_eval(piece.step) == -1:
            return _rows_from(node.value)[::-1]
        raise ValueError("only a [::-1] slice is understood")
    value = ast.literal_eval(node)
    if not isinstance(value, list | tuple):
        raise ValueError("not a list of candles")
    return list(value)


def _units(value: object, scale_fn: Callable[[Decimal | int], int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not finite")
    # repr gives the shortest decimal that reads back as the same float: the figure the file holds.
    return scale_fn(Decimal(repr(value)) if isinstance(value, float) else value)


def _valid(open_: int, high: int, low: int, close: int) -> bool:
    return 0 < low <= min(open_, close) and max(open_, close) <= high


def _bars_from_rows(rows: Sequence[Any]) -> tuple[tuple[Bar, ...], str]:
    """Rows of six numbers as bars. Jesse's order is ``[ts_ms, open, close, high, low, volume]``; an
    array that is only consistent as ``[ts_ms, open, high, low, close, volume]`` (Jesse's
    ``wavetrend_candles``, commented "Order: epoch + OHLCV!") is read that way. The span is the most
    common step between bars (the smallest of equally common ones)."""
    if len(rows) < 2:
        raise ValueError("fewer than two candles (the bar span cannot be told)")
    parsed: list[tuple[int, int, int, int, int, int]] = []
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) != 6:
            raise ValueError(f"a candle is not six numbers: {row!r}")
        ts = row[0]
        if isinstance(ts, bool) or not isinstance(ts, int | float) or ts != int(ts):
            raise ValueError(f"timestamp {ts!r} is not whole milliseconds")
        parsed.append(
            (
                int(ts),
                _units(row[1], to_price),
                _units(row[2], to_price),
                _units(row[3], to_price),
                _units(row[4], to_price),
                _units(row[5], to_qty),
            )
        )
    steps = Counter(b[0] - a[0] for a, b in itertools.pairwise(parsed))
    if min(steps) <= 0:
        raise ValueError("timestamps are not strictly increasing")
    top = max(steps.values())
    span = min(step for step, count in steps.items() if count == top)
    if min(steps) < span:
        raise ValueError("candles closer together than the bar span")
    if all(_valid(o, h, lo, c) for _, o, c, h, lo, _ in parsed):
        order = "ts_ms,open,close,high,low,volume"
        bars = tuple(Bar(ts, span, o, h, lo, c, v) for ts, o, c, h, lo, v in parsed)
    elif all(_valid(o, h, lo, c) for _, o, h, lo, c, _ in parsed):
        order = "ts_ms,open,high,low,close,volume"
        bars = tuple(Bar(ts, span, o, h, lo, c, v) for ts, o, h, lo, c, v in parsed)
    else:
        raise ValueError("prices are consistent in neither column order")
    check_bars(bars)
    return bars, order


def read_jesse_arrays(wheel: zipfile.ZipFile) -> tuple[dict[str, JesseArray], tuple[str, ...]]:
    """Every candle array in the wheel's ``tests/data/*.py``, and why the others were skipped.

    Files are parsed with :mod:`ast` and arrays read with ``ast.literal_eval``; nothing is executed.
    Assignments whose name contains ``fake`` are left out.
    """
    arrays: dict[str, JesseArray] = {}
    skipped: list[str] = []
    names = sorted(
        name
        for name in wheel.namelist()
        if name.startswith(JESSE_DATA_DIR) and name.endswith(".py") and name.count("/") == 2
    )
    for file in names:
        try:
            tree = ast.parse(wheel.read(file).decode("utf-8"), filename=file)
        except (SyntaxError, UnicodeDecodeError) as error:
            skipped.append(f"{file}: unreadable ({error})")
            continue
        for statement in tree.body:
            if not (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
            ):
                continue
            name = statement.targets[0].id
            if "fake" in name.lower():
                skipped.append(f"{file}:{name}: fabricated values")
                continue
            try:
                bars, order = _bars_from_rows(_rows_from(statement.value))
            except (ValueError, TypeError, SyntaxError) as error:
                skipped.append(f"{file}:{name}: {error}")
                continue
            if name in arrays:
                skipped.append(f"{file}:{name}: a second array of that name")
                continue
            arrays[name] = JesseArray(name, file, bars, order)
    return arrays, tuple(skipped)


def select_jesse_series(
    arrays: Mapping[str, JesseArray], candidates: Mapping[str, Sequence[str]] = JESSE_CANDIDATES
) -> dict[str, JesseArray]:
    """For each symbol, its candidate array covering the longest stretch of time (then the most bars,
    then the first listed): e.g. 4-hourly BTC over five weeks beats a day of one-minute BTC."""
    chosen: dict[str, JesseArray] = {}
    for symbol, names in candidates.items():
        present = [(index, arrays[name]) for index, name in enumerate(names) if name in arrays]
        if present:
            _, best = max(present, key=lambda item: (item[1].covered_ms, len(item[1].bars), -item[0]))
            chosen[symbol] = best
    return chosen


def _wheel_version(wheel: zipfile.ZipFile) -> str:
    for name in wheel.namelist():
        if name.endswith(".dist-info/METADATA") and name.count("/") == 1:
            for line in wheel.read(name).decode("utf-8").splitlines():
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
    raise MarketDataError("the wheel has no .dist-info/METADATA with a Version")


def _wheel_licence(wheel: zipfile.ZipFile) -> str:
    for name in sorted(wheel.namelist()):
        parts = PurePosixPath(name).parts
        if len(parts) >= 2 and parts[0].endswith(".dist-info") and parts[-1].upper().startswith("LICEN"):
            return wheel.read(name).decode("utf-8")
    raise MarketDataError("the wheel carries no licence file; its data cannot be kept without it")


def extract_jesse_wheel(
    wheel_path: Path, candidates: Mapping[str, Sequence[str]] = JESSE_CANDIDATES
) -> JesseExtract:
    """Read a downloaded Jesse wheel (a zip; nothing is installed or run) into a :class:`JesseExtract`."""
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            version = _wheel_version(wheel)
            licence_text = _wheel_licence(wheel)
            arrays, skipped = read_jesse_arrays(wheel)
    except (OSError, zipfile.BadZipFile) as error:
        raise MarketDataError(f"cannot read the wheel {wheel_path}: {error}") from error
    chosen = select_jesse_series(arrays, candidates)
    if not chosen:
        raise MarketDataError(f"no known candle array in {wheel_path.name} ({len(arrays)} arrays read)")
    return JesseExtract(version=version, licence_text=licence_text, series=chosen, skipped=skipped)


def _csv_bytes(bars: Iterable[Bar]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for bar in bars:
        writer.writerow((bar.ts_ms, bar.span_ms, bar.open, bar.high, bar.low, bar.close, bar.volume))
    return out.getvalue().encode("ascii")


def write_jesse_cache(extract: JesseExtract, cache_dir: Path) -> Path:
    """Write the chosen arrays as CSV (integer units, see bars.py) with a manifest, Jesse's licence and a
    notice; files are written whole then renamed, the manifest last, so a cache is complete or absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, object] = {}
    for symbol, array in sorted(extract.series.items()):
        data = _csv_bytes(array.bars)
        csv_name = f"jesse-{symbol}.csv"
        _write_atomic(cache_dir / csv_name, data)
        entries[symbol] = {
            "csv": csv_name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "file": array.file,
            "array": array.name,
            "columnOrder": array.column_order,
            "bars": len(array.bars),
            "spanMs": array.span_ms,
            "firstTsMs": array.bars[0].ts_ms,
            "lastTsMs": array.bars[-1].ts_ms,
        }
    _write_atomic(cache_dir / JESSE_LICENCE_FILE, extract.licence_text.encode("utf-8"))
    notice = (
        f"The jesse-*.csv files here hold candles taken from the jesse {extract.version} wheel on PyPI\n"
        f"(tests/data/*.py), converted to integer units. {extract.notice}; MIT licence, full text in\n"
        f"{JESSE_LICENCE_FILE}. Written by `{INSTALL_COMMAND}`; not part of the repository.\n"
    )
    _write_atomic(cache_dir / "NOTICE.txt", notice.encode("utf-8"))
    manifest = {
        "format": CACHE_FORMAT,
        "package": JESSE_PACKAGE,
        "version": extract.version,
        "licence": JESSE_LICENCE,
        "notice": extract.notice,
        "licenceFile": JESSE_LICENCE_FILE,
        "series": entries,
    }
    path = cache_dir / JESSE_MANIFEST
    _write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _read_cached_bars(data: bytes, expected: int) -> tuple[Bar, ...]:
    reader = csv.reader(io.StringIO(data.decode("ascii")))
    if tuple(next(reader, ())) != _COLUMNS:
        raise ValueError("unexpected header")
    bars = tuple(Bar(*(int(cell) for cell in row)) for row in reader)
    if len(bars) != expected:
        raise ValueError(f"{len(bars)} bars, the manifest says {expected}")
    return bars


def load_jesse_cache(cache_dir: Path) -> dict[str, Series]:
    """The crypto series in a cache written by :func:`write_jesse_cache`; empty when there is no cache.

    Raises :class:`MarketDataError` for a cache that is there but unreadable or altered (checksums)."""
    path = cache_dir / JESSE_MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise MarketDataError(f"cannot read {path}: {error}") from error
    try:
        manifest = json.loads(raw)
        if manifest.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {manifest.get('format')!r}, expected {CACHE_FORMAT}")
        if not (cache_dir / str(manifest["licenceFile"])).is_file():
            raise ValueError("Jesse's licence file is missing beside the candles")
        result: dict[str, Series] = {}
        for symbol, entry in manifest["series"].items():
            data = (cache_dir / str(entry["csv"])).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(f"{entry['csv']} does not match its checksum")
            bars = _read_cached_bars(data, int(entry["bars"]))
            provenance = Provenance(
                symbol=symbol,
                label=HISTORICAL_REPLAY,
                package=str(manifest["package"]),
                version=str(manifest["version"]),
                file=str(entry["file"]),
                series=str(entry["array"]),
                licence=str(manifest["licence"]),
                notice=str(manifest["notice"]),
                first_ts_ms=bars[0].ts_ms,
                last_ts_ms=bars[-1].ts_ms,
                span_ms=bars[0].span_ms,
                bars=len(bars),
            )
            result[symbol] = Series(symbol, bars, provenance)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise MarketDataError(f"the candle cache in {cache_dir} is unusable: {error}") from error
    return result


# --------------------------------------------------------------------------------------------------
# bokeh-sampledata: _data/stocks.csv.gz -> Series


def bokeh_stocks_file() -> Path | None:
    """The installed ``bokeh_sampledata/_data/stocks.csv.gz``, found without importing the package."""
    try:
        spec = importlib.util.find_spec(BOKEH_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BOKEH_STOCKS_FILE
    return path if path.is_file() else None


_OHLC: Final = ("Open", "High", "Low", "Close")


def _split_ratio(previous: dict[str, str], row: dict[str, str]) -> Fraction | None:
    """The split between two days, told from the source's adjusted close (its factor steps) and
    confirmed by the price gap; dividends (small steps) are not splits. Floats only detect it: the
    ratio is a small fraction (2:1, 3:2) and the adjustment itself is exact."""
    factor_before = float(previous["Adj Close"]) / float(previous["Close"])
    factor_after = float(row["Adj Close"]) / float(row["Close"])
    step = factor_after / factor_before
    if 5 / 7 < step < 7 / 5:
        return None
    ratio = Fraction(step).limit_denominator(10)
    gap = float(row["Open"]) * float(ratio) / float(previous["Close"])
    return ratio if abs(gap - 1) < 0.25 else None


def _scaled(units: int, factor: Fraction) -> int:
    """``units * factor`` rounded half to even, in integers."""
    quotient, remainder = divmod(units * factor.numerator, factor.denominator)
    twice = 2 * remainder
    if twice > factor.denominator or (twice == factor.denominator and quotient % 2):
        quotient += 1
    return quotient


def _ratio_label(ratio: Fraction) -> str:
    return f"{ratio.numerator}:{ratio.denominator}"


def read_bokeh_stocks(path: Path, *, version: str | None) -> dict[str, Series]:
    """Daily bars per ticker from a ``stocks.csv.gz`` (Ticker, Date, Open, High, Low, Close, Volume,
    Adj Close); each bar opens at 00:00 UTC of its date and spans one day (weekends are gaps).

    The source's open, high, low, close and volume are as traded. So that a split does not replay as a
    crash, bars before each split (a step of the adjusted-close factor confirmed by the overnight gap)
    are divided by its ratio and their volume multiplied by it; the last bar stays as traded and
    dividends are not adjusted. The provenance says which splits were applied.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise MarketDataError(f"cannot read {path}: {error}") from error
    by_ticker: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_ticker.setdefault(row.get("Ticker", ""), []).append(row)
    result: dict[str, Series] = {}
    try:
        for ticker, ticker_rows in sorted(by_ticker.items()):
            ticker_rows.sort(key=lambda r: r["Date"])
            splits: list[tuple[int, Fraction]] = []
            for index in range(1, len(ticker_rows)):
                ratio = _split_ratio(ticker_rows[index - 1], ticker_rows[index])
                if ratio is not None:
                    splits.append((index, ratio))
            divisors = [Fraction(1)] * len(ticker_rows)
            for split_index, ratio in splits:
                for index in range(split_index):
                    divisors[index] *= ratio
            bars = []
            for row, divisor in zip(ticker_rows, divisors, strict=True):
                day = date.fromisoformat(row["Date"])
                ts_ms = (day - date(1970, 1, 1)).days * DAY_MS
                open_, high, low, close = (to_price(row[key]) for key in _OHLC)
                volume = to_qty(row["Volume"])
                if divisor != 1:
                    open_, high, low, close = (_scaled(p, 1 / divisor) for p in (open_, high, low, close))
                    volume = _scaled(volume, divisor)
                bars.append(Bar(ts_ms, DAY_MS, open_, high, low, close, volume))
            adjustment = None
            if splits:
                applied = ", ".join(
                    f"{ticker_rows[index]['Date']} ({_ratio_label(ratio)})" for index, ratio in splits
                )
                adjustment = (
                    f"split-adjusted: bars before each split ({applied}) divided by its ratio and "
                    "their volume multiplied by it; dividends not adjusted; the last bar as traded"
                )
            provenance = Provenance(
                symbol=ticker,
                label=HISTORICAL_REPLAY,
                package=BOKEH_DISTRIBUTION,
                version=version,
                file=f"{BOKEH_MODULE}/{BOKEH_STOCKS_FILE}",
                series=ticker,
                licence=BOKEH_LICENCE,
                first_ts_ms=bars[0].ts_ms,
                last_ts_ms=bars[-1].ts_ms,
                span_ms=DAY_MS,
                bars=len(bars),
                adjustment=adjustment,
            )
            result[ticker] = Series(ticker, tuple(bars), provenance)
    except (KeyError, ValueError, ArithmeticError, TypeError) as error:
        raise MarketDataError(f"{path} is not the expected stocks file: {error}") from error
    return result


def load_bokeh_stocks(path: Path | None = None) -> dict[str, Series]:
    """The installed bokeh-sampledata stocks (or those in ``path``); empty when it is not installed."""
    path = path or bokeh_stocks_file()
    if path is None:
        return {}
    try:
        version: str | None = importlib.metadata.version(BOKEH_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return read_bokeh_stocks(path, version=version)


# --------------------------------------------------------------------------------------------------
# Synthetic bars: geometric Brownian motion with jumps, deterministic for a seed

_YEAR_MS: Final = 365 * DAY_MS
SYNTHETIC_START_MS: Final = 1_704_067_200_000  # 2024-01-01T00:00Z


@dataclass(frozen=True, slots=True)
class SyntheticModel:
    """Parameters of the synthetic generator; rates and volatilities are per year of bar time."""

    start_price: str
    volatility: float
    drift: float = 0.0
    jumps_per_year: float = 6.0
    jump_mean: float = -0.01
    jump_stdev: float = 0.04
    volume: str = "1000"
    span_ms: int = 3_600_000
    bars: int = 2000
    substeps: int = 4


SYNTHETIC_MODELS: Final[Mapping[str, SyntheticModel]] = {
    "BTC": SyntheticModel("30000", 0.6, 0.1, 12, -0.01, 0.05, "250"),
    "ETH": SyntheticModel("2000", 0.75, 0.1, 12, -0.01, 0.06, "2500"),
    "SOL": SyntheticModel("100", 1.0, 0.1, 12, -0.02, 0.08, "40000"),
    "AAPL": SyntheticModel("150", 0.3, 0.08, 2, -0.02, 0.05, "50000000", DAY_MS, 750),
    "GOOG": SyntheticModel("120", 0.3, 0.08, 2, -0.02, 0.05, "20000000", DAY_MS, 750),
    "IBM": SyntheticModel("140", 0.25, 0.05, 2, -0.02, 0.04, "4000000", DAY_MS, 750),
    "MSFT": SyntheticModel("300", 0.28, 0.08, 2, -0.02, 0.05, "25000000", DAY_MS, 750),
    "FB": SyntheticModel("200", 0.4, 0.08, 2, -0.03, 0.07, "20000000", DAY_MS, 750),
}
_DEFAULT_MODELS: Final = {
    InstrumentKind.CRYPTO: SyntheticModel("10", 0.9, 0.0, 12, -0.02, 0.08, "100000"),
    InstrumentKind.STOCK: SyntheticModel("100", 0.3, 0.05, 2, -0.02, 0.05, "1000000", DAY_MS, 750),
}


def synthetic_bars(
    model: SyntheticModel, *, seed: int | str, bars: int | None = None, start_ts_ms: int = SYNTHETIC_START_MS
) -> tuple[Bar, ...]:
    """Bars from a jump-diffusion: log price steps ``(mu - sigma**2/2) dt + sigma sqrt(dt) Z`` plus, with
    probability ``lambda dt``, a normal jump; ``substeps`` steps per bar make its high and low. Each bar
    opens at the previous close; volume is lognormal and grows with the bar's move. The same model and
    seed give the same bars."""
    count = model.bars if bars is None else bars
    if count < 1:
        raise ValueError("at least one bar")
    rng = random.Random(f"a2a-paper-exchange/synthetic/{seed}")
    dt = model.span_ms / _YEAR_MS / model.substeps
    drift = (model.drift - model.volatility**2 / 2) * dt
    shock = model.volatility * math.sqrt(dt)
    jump_chance = model.jumps_per_year * dt
    base_volume = float(Decimal(model.volume) * QTY_SCALE)
    log_price = math.log(float(model.start_price))
    close = to_price(model.start_price)
    out: list[Bar] = []
    for index in range(count):
        open_ = high = low = close
        for _ in range(model.substeps):
            log_price += drift + shock * rng.gauss(0.0, 1.0)
            if rng.random() < jump_chance:
                log_price += rng.gauss(model.jump_mean, model.jump_stdev)
            price = max(1, round(math.exp(log_price) * PRICE_SCALE))
            high = max(high, price)
            low = min(low, price)
            close = price
        move = abs(math.log(close / open_))
        volume = round(base_volume * rng.lognormvariate(0.0, 0.4) * (1 + 25 * move))
        out.append(Bar(start_ts_ms + index * model.span_ms, model.span_ms, open_, high, low, close, volume))
    return tuple(out)


def synthetic_series(
    instrument: Instrument,
    *,
    seed: int = 0,
    bars: int | None = None,
    note: str | None = None,
    span_ms: int | None = None,
    start_ts_ms: int = SYNTHETIC_START_MS,
) -> Series:
    """A synthetic series for ``instrument`` (its model in :data:`SYNTHETIC_MODELS`, else a default per
    kind), labelled ``synthetic`` with ``note`` saying why it is not real data; ``span_ms`` and
    ``start_ts_ms`` override the model's bar span and the first bar's time (the backtest's range)."""
    model = SYNTHETIC_MODELS.get(instrument.symbol, _DEFAULT_MODELS[instrument.kind])
    if span_ms is not None:
        model = dataclasses.replace(model, span_ms=span_ms)
    generated = synthetic_bars(model, seed=f"{seed}/{instrument.symbol}", bars=bars, start_ts_ms=start_ts_ms)
    provenance = Provenance(
        symbol=instrument.symbol,
        label=SYNTHETIC,
        package=None,
        version=None,
        file=None,
        series=f"geometric Brownian motion with jumps, seed {seed}",
        licence="generated by this program (no third-party data)",
        first_ts_ms=generated[0].ts_ms,
        last_ts_ms=generated[-1].ts_ms,
        span_ms=model.span_ms,
        bars=len(generated),
        note=note,
    )
    return Series(instrument.symbol, generated, provenance)


# --------------------------------------------------------------------------------------------------
# Putting it together


@dataclass(frozen=True, slots=True)
class MarketData:
    """One series per instrument, and notes on anything that could not be loaded."""

    series: Mapping[str, Series]
    notes: tuple[str, ...] = ()

    @property
    def synthetic_symbols(self) -> tuple[str, ...]:
        return tuple(s for s, series in self.series.items() if not series.provenance.real)

    def provenance(self) -> tuple[Provenance, ...]:
        return tuple(series.provenance for series in self.series.values())


def load_market_data(
    instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS,
    *,
    cache_dir: Path | None = None,
    stocks_file: Path | None = None,
    seed: int = 0,
    use_real: bool = True,
) -> MarketData:
    """A series for every instrument: the installed real bars where there are some, else synthetic ones
    (seeded by ``seed``) whose provenance note says why. Reads local files only; never fetches."""
    wanted = list(instruments)
    notes: list[str] = []
    real: dict[InstrumentKind, dict[str, Series]] = {kind: {} for kind in InstrumentKind}
    missing: dict[InstrumentKind, str] = {kind: "real data not requested" for kind in InstrumentKind}
    kinds = {instrument.kind for instrument in wanted}
    if use_real and InstrumentKind.CRYPTO in kinds:
        directory = cache_dir or default_cache_dir()
        missing[InstrumentKind.CRYPTO] = f"no Jesse candles in {directory} (run `{INSTALL_COMMAND}`)"
        try:
            real[InstrumentKind.CRYPTO] = load_jesse_cache(directory)
        except MarketDataError as error:
            notes.append(str(error))
            missing[InstrumentKind.CRYPTO] = f"{error} (run `{INSTALL_COMMAND}`)"
    if use_real and InstrumentKind.STOCK in kinds:
        missing[InstrumentKind.STOCK] = f"{BOKEH_DISTRIBUTION} is not installed (run `{INSTALL_COMMAND}`)"
        try:
            real[InstrumentKind.STOCK] = load_bokeh_stocks(stocks_file)
        except MarketDataError as error:
            notes.append(str(error))
            missing[InstrumentKind.STOCK] = str(error)
    series: dict[str, Series] = {}
    for instrument in wanted:
        found = real[instrument.kind].get(instrument.symbol)
        if found is None:
            reason = missing[instrument.kind]
            if real[instrument.kind]:
                reason = f"the installed data has no {instrument.symbol}"
            found = synthetic_series(instrument, seed=seed, note=reason)
        series[instrument.symbol] = found
    return MarketData(series, tuple(notes))
