"""The command line: a report directory on success, exit status 2 and a reason otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents_examples.trading.backtest import config as config_file
from agents_examples.trading.backtest.__main__ import main
from tests.trading.backtest.support import config_doc


def _config(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_synthetic_backtest_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    args = ["--symbol", "BTC", "--synthetic", "--seed", "11", "--from", "2025-03-01", "--to", "2025-03-01"]
    code = main([*args, "--config", _config(tmp_path, config_doc()), "--out", str(out), "--no-chart"])
    assert code == 0
    printed = capsys.readouterr()
    assert "BTC (bitcoin), synthetic, 1,440 x 1m bars" in printed.out
    assert f"report: {out}" in printed.out
    assert "backtest: 100% (1,440 of 1,440 bars)" in printed.err  # not a terminal: plain lines
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "trades.csv"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["bars"] == 1440


def test_quiet_prints_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--symbol",
        "ETH",
        "--synthetic",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-01",
        "--interval",
        "1h",
    ]
    assert main([*args, "--out", str(tmp_path), "--quiet", "--no-chart"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "NOPE", "--synthetic"], "unknown instrument 'NOPE'"),
        (["--symbol", "BTC", "--synthetic", "--from", "2025-02-01", "--to", "2025-01-01"], "range is empty"),
        (["--symbol", "BTC", "--synthetic", "--from", "yesterday"], "not an ISO 8601 date"),
        (["--synthetic"], "--symbol is required"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backtest: error: ") and message in err
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"tradingConfig": {}, "extra": 1}, "unknown config key extra"),
        (
            {"tradingConfig": {"stopLoss": {"defaultPercentage": 5}}},
            "tradingConfig.stopLoss.defaultPercentage",
        ),
        (
            {"tradingConfig": {"positionCalculator": {"randomization": {"enabled": True}}}},
            "randomization.enabled must be false",
        ),
        ({"startingBalance": -5}, "startingBalance must be above 0"),
        ({"strategy": {"fastWindow": 0}}, "strategy.fastWindow"),
        ([], "must be a JSON object"),
    ],
)
def test_a_bad_config_exits_2_before_the_replay(
    doc: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--symbol",
        "BTC",
        "--synthetic",
        "--config",
        _config(tmp_path, doc),
        "--out",
        str(tmp_path / "x"),
    ]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_an_unreadable_config_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--symbol", "BTC", "--synthetic", "--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the config" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["--symbol", "BTC", "--synthetic", "--config", str(broken)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_print_config_writes_the_default_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == config_file.DEFAULT_DOC
    config_file.parse(printed)  # and it is valid
