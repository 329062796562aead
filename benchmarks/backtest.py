"""The backtest: one year of synthetic 1-minute bars (525,600) through the strategy, engine and exchange.

Run: python -m benchmarks.backtest [--symbol BTC] [--days 365] [--seed 0] [--profile]

What is timed is what ``python -m agents_examples.trading.backtest --symbol BTC --synthetic --from
2025-01-01 --to 2025-12-31`` does, in three parts: making the bars (the exchange's seeded generator),
the replay (the exchange's simulator and matching engine, every bar close to the strategy and to
``Trader.on_ticks``, signals to ``EngineService.post_signal``, orders filled by the exchange through the
in-process port) and writing the report (summary.json, trades.csv, equity.png). The config is the
backtest's default one (``--print-config``); the strategy's crossover trades a few times a day on these
bars. A second, untimed run checks that summary.json comes out byte for byte the same.

``--profile`` prints the replay's cProfile top functions by own time (the replay then runs about 2.5
times slower).

Target: the whole backtest of 525,600 bars in under 60 s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents_examples.trading.backtest import config as config_file
from agents_examples.trading.backtest import report, runner
from agents_examples.trading.backtest.market import select

TARGET_SECONDS = 60.0
START = datetime(2025, 1, 1, tzinfo=UTC)


def measure(symbol: str, days: int, seed: int, *, profile: bool) -> dict[str, Any]:
    """Time the three parts of a ``days``-day synthetic 1-minute backtest, then run it again untimed."""
    end = (START + timedelta(days=days - 1)).date().isoformat()
    settings = config_file.load(None)
    started = time.perf_counter()
    selection = select(symbol, START.date().isoformat(), end, synthetic=True, seed=seed)
    made = time.perf_counter()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    result = runner.run(selection, settings)
    if profiler is not None:
        profiler.disable()
    replayed = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report.write(result, Path(tmp))
    written = time.perf_counter()
    summary = report.summary_bytes(result)
    out: dict[str, Any] = {
        "bars": result.bars,
        "trades": len(result.trades),
        "signals": sum(result.tally.generated.values()),
        "bars_s": made - started,
        "replay_s": replayed - made,
        "report_s": written - replayed,
        "total_s": written - started,
    }
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        out["profile"] = text.getvalue()
    out["repeatable"] = report.summary_bytes(runner.run(selection, settings)) == summary
    return out


def render(ours: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    total = ours["total_s"]
    verdict = "met" if total < TARGET_SECONDS else "MISSED"
    rate = ours["bars"] / ours["replay_s"] if ours["replay_s"] else 0.0
    same = "byte-identical" if ours["repeatable"] else "DIFFERENT"
    rows = [
        "| measure | ours | target |",
        "|---|---|---|",
        f"| bars (1m, synthetic) | {ours['bars']:,} | 525,600 |",
        f"| making the bars | {ours['bars_s']:.1f} s | |",
        f"| replay: exchange + strategy + engine | {ours['replay_s']:.1f} s ({rate:,.0f} bars/s) | |",
        f"| writing the report (json, csv, png) | {ours['report_s']:.1f} s | |",
        f"| **whole backtest** | **{total:.1f} s** | < {TARGET_SECONDS:.0f} s: {verdict} |",
        f"| signals / closed trades | {ours['signals']:,} / {ours['trades']:,} | |",
        f"| summary.json of a second run | {same} | byte-identical |",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbol", default="BTC", help="instrument (default: %(default)s)")
    parser.add_argument("--days", type=int, default=365, help="simulated days (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic seed (default: %(default)s)")
    parser.add_argument("--profile", action="store_true", help="print the replay's cProfile top 25")
    args = parser.parse_args(argv)
    if not 1 <= args.days <= 3650:
        parser.error("--days is 1..3650")
    ours = measure(args.symbol, args.days, args.seed, profile=args.profile)
    if "profile" in ours:
        print(ours["profile"])
    print(render(ours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
