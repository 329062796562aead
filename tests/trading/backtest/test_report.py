"""The report directory: summary.json (performance and parameters only), trades.csv, equity.png."""

from __future__ import annotations

import csv
import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from agents_examples.trading.backtest import report, runner
from agents_examples.trading.backtest.runner import BacktestResult
from tests.trading.backtest.support import inputs

PERFORMANCE_FIELDS = {
    "portfolioBalanceSol",
    "totalProfitLossSol",
    "realizedProfitLossSol",
    "unrealizedProfitLossSol",
    "averageReturn",
    "winRate",
    "totalClosedTrades",
    "totalOpenPositions",
    "winningTrades",
    "losingTrades",
    "grossProfitSol",
    "grossLossSol",
    "profitFactor",
    "expectancy",
    "maxDrawdownPercent",
    "sharpeRatio",
    "sortinoRatio",
    "feesPaidSol",
    "averageHoldingMinutes",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Path]:
    selection, settings = inputs()
    result = runner.run(selection, settings)
    out = tmp_path_factory.mktemp("report")
    report.write(result, out)
    return result, out


def test_the_summary_holds_the_engines_performance_and_the_run_parameters(
    written: tuple[BacktestResult, Path],
) -> None:
    result, out = written
    text = (out / "summary.json").read_text()
    doc = json.loads(text, parse_float=Decimal)
    assert set(doc) == {"performance", "run", "signals"}
    assert set(doc["performance"]) == PERFORMANCE_FIELDS
    assert doc["performance"]["totalClosedTrades"] == result.performance.total_closed_trades
    assert Decimal(str(doc["performance"]["portfolioBalanceSol"])) == result.performance.portfolio_balance
    run = doc["run"]
    assert run["symbol"] == "BTC" and run["instrument"] == "bitcoin"
    assert run["data"]["source"] == "synthetic" and run["data"]["seed"] == 11
    assert run["bars"] == 2880 and run["barSpan"] == "1m"
    assert run["from"] == "2025-03-01T00:00Z" and run["to"] == "2025-03-03T00:00Z"
    assert run["startingBalance"] == 10000
    assert run["strategy"]["fastWindow"] == 5
    assert run["tradingConfig"]["stopLoss"]["defaultPercentage"] == -3
    assert run["tradingConfig"]["signals"]["sources"] == ["self"]
    assert run["fillModel"]["feeRate"] == "0.001"
    # Sorted keys at every level, and nothing that changes from run to run (ids, wall time).
    assert text == report.encode(json.loads(text, parse_float=Decimal)) + "\n"
    for trade in result.trades:
        assert trade.id not in text and trade.position_id not in text
    assert "agent_" not in text and "nx_test_" not in text


def test_the_csv_lists_every_swap_with_its_exact_figures(written: tuple[BacktestResult, Path]) -> None:
    result, out = written
    with (out / "trades.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == report.TRADE_COLUMNS
    body = rows[1:]
    assert len(body) == len(result.trades) >= 1
    positions: dict[str, str] = {}
    for number, (row, trade) in enumerate(zip(body, result.trades, strict=True), start=1):
        record = dict(zip(report.TRADE_COLUMNS, row, strict=True))
        assert record["trade"] == str(number)
        assert positions.setdefault(trade.position_id, record["position"]) == record["position"]
        assert record["symbol"] == "BTC"
        assert Decimal(record["amount"]) == trade.amount
        assert Decimal(record["purchasePrice"]) == trade.purchase_price
        assert Decimal(record["salePrice"]) == trade.sale_price
        assert Decimal(record["profitLoss"]) == trade.profit_loss
        assert Decimal(record["fees"]) == trade.fees
        assert record["closeReason"] == trade.close_reason.value
        assert record["partial"] == ("true" if trade.partial else "false")
        assert record["saleTime"].startswith("2025-03-0") and record["saleTime"].endswith("Z")
    assert sorted(set(positions.values()), key=int) == [str(n) for n in range(1, len(positions) + 1)]


def test_the_chart_is_a_1200_by_800_png(written: tuple[BacktestResult, Path]) -> None:
    from PIL import Image

    _, out = written
    path = out / "equity.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size == report.CHART_SIZE_PX == (1200, 800)
        image.load()
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 10  # something was drawn, not a blank canvas


def test_a_run_without_trades_writes_a_header_only_csv_and_still_draws(
    written: tuple[BacktestResult, Path], tmp_path: Path
) -> None:
    result, _ = written
    empty = dataclasses.replace(result, trades=[], markers=[], open_positions=[])
    report.write(empty, tmp_path)
    assert (tmp_path / "trades.csv").read_text() == ",".join(report.TRADE_COLUMNS) + "\n"
    assert (tmp_path / "equity.png").stat().st_size > 1000
