"""What a backtest replays: the instrument, the range on real or simulated dates, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents_examples.trading.backtest.market import BacktestError, parse_moment, select
from agents_examples.trading.exchange.market.instruments import SOLANA
from agents_examples.trading.exchange.market.sources import HISTORICAL_REPLAY, load_market_data

JAN_1_2025 = 1_735_689_600_000
DAY = 86_400_000


def _real_sol_installed() -> bool:
    return load_market_data([SOLANA]).series["SOL"].provenance.real


def test_dates_and_date_times_are_utc_and_a_date_as_the_end_means_the_whole_day() -> None:
    assert parse_moment("2025-01-01") == JAN_1_2025
    assert parse_moment("2025-01-01", end=True) == JAN_1_2025 + DAY
    assert parse_moment("2025-01-01T06:30") == JAN_1_2025 + 6 * 3_600_000 + 30 * 60_000
    assert parse_moment("2025-01-01T06:30Z", end=True) == JAN_1_2025 + 6 * 3_600_000 + 30 * 60_000
    assert parse_moment("2025-01-01T02:00+02:00") == JAN_1_2025
    with pytest.raises(BacktestError, match="ISO 8601"):
        parse_moment("01/02/2025")


def test_synthetic_bars_fill_the_range_on_the_simulated_clock() -> None:
    day = select("bitcoin", "2025-01-01", "2025-01-01", synthetic=True, seed=3)
    assert day.instrument.symbol == "BTC"
    assert len(day.series.bars) == 1440 and day.interval == "1m"
    assert day.start_ms == JAN_1_2025 and day.end_ms == JAN_1_2025 + DAY
    assert day.provenance.label == "synthetic" and day.seed == 3
    hourly = select("ETH", "2025-01-01", "2025-01-07", synthetic=True, interval="1h")
    assert len(hourly.series.bars) == 7 * 24
    assert select("BTC", "2025-01-01", "2025-01-01", synthetic=True, seed=3).series == day.series
    assert select("BTC", "2025-01-01", "2025-01-01", synthetic=True, seed=4).series != day.series


def test_unknown_symbols_empty_ranges_and_wrong_options_are_refused_with_reasons() -> None:
    with pytest.raises(BacktestError, match=r"unknown instrument 'DOGE'.*BTC \(bitcoin\)"):
        select("DOGE", synthetic=True)
    with pytest.raises(BacktestError, match="range is empty"):
        select("BTC", "2025-02-01", "2025-01-01", synthetic=True)
    with pytest.raises(BacktestError, match="more than a backtest replays"):
        select("BTC", "2000-01-01", "2025-01-01", synthetic=True)
    with pytest.raises(BacktestError, match="unknown interval"):
        select("BTC", synthetic=True, interval="7m")
    with pytest.raises(BacktestError, match="--synthetic bars only"):
        select("BTC", interval="1m")


def test_without_installed_data_a_historical_backtest_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A2A_EXCHANGE_MARKET_CACHE", str(tmp_path))
    with pytest.raises(BacktestError, match=r"no historical bars of BTC.*install.*--synthetic"):
        select("BTC", "2020-01-01", "2020-01-05")


@pytest.mark.skipif(not _real_sol_installed(), reason="Jesse's candles are not installed")
def test_historical_ranges_are_the_series_real_dates() -> None:
    whole = select("SOL")
    assert whole.provenance.label == HISTORICAL_REPLAY and whole.seed is None
    assert len(whole.series.bars) == 300 and whole.interval == "1m"
    hour = select("solana", "2023-01-01T01:00Z", "2023-01-01T02:00Z")
    assert len(hour.series.bars) == 60
    assert hour.start_ms == parse_moment("2023-01-01T01:00Z")  # simulated time is the real time
    assert hour.provenance.bars == 60 and hour.provenance.first_ts_ms == hour.start_ms
    with pytest.raises(BacktestError, match=r"no SOL bars from 2024-01-01.*covers 2023-01-01T00:00Z"):
        select("SOL", "2024-01-01", "2024-02-01")
