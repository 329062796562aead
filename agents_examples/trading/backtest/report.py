"""The backtest's report directory: ``summary.json``, ``trades.csv`` and ``equity.png``.

- **summary.json**: ``performance``, the engine's own figures (``GET /agents/:id/performance``'s fields,
  docs/trading.md "Performance"), ``run``, the parameters (instrument, data source and provenance, bar
  span, the replayed range, the starting balance, the effective ``tradingConfig`` and strategy, the
  exchange's fill model) and ``signals``, what became of the strategy's signals. Keys are sorted,
  amounts are exact decimal JSON numbers and nothing in it depends on the wall clock or on random ids,
  so the same data and config give the same bytes.
- **trades.csv**: the historical swaps (each sell of a position, partial take-profit sells included),
  oldest first, amounts exact. ``position`` numbers the positions in the order they were opened.
- **equity.png** (1200 x 800 px): the equity curve with each buy (▲) and sell (▼), and the drawdown from
  the running peak below it. The curve is the engine's book (cash plus holdings at the last price)
  sampled at up to 2,000 evenly spaced bars and after every fill; the summary's
  ``maxDrawdownPercent`` is the engine's, over its hourly balance snapshots. Drawn with matplotlib's
  Agg renderer (no display needed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from agents_examples.trading.backtest.market import iso_minute
from agents_examples.trading.backtest.runner import BacktestResult
from agents_examples.trading.engine.domain.models import ClosedTrade

SUMMARY_FILE: Final = "summary.json"
TRADES_FILE: Final = "trades.csv"
CHART_FILE: Final = "equity.png"
CHART_SIZE_PX: Final = (1200, 800)
CHART_DPI: Final = 100
DAY_MS: Final = 86_400_000
TRADE_COLUMNS: Final = (
    "trade",
    "position",
    "symbol",
    "purchaseTime",
    "saleTime",
    "amount",
    "purchasePrice",
    "salePrice",
    "changePercent",
    "profitLoss",
    "fees",
    "closeReason",
    "partial",
    "signalId",
)


def summary(result: BacktestResult) -> dict[str, Any]:
    """The summary document (see the module doc)."""
    selection = result.selection
    source = selection.provenance
    instrument = selection.instrument
    return {
        "performance": result.performance.to_doc(),
        "run": {
            "symbol": instrument.symbol,
            "instrument": instrument.id,
            "tokenAddress": instrument.token_address,
            "data": {
                "source": source.label,
                "series": source.series,
                "package": source.package,
                "version": source.version,
                "file": source.file,
                "licence": source.licence,
                "adjustment": source.adjustment,
                "seed": selection.seed,
            },
            "barSpan": selection.interval,
            "bars": result.bars,
            "from": iso_minute(selection.start_ms),
            "to": iso_minute(selection.end_ms),
            "requestedFrom": selection.requested_from,
            "requestedTo": selection.requested_to,
            "startingBalance": result.config.starting_balance,
            "tradingConfig": result.config.trading.to_doc(),
            "strategy": result.strategy.to_doc(),
            "fillModel": result.fill.to_json(),
        },
        "signals": result.tally.to_doc(),
    }


def summary_bytes(result: BacktestResult) -> bytes:
    """``summary.json``'s exact bytes."""
    return (encode(summary(result)) + "\n").encode()


def encode(value: object, indent: int = 0) -> str:
    """JSON with sorted keys, two-space indents, Decimals as the exact numbers they are (without trailing
    zeros)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        return format(value.normalize(), "f")  # the number's own digits: 591.25, not 591.2500000
    if isinstance(value, float):
        raise TypeError("the summary holds no binary floats")
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = sorted(value.items())
        body = ",\n".join(f"{inner}{_string(str(k))}: {encode(v, indent + 1)}" for k, v in items)
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(value, Sequence):
        if not value:
            return "[]"
        body = ",\n".join(f"{inner}{encode(v, indent + 1)}" for v in value)
        return "[\n" + body + "\n" + pad + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the summary")


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def trade_rows(trades: Sequence[ClosedTrade]) -> list[list[str]]:
    """The rows of ``trades.csv`` (without the header)."""
    positions: dict[str, int] = {}
    rows = []
    for number, trade in enumerate(trades, start=1):
        key = trade.position_id or trade.id
        position = positions.setdefault(key, len(positions) + 1)
        rows.append(
            [
                str(number),
                str(position),
                trade.token_symbol,
                _iso(trade.purchase_ms),
                _iso(trade.sale_ms),
                format(trade.amount, "f"),
                format(trade.purchase_price, "f"),
                format(trade.sale_price, "f"),
                format(trade.change_percent, "f"),
                format(trade.profit_loss, "f"),
                format(trade.fees, "f"),
                trade.close_reason.value,
                "true" if trade.partial else "false",
                "" if trade.signal_id is None else str(trade.signal_id),
            ]
        )
    return rows


def trades_csv(trades: Sequence[ClosedTrade]) -> str:
    """``trades.csv``'s text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    writer.writerows(trade_rows(trades))
    return out.getvalue()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chart(result: BacktestResult, path: Path) -> None:
    """Draw ``equity.png`` (see the module doc)."""
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epoch = float(mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))  # type: ignore[no-untyped-call]

    def days(ts_ms: int) -> float:
        return epoch + ts_ms / DAY_MS

    width, height = CHART_SIZE_PX
    figure = Figure(figsize=(width / CHART_DPI, height / CHART_DPI), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    times = [days(ts) for ts, _ in result.curve]
    equity = [float(value) for _, value in result.curve]
    peak = float("-inf")
    drawdown = []
    for value in equity:
        peak = max(peak, value)
        drawdown.append((value - peak) / peak * 100 if peak > 0 else 0.0)
    top.plot(times, equity, color="#1f77b4", linewidth=1.0, label="equity")
    for side, marker, colour in (("buy", "^", "#2ca02c"), ("sell", "v", "#d62728")):
        chosen = [m for m in result.markers if m.side == side]
        if chosen:
            top.scatter(
                [days(m.ts_ms) for m in chosen],
                [float(m.equity) for m in chosen],
                marker=marker,
                color=colour,
                s=28,
                zorder=3,
                label=f"{side} ({len(chosen)})",
            )
    selection = result.selection
    source = selection.provenance
    figure.suptitle(
        f"{selection.instrument.symbol} backtest, {source.label} {selection.interval} bars, "
        f"{iso_minute(selection.start_ms)} to {iso_minute(selection.end_ms)}"
    )
    top.set_ylabel("equity (USD)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left")
    bottom.fill_between(times, drawdown, 0.0, color="#d62728", alpha=0.3, linewidth=0)
    bottom.plot(times, drawdown, color="#d62728", linewidth=0.8)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(formatter)
    figure.savefig(path, format="png", dpi=CHART_DPI, metadata={"Software": None})


def write(result: BacktestResult, directory: Path, *, with_chart: bool = True) -> list[Path]:
    """Write the report into ``directory`` (created if missing); the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / SUMMARY_FILE, directory / TRADES_FILE]
    written[0].write_bytes(summary_bytes(result))
    written[1].write_text(trades_csv(result.trades), encoding="utf-8", newline="")
    if with_chart:
        written.append(directory / CHART_FILE)
        chart(result, written[2])
    return written
