"""The scale-out benchmark runs end to end on tiny counts: gateway processes on a scratch PostgreSQL
database and Redis prefix, the echo agent, nginx and the load generator start as their own processes,
both phases come out with numbers, the ratio line is printed, and no process is left behind."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from benchmarks.cluster_procs import nginx_binary
from benchmarks.scale_out import SCRATCH_PREFIX, main


def _left_behind() -> list[str]:
    """Processes whose command line or environment names a scale-out benchmark's scratch directory."""
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
def test_a_quick_run_prints_both_phases_and_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    postgres, redis = (
        os.environ.get("A2A_GATEWAY_TEST_POSTGRES_URL"),
        os.environ.get("A2A_GATEWAY_TEST_REDIS_URL"),
    )
    if not postgres or not redis:
        pytest.skip(
            "A2A_GATEWAY_TEST_POSTGRES_URL and A2A_GATEWAY_TEST_REDIS_URL are needed (several processes)"
        )
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (not on PATH nor in /usr/sbin); .ci/run installs nginx-light")
    assert _left_behind() == []
    assert main(["--quick", "--postgres-url", postgres, "--redis-url", redis]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| measure | 1 process behind nginx | 2 processes behind nginx | target |")
    rates = _cells(out, "| **SendMessage → completed task, requests/s**")
    assert all(float(cell.strip("*").replace(",", "")) > 0 for cell in rates[1:3]), rates
    counted = _cells(out, "| answers counted / errors")
    assert all(re.fullmatch(r"[\d,]+ / 0", cell) for cell in counted[1:3]), counted
    persisted = _cells(out, "| tasks persisted in PostgreSQL")
    assert all(int(cell.replace(",", "")) > 0 for cell in persisted[1:3]), persisted
    gateway_cpu = _cells(out, "| gateway CPU per request, ms")
    assert all(float(cell) > 0 for cell in gateway_cpu[1:3]), gateway_cpu
    assert re.search(
        r"^\*\*2 processes / 1 process: \d+\.\d\dx\*\* \(target ≥ 1\.2x: (met|MISSED)\)$", out, re.M
    )
    assert "per added core" in out
    assert _left_behind() == []
