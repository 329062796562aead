"""The signal agent at work: bar closes in, the strategy's signals out to the engine's ``signal-intake``.

:class:`SignalService` takes the price feed's ticks (each live tick is one bar close; the catch-up ticks
after a dropped stream are no bars and are skipped), runs them through the
:class:`~agents_examples.trading.signals.strategy.Strategy` and hands each signal to the engine:

- **Bounded concurrency.** Signals wait in ``concurrency`` lanes (queues of ``queue_size``), one
  worker each; an instrument always uses the same lane, so its signals reach the engine in the order
  they were emitted, while different instruments go in parallel. A signal that finds its lane full is
  not sent: it is logged ``dropped``.
- **The log** keeps the last ``log_size`` emitted signals with their outcome: ``pending``, then
  ``delivered`` (the engine's signal id and execution records: one per trading agent following the
  publisher, EXECUTED, FAILED or SKIPPED with a code), ``rejected`` (the engine's ``CODE: message``,
  such as ``SIGNAL_DUPLICATE``), ``failed`` (the engine or the gateway could not be reached) or
  ``dropped``.
- **Followers** (the ``signal-feed`` skill) get each signal once its outcome is known.

:class:`EngineIntake` is the engine's ``signal-intake`` skill through the gateway, called with the
owner's key: the owner is the signals' publisher at the engine and pays for each call.
:class:`ConfigStore` keeps the strategy config the owner last set, so a restart keeps it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Protocol

from agents_examples.trading.engine.exchange_link import Tick
from agents_examples.trading.gateway_client import (
    GatewayClient,
    GatewayUnavailable,
    last_data,
    mapping,
    refusal,
    status_text,
    task_state,
)
from agents_examples.trading.signals.strategy import ConfigError, Signal, Strategy, StrategyConfig

log = logging.getLogger(__name__)

INTAKE_SKILL: Final = "signal-intake"
INTAKE_TIMEOUT_SECONDS: Final = 45.0  # the engine answers once its records settle, within 30 s
FOLLOWER_QUEUE: Final = 256
MAX_EXECUTIONS: Final = 100  # execution records kept per logged signal


class Intake(Protocol):
    """Where signals go: the engine's outcome for each signal document."""

    async def post(self, doc: Mapping[str, Any]) -> dict[str, Any]: ...


