"""The fan-out benchmark runs end to end on tiny counts: the gateway, the ticker agent, the reference app,
the floor app and the load generator start as their own processes, every column of the table comes
out with numbers, every expected delivery is seen in each, and no process is left behind."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from benchmarks.fanout import main

SCRATCH_PREFIX = "a2a-bench-fanout-"


def _left_behind() -> list[str]:
    """Processes whose command line or environment names a fan-out benchmark's scratch directory."""
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
def test_a_quick_run_prints_both_columns_and_every_delivery_is_seen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _left_behind() == []
    assert main(["--quick", "--floor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "| measure | ours: gateway, SubscribeToTask | reference: sse-starlette, a queue per subscriber"
    )
    attached = _cells(out, "| subscribers attached / opened")
    assert attached[1:4] == ["6 / 6"] * 3, attached
    # 2 tasks of 3 ticks, 3 subscribers each, all attached before the first tick: 6 x 3 deliveries.
    seen = _cells(out, "| deliveries seen / expected (3 ticks a task")
    assert seen[1:4] == ["18 / 18"] * 3, seen
    assert _cells(out, "| lost deliveries")[1:4] == ["0"] * 3
    assert _cells(out, "| duplicates")[1:4] == ["0"] * 3
    assert _cells(out, "| streams: complete /")[1:4] == ["6 / 0 / 0 / 0 / 0 / 0"] * 3
    for start in ("| delivery p50 / p99 / max", "| RSS per subscriber, KB", "| server CPU per delivery"):
        cells = _cells(out, start)
        assert all(cell.strip("*") and "n/a" not in cell and "nan" not in cell for cell in cells[1:4]), cells
    assert _cells(out, "| `slow subscriber dropped` warnings")[1] == "0"
    assert _left_behind() == []
