"""The network benchmark runs end to end on tiny counts: the gateway, exchange and engine start as their
own processes, signals trade through the gateway and straight to the engine, every row of the table
is printed with numbers, the one-day backtest too, and no process is left behind."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from benchmarks.network import main

SCRATCH_PREFIX = "a2a-bench-network-"


def _left_behind() -> list[str]:
    """Processes whose command line or environment names a network benchmark's scratch directory."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            if SCRATCH_PREFIX.encode() in text:
                found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()[:200]!r}")
    return found


def _cells(out: str, start: str) -> list[str]:
    [line] = [line for line in out.splitlines() if line.startswith(start)]
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.slow
def test_a_tiny_run_prints_every_row_and_leaves_no_process_behind(capsys: pytest.CaptureFixture[str]) -> None:
    assert _left_behind() == []
    argv = ["--agents", "2", "--samples", "2", "--warmup", "1", "--seconds", "1", "--signals", "6",
            "--decided-signals", "6", "--senders", "2", "--hops", "5", "--bars", "1440"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("| measure | through the gateway (signal-intake) | baseline: REST straight")
    for start in ("| signal → each order filled", "| buy signal → all 2 buys filled", "| one agent trading"):
        cells = _cells(out, start)
        assert all(" / " in cell and "n/a" not in cell for cell in cells[1:3]), cells
    assert _cells(out, "| signal → each order filled")[0].endswith("(8 / 8 fills)")
    trading = _cells(out, "| **trading signals/s**")
    assert float(trading[1].strip("*")) > 0 and float(trading[2]) > 0, trading
    decided = _cells(out, "| decided signals/s")
    assert decided[0].endswith("(2 senders; 6 / 6 signals)"), decided
    assert _cells(out, "| signals missed") == [
        "signals missed (no fill, no answer in 30 s, or refused)",
        "0",
        "0",
        "0",
    ]
    backtest = _cells(out, "| **backtest, 1,440 synthetic 1-minute bars**")
    assert backtest[1].endswith(" s**"), backtest
    for start in (
        "| exchange REST, signed",
        "| exchange A2A `place-order`",
        "| `place-order` through the gateway",
    ):
        hop = _cells(out, start)
        assert float(hop[1]) > 0 and float(hop[2]) >= float(hop[1]), hop
    assert _cells(out, "| trading agents")[1] == "2 of one trader, 1,000 USD each, following 1 analyst"
    assert _cells(out, "| engine duplicate window")[1].startswith(
        "off (engine `--duplicate-window-seconds 0`"
    )
    assert _cells(out, "| engine signal rate limit")[1].startswith("REST: 100,000/min per credential")
    assert _cells(out, "| priced")[1].startswith("1 credit(s) per place-order call")
    assert _left_behind() == []
