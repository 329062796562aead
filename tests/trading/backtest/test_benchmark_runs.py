"""The backtest benchmark's machinery on one simulated day (it asserts nothing about speed)."""

from __future__ import annotations

import pytest

from benchmarks.backtest import main


def test_the_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--days", "1", "--seed", "11"]) == 0
    table = capsys.readouterr().out
    assert "| bars (1m, synthetic) | 1,440 | 525,600 |" in table
    assert "| summary.json of a second run | byte-identical | byte-identical |" in table
    assert "**whole backtest**" in table
