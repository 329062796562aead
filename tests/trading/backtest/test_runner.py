"""The backtest run: the same engine, exchange and strategy in one process, repeatable to the byte."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents_examples.trading.backtest import config as config_file
from agents_examples.trading.backtest import report, runner
from agents_examples.trading.backtest.market import BacktestError
from agents_examples.trading.backtest.runner import BacktestResult
from tests.trading.backtest.support import config_doc, inputs


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    selection, settings = inputs()
    return runner.run(selection, settings)


def test_two_runs_of_the_same_data_and_config_give_the_same_summary_bytes(result: BacktestResult) -> None:
    selection, settings = inputs()
    again = runner.run(selection, settings)
    assert report.summary_bytes(again) == report.summary_bytes(result)
    assert [t.profit_loss for t in again.trades] == [t.profit_loss for t in result.trades]


def test_another_seed_gives_other_bars_and_another_summary(result: BacktestResult) -> None:
    selection, settings = inputs(seed=12)
    other = runner.run(selection, settings)
    assert report.summary_bytes(other) != report.summary_bytes(result)


def test_a_seeded_synthetic_path_trades_through_the_engine_and_the_exchange(result: BacktestResult) -> None:
    assert result.bars == 2 * 1440
    assert result.trades, "the strategy's crosses should have opened and closed positions"
    figures = result.performance
    assert figures.total_closed_trades >= 1
    assert figures.fees_paid > 0  # the exchange's fee model charged both legs
    # The engine's book adds up: what it holds now is the start plus every trade's P/L.
    realized = sum((t.profit_loss for t in result.trades), Decimal(0))
    assert figures.realized_profit_loss == realized
    expected = result.config.starting_balance + figures.total_profit_loss
    assert figures.portfolio_balance == expected
    # The signals reached the engine as posts, and each buy or sell became an execution record.
    assert result.tally.generated["buy"] >= 1 and result.tally.executions["EXECUTED"] >= 1
    reasons = {t.close_reason.value for t in result.trades}
    assert reasons <= {"signal", "stop_loss", "take_profit", "stale_trade", "risk_limit"}


def test_a_result_shows_itself_in_one_short_line(result: BacktestResult) -> None:
    # asyncio.run formats the finished task's result; a year of bars in a repr took seconds.
    text = repr(result)
    assert text.startswith("BacktestResult(BTC, 2880 bars,") and len(text) < 200
    assert "bars=(" not in repr(result.selection)


def test_every_fill_is_marked_on_the_curve_in_time_order(result: BacktestResult) -> None:
    sells = [m for m in result.markers if m.side == "sell"]
    buys = [m for m in result.markers if m.side == "buy"]
    assert len(sells) == len(result.trades)
    assert len(buys) == len({t.position_id for t in result.trades} | {p.id for p in result.open_positions})
    assert [m.ts_ms for m in result.markers] == sorted(m.ts_ms for m in result.markers)
    times = [ts for ts, _ in result.curve]
    assert times == sorted(times)
    assert times[0] == result.selection.start_ms and result.curve[0][1] == result.config.starting_balance
    assert times[-1] <= result.selection.end_ms


def test_progress_is_reported_up_to_the_last_bar() -> None:
    selection, settings = inputs()
    seen: list[tuple[int, int]] = []
    runner.run(selection, settings, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2880, 2880)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) > 10


def test_a_strategy_block_the_strategy_refuses_is_a_backtest_error() -> None:
    selection, _ = inputs()
    with pytest.raises(BacktestError, match=r"strategy\.(slowWindow|fastWindow)"):
        config_file.parse(config_doc(fastWindow=30, slowWindow=10))
    settings = config_file.parse(config_doc(symbols=["ETH"]))
    with pytest.raises(BacktestError, match="does not include BTC"):
        runner.run(selection, settings)
