"""``python -m agents_examples.trading.backtest``: run a backtest and write its report directory.

    python -m agents_examples.trading.backtest --symbol BTC --from 2019-12-20 --to 2020-01-10
    python -m agents_examples.trading.backtest --symbol SOL --synthetic --from 2025-01-01 --to 2025-12-31 \\
        --config my-config.json --out data/backtests/sol-2025

``--symbol`` is an instrument's symbol or id; ``--from``/``--to`` ISO dates (the series' real dates for
historical data, simulated dates for ``--synthetic``; see :mod:`.market`); ``--config`` the JSON config
(:mod:`.config`; ``--print-config`` writes the default one). The report goes to ``--out`` (default
``data/backtests/<SYMBOL>-<first day>-<last day>[-synthetic]``). Progress goes to stderr: a progress bar
on a terminal, a line every 10 % otherwise, nothing with ``--quiet``. Exit status 0 on success, 2 for
a backtest that cannot run as asked (the message says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from agents_examples.trading.backtest import config as config_file
from agents_examples.trading.backtest import report, runner
from agents_examples.trading.backtest.market import INTERVALS, BacktestError, Selection, iso_minute, select

DEFAULT_REPORTS = Path("data") / "backtests"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents_examples.trading.backtest",
        description="Backtest the signal strategy and the trading engine on the paper exchange's bars.",
    )
    parser.add_argument("--symbol", help="instrument symbol or id (BTC, bitcoin, AAPL, ...)")
    parser.add_argument(
        "--from", dest="start", metavar="DATE", help="first day (ISO 8601; default: the data's)"
    )
    parser.add_argument("--to", dest="end", metavar="DATE", help="last day, included (ISO 8601)")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="JSON {tradingConfig, strategy, startingBalance}"
    )
    parser.add_argument("--synthetic", action="store_true", help="seeded synthetic bars instead of real data")
    parser.add_argument("--seed", type=int, default=0, help="synthetic seed (default: %(default)s)")
    parser.add_argument(
        "--interval",
        choices=list(INTERVALS),
        help="synthetic bar span (default: 1m; historical bars keep theirs)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="report directory")
    parser.add_argument("--no-chart", action="store_true", help="skip equity.png")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--print-config", action="store_true", help="print the default config and exit")
    return parser


def default_out(selection: Selection) -> Path:
    """``data/backtests/<SYMBOL>-<first day>-<last day>[-synthetic]``."""

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d")

    last = selection.series.bars[-1].ts_ms
    suffix = "-synthetic" if selection.seed is not None else ""
    return DEFAULT_REPORTS / f"{selection.instrument.symbol}-{day(selection.start_ms)}-{day(last)}{suffix}"


@contextmanager
def progress_reporter(quiet: bool, stream: TextIO) -> Iterator[runner.Progress | None]:
    """A progress callback: a rich progress bar on a terminal, plain lines every 10 % otherwise."""
    if quiet:
        yield None
        return
    if stream.isatty():
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        except ImportError:  # pragma: no cover - rich comes with the dev tools
            pass
        else:
            columns = (
                TextColumn("backtest"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("bars"),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=Console(file=stream)) as bar:
                task = bar.add_task("backtest", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                yield advance
            return
    yield _plain(stream)


def _plain(stream: TextIO) -> Callable[[int, int], None]:
    shown = [-1]

    def advance(done: int, total: int) -> None:
        tenth = done * 10 // total if total else 10
        if tenth > shown[0]:
            shown[0] = tenth
            stream.write(f"backtest: {tenth * 10:3d}% ({done:,} of {total:,} bars)\n")
            stream.flush()

    return advance


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the exit status."""
    args = _parser().parse_args(argv)
    if args.print_config:
        print(json.dumps(config_file.DEFAULT_DOC, indent=2))
        return 0
    if not args.symbol:
        print("backtest: error: --symbol is required", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        settings = config_file.load(args.config)
        selection = select(
            args.symbol,
            args.start,
            args.end,
            synthetic=args.synthetic,
            seed=args.seed,
            interval=args.interval,
        )
        runner.strategy_config(settings, selection)  # refuse a bad strategy block before the replay
        with progress_reporter(args.quiet, sys.stderr) as progress:
            result = runner.run(selection, settings, progress=progress)
        out = args.out or default_out(selection)
        written = report.write(result, out, with_chart=not args.no_chart)
    except BacktestError as error:
        print(f"backtest: error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    figures = result.performance
    source = selection.provenance
    print(
        f"{selection.instrument.symbol} ({selection.instrument.id}), {source.label}, {result.bars:,} x "
        f"{selection.interval} bars, {iso_minute(selection.start_ms)} to {iso_minute(selection.end_ms)}"
    )
    print(
        f"balance {figures.portfolio_balance:,.2f} from {settings.starting_balance:,.2f} "
        f"(P/L {figures.total_profit_loss:+,.2f}); {figures.total_closed_trades} closed trades, "
        f"{figures.total_open_positions} open; win rate {figures.win_rate}%; "
        f"max drawdown {figures.max_drawdown_percent}%"
    )
    print(f"report: {out} ({', '.join(p.name for p in written)}) in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
