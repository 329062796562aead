"""The signal service with a scripted intake: bar closes in, signals out in per-instrument order, a lane
that is full drops a signal, the log keeps the last N with their outcomes, followers get each settled
signal, catch-up ticks are no bars; the engine's answers read as outcomes; the stored config."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agents_examples.trading.engine.exchange_link import Tick
from agents_examples.trading.signals.service import ConfigStore, SignalService, intake_outcome
from agents_examples.trading.signals.strategy import Strategy, StrategyConfig

CROSSING = StrategyConfig(fast_window=1, slow_window=2, volume_factor=Decimal(0))


class Intake:
    """Answers each signal with ``delivered`` once ``gate`` is open; records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def post(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        self.sent.append(dict(doc))
        self.entered.set()
        await self.gate.wait()
        return {"status": "delivered", "signalId": f"sig-{len(self.sent)}", "executions": []}


def ticks(symbol: str, closes: list[int], start: int = 0, *, catch_up: bool = False) -> list[Tick]:
    return [
        Tick(
            symbol,
            f"paper:{symbol.lower()}",
            Decimal(c),
            1000 * (start + i),
            catch_up=catch_up,
            volume=Decimal(1),
        )
        for i, c in enumerate(closes)
    ]


async def settled(service: SignalService, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while True:
            views = service.recent()
            if len(views) >= count and all(v["status"] != "pending" for v in views):
                return views
            await asyncio.sleep(0.001)


async def test_signals_reach_the_intake_in_order_and_the_log_keeps_the_last_ones() -> None:
    intake = Intake()
    service = SignalService(Strategy(CROSSING), intake, concurrency=2, log_size=3)
    await service.start()
    try:
        follower = service.follow()
        # BTC crosses at bars 2 (buy), 3 (sell) and 4 (buy); ETH at 2 (sell).
        await service.on_ticks(ticks("BTC", [10, 9, 10, 9, 10]) + ticks("ETH", [10, 11, 10]))
        views = await settled(service, 3)
        assert service.bars == 8
        assert [s["signalType"] for s in intake.sent if s["symbol"] == "BTC"] == ["buy", "sell", "buy"]
        assert [s["signalType"] for s in intake.sent if s["symbol"] == "ETH"] == ["sell"]
        # Four signals, the log keeps the last three, each with its outcome.
        assert [v["seq"] for v in views] == [2, 3, 4]
        assert all(v["status"] == "delivered" and v["outcome"]["signalId"] for v in views)
        assert service.recent(1) == views[-1:] and service.recent(0) == []
        streamed = [await follower.queue.get() for _ in range(4)]
        assert sorted(v["seq"] for v in streamed if v is not None) == [1, 2, 3, 4]
        # A catch-up tick is no bar.
        await service.on_ticks(ticks("BTC", [5], 9, catch_up=True))
        assert service.bars == 8
    finally:
        await service.close()


async def test_a_signal_that_finds_its_lane_full_is_dropped_and_followers_end_at_close() -> None:
    intake = Intake()
    intake.gate.clear()
    service = SignalService(Strategy(CROSSING), intake, concurrency=1, queue_size=1)
    await service.start()
    follower = service.follow()
    await service.on_ticks(ticks("BTC", [10, 9, 10]))  # a buy, taken by the worker
    await intake.entered.wait()
    await service.on_ticks(ticks("BTC", [9, 10], 3))  # a sell that waits, and a buy that cannot
    [dropped] = [v for v in service.recent() if v["status"] == "dropped"]
    assert (dropped["seq"], dropped["signal"]["signalType"]) == (3, "buy")
    assert (await follower.queue.get()) == dropped
    intake.gate.set()
    views = await settled(service, 3)
    assert [v["status"] for v in views] == ["delivered", "delivered", "dropped"]
    assert [s["signalType"] for s in intake.sent] == ["buy", "sell"]
    await service.close()
    seen = [v async for v in follower.views()]
    assert [v["seq"] for v in seen] == [1, 2]


def test_the_engines_answers_are_outcomes() -> None:
    completed = {
        "id": "t1",
        "status": {"state": "TASK_STATE_COMPLETED"},
        "artifacts": [
            {
                "parts": [
                    {"data": {"signal": {"id": 7}, "executions": [{"agentId": "a", "status": "EXECUTED"}]}}
                ]
            }
        ],
    }
    assert intake_outcome(completed) == {
        "status": "delivered",
        "taskId": "t1",
        "signalId": 7,
        "executions": [{"agentId": "a", "status": "EXECUTED"}],
    }
    rejected = {
        "id": "t2",
        "status": {
            "state": "TASK_STATE_REJECTED",
            "message": {"parts": [{"text": "SIGNAL_DUPLICATE: the same signal within 60 s"}]},
        },
    }
    assert intake_outcome(rejected) == {
        "status": "rejected",
        "taskId": "t2",
        "code": "SIGNAL_DUPLICATE",
        "message": "the same signal within 60 s",
    }
    failed = intake_outcome({"status": {"state": "TASK_STATE_FAILED"}})
    assert failed == {"status": "failed", "taskId": None, "message": "the task ended TASK_STATE_FAILED"}


def test_the_stored_config_survives_and_a_bad_file_is_ignored(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "signals" / "strategy-config.json")
    assert store.load() is None
    config = StrategyConfig(3, 9, Decimal("0.75"), 2, ("BTC",), 2)
    store.save(config)
    assert store.load() == config
    store.path.write_text('{"fastWindow": 0}', encoding="utf-8")
    assert store.load() is None
    store.path.write_text("not json", encoding="utf-8")
    assert store.load() is None


def test_the_service_needs_a_lane_and_a_log() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SignalService(Strategy(), Intake(), concurrency=0)
