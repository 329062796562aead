"""The exchange benchmark runs end to end on a few bars: every row printed, REST market orders too."""

from __future__ import annotations

import pytest

from benchmarks.exchange import BOOK, REST_PENDING, main, run, synthetic_bars


def test_a_short_run_prints_every_row_and_the_rest_api_order_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--bars", "400", "--churn-bars", "100", "--orders", "200", "--rest-orders", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| measure | in process | through the REST API |")
    rows = [line for line in out.splitlines() if line.startswith("| bars/s") or line.startswith("| market")]
    assert len(rows) == 4
    assert all(line.endswith(f"| {REST_PENDING} |") for line in rows[:3])
    assert rows[3].endswith(" (30 signed orders) |") and "n/a" not in rows[3]
    assert "target: >= 100,000 bars/s" in out and "target: >= 5,000 market orders/s" in out


def test_the_replays_hold_their_book_and_the_active_one_fills() -> None:
    replays = run(600, 100, 1, seed=5)
    assert replays["quiet"].fills == 0 and replays["quiet"].placed == 0
    assert replays["active"].fills > 0
    assert replays["churning"].expired > 0 and replays["churning"].placed >= replays["churning"].expired
    assert synthetic_bars(50, 5) == synthetic_bars(50, 5)
    assert BOOK == 100