class EngineIntake:
    """The engine's ``signal-intake`` through the gateway. ``engine_agent_id`` names the engine at the
    gateway; without it the first agent offering ``signal-intake`` is discovered once."""

    def __init__(self, gateway: GatewayClient, engine_agent_id: str | None = None) -> None:
        self._gateway = gateway
        self._agent_id = engine_agent_id
        self._discovering = asyncio.Lock()

    async def engine_id(self) -> str:
        """The engine's agent id at the gateway: the configured one, else discovered once."""
        if self._agent_id is not None:
            return self._agent_id
        async with self._discovering:
            if self._agent_id is None:
                self._agent_id = await self._gateway.discover({INTAKE_SKILL}, tags="signals")
            return self._agent_id

    async def post(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Send one signal: its outcome (``delivered``, ``rejected`` or ``failed``; module doc). A lost
        answer is sent once more: the engine refuses the repeat as ``SIGNAL_DUPLICATE`` if the first
        one arrived, so a signal is never posted twice."""
        try:
            try:
                task = await self._gateway.send(await self.engine_id(), INTAKE_SKILL, doc)
            except GatewayUnavailable as error:
                if not error.retryable:
                    raise
                log.info("signal-intake: %s; sending once more", error)
                task = await self._gateway.send(await self.engine_id(), INTAKE_SKILL, doc)
        except GatewayUnavailable as error:
            return {"status": "failed", "message": str(error)[:500]}
        return intake_outcome(task)


def intake_outcome(task: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``signal-intake`` task says became of the signal."""
    state = task_state(task)
    task_id = task.get("id") if isinstance(task.get("id"), str) else None
    if state == "TASK_STATE_COMPLETED":
        body = mapping(last_data(task))
        signal = mapping(body.get("signal"))
        executions = body.get("executions")
        records = [mapping(e) for e in executions] if isinstance(executions, list) else []
        return {
            "status": "delivered",
            "taskId": task_id,
            "signalId": signal.get("id"),
            "executions": [dict(r) for r in records[:MAX_EXECUTIONS]],
        }
    if state == "TASK_STATE_REJECTED":
        code, message = refusal(status_text(task))
        return {"status": "rejected", "taskId": task_id, "code": code, "message": message[:500]}
    text = status_text(task) or state or "no state"
    return {"status": "failed", "taskId": task_id, "message": f"the task ended {text}"[:500]}


@dataclass
class Emitted:
    """One signal the agent emitted and what became of it."""

    seq: int
    signal: Signal
    emitted_at_ms: int  # wall clock
    status: str = "pending"
    outcome: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        """The log entry as a document (Decimals as they are; the skills make them JSON numbers)."""
        s = self.signal
        return {
            "seq": self.seq,
            "signal": s.to_doc(),
            "bar": {
                "symbol": s.symbol,
                "timestamp": s.ts_ms,
                "close": s.close,
                "volume": s.volume,
                "fast": s.fast,
                "slow": s.slow,
                "gapPercent": s.gap_percent,
                "meanVolume": s.mean_volume,
            },
            "emittedAt": self.emitted_at_ms,
            "status": self.status,
            "outcome": self.outcome,
        }


class Follower:
    """One ``signal-feed`` subscriber: the settled signals, in order, until it leaves, the service
    closes or it falls :data:`FOLLOWER_QUEUE` signals behind (``dropped``)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(FOLLOWER_QUEUE)
        self.dropped = False

    async def views(self) -> AsyncIterator[dict[str, Any]]:
        """Each settled signal's view, until the service closes or the follower is dropped."""
        while not (self.dropped and self.queue.empty()):
            view = await self.queue.get()
            if view is None:
                return
            yield view


class ConfigStore:
    """The strategy config the owner last set, as JSON in ``path`` (written whole, then renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StrategyConfig | None:
        """The stored config; None when there is none or it cannot be used (that is logged)."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return StrategyConfig.from_doc(doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ConfigError) as error:
            log.warning("ignoring the stored strategy config %s: %s", self.path, error)
            return None

    def save(self, config: StrategyConfig) -> None:
        """Store ``config``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {k: str(v) if isinstance(v, Decimal) else v for k, v in config.to_doc().items()}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SignalService:
    """Feed to strategy to engine (module doc)."""

    def __init__(
        self,
        strategy: Strategy,
        intake: Intake,
        *,
        store: ConfigStore | None = None,
        concurrency: int = 4,
        queue_size: int = 256,
        log_size: int = 100,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        if concurrency < 1 or queue_size < 1 or log_size < 1:
            raise ValueError("concurrency, queue_size and log_size must be at least 1")
        self.strategy = strategy
        self._intake = intake
        self._store = store
        self._wall_ms = wall_ms
        self._lanes: list[asyncio.Queue[Emitted]] = [asyncio.Queue(queue_size) for _ in range(concurrency)]
        self._workers: list[asyncio.Task[None]] = []
        self._log: deque[Emitted] = deque(maxlen=log_size)
        self._followers: set[Follower] = set()
        self._seq = 0
        self.bars = 0  # bar closes seen

    @property
    def config(self) -> StrategyConfig:
        """The strategy's current config."""
        return self.strategy.config

    def reconfigure(self, config: StrategyConfig) -> None:
        """Use ``config`` from the next bar on, and store it."""
        self.strategy.reconfigure(config)
        if self._store is not None:
            self._store.save(config)
        log.info("strategy config now %s", config)

    # ------------------------------------------------------------------------------ running

    async def start(self) -> None:
        """Start the lanes' workers."""
        if not self._workers:
            self._workers = [asyncio.create_task(self._work(lane)) for lane in self._lanes]

    async def close(self) -> None:
        """Stop the workers (signals still waiting stay ``pending`` in the log) and drop the followers."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for follower in list(self._followers):
            try:
                follower.queue.put_nowait(None)
            except asyncio.QueueFull:
                follower.dropped = True
        self._followers.clear()

    async def on_ticks(self, ticks: list[Tick]) -> None:
        """The price feed's consumer: each live tick is a bar close for the strategy."""
        for tick in ticks:
            if tick.catch_up:
                continue
            self.bars += 1
            signal = self.strategy.on_bar(
                tick.symbol, tick.token_address, tick.price, tick.volume, tick.timestamp_ms
            )
            if signal is not None:
                self._emit(signal)

    def _emit(self, signal: Signal) -> None:
        self._seq += 1
        emitted = Emitted(self._seq, signal, self._wall_ms())
        self._log.append(emitted)
        lane = self._lanes[zlib.crc32(signal.symbol.encode()) % len(self._lanes)]
        try:
            lane.put_nowait(emitted)
        except asyncio.QueueFull:
            log.warning(
                "signal %d (%s %s) dropped: its lane is full", emitted.seq, signal.signal_type, signal.symbol
            )
            self._settle(emitted, {"status": "dropped", "message": "too many signals waited for the engine"})

    async def _work(self, lane: asyncio.Queue[Emitted]) -> None:
        while True:
            emitted = await lane.get()
            try:
                outcome = await self._intake.post(emitted.signal.to_doc())
            except Exception as error:  # an intake that fails must not stop the lane
                log.exception("signal %d could not be sent", emitted.seq)
                outcome = {"status": "failed", "message": f"{type(error).__name__}"}
            self._settle(emitted, outcome)

    def _settle(self, emitted: Emitted, outcome: dict[str, Any]) -> None:
        emitted.status = str(outcome.get("status", "failed"))
        emitted.outcome = outcome
        log.info(
            "signal %d %s %s: %s",
            emitted.seq,
            emitted.signal.signal_type,
            emitted.signal.symbol,
            emitted.status,
        )
        view = emitted.view()
        for follower in list(self._followers):
            try:
                follower.queue.put_nowait(view)
            except asyncio.QueueFull:
                follower.dropped = True
                self._followers.discard(follower)

    # ------------------------------------------------------------------------------ reading

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The logged signals, oldest first (the last ``limit`` of them)."""
        entries = list(self._log)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return [e.view() for e in entries]

    @property
    def log_size(self) -> int:
        """How many signals the log keeps."""
        return self._log.maxlen or 0

    def follow(self) -> Follower:
        """A new follower of the settled signals."""
        follower = Follower()
        self._followers.add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        """Forget ``follower``."""
        self._followers.discard(follower)
