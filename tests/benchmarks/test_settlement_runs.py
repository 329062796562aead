"""The settlement benchmark runs on SQLite: both tables printed, every run settled, ledger clean."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.settlement import DEFAULT_POSTGRES_URL, run


async def test_a_short_sqlite_run_prints_both_tables_and_a_clean_ledger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(
        database=["sqlite"],
        postgres_url=DEFAULT_POSTGRES_URL,
        duration=0.1,
        warmup=0.02,
        max_count=1_000_000,
        profile=0,
        check=False,
    )
    assert await run(args, [1, 4]) == 0
    out = capsys.readouterr().out
    assert "| database | concurrency | priced rps |" in out
    assert "| database | concurrency | alone rps |" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| sqlite |")]
    assert len(rows) == 4  # two levels, JSON-RPC and direct
    for cells in rows:
        assert cells[-1] == "clean |", cells
    jsonrpc = rows[:2]
    for cells in jsonrpc:
        completed, settled = int(cells[10]), int(cells[11])
        assert completed > 0 and settled == completed  # every priced call captured exactly once
    assert "sqlite: ledger check clean and nothing held after every run: PASS" in out
