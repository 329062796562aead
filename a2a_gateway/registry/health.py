"""Call health: which agents' recent calls fail (``degraded``) and how fast each answers.

Each gateway process keeps a short window of outcomes per agent and a moving average of the time to
the agent's first answer. It reports a change worth persisting when the verdict flips (at once) or the
latency drifts (at most every few seconds), so routed calls cost no database write of their own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 10  # outcomes remembered per agent
FAILURES_IN_A_ROW = 3  # this many consecutive failures make an agent failing
FAILURE_RATIO = 0.5  # or at least this share of the window, once it holds MIN_CALLS outcomes
MIN_CALLS = 4
SMOOTHING = 0.3  # weight of the newest latency in the moving average
DRIFT = 0.1  # a latency change of this fraction is persisted, at most once per REFRESH_SECONDS
REFRESH_SECONDS = 10.0


@dataclass(slots=True)
class HealthChange:
    """What to store for an agent: whether its calls are failing, and its smoothed latency."""

    failing: bool
    latency_ms: float | None


@dataclass(slots=True)
class _Window:
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latency_ms: float | None = None
    stored_failing: bool | None = None
    stored_latency_ms: float | None = None
    stored_at: float = 0.0

    def failing(self) -> bool:
        recent = list(self.outcomes)
        if len(recent) >= FAILURES_IN_A_ROW and not any(recent[-FAILURES_IN_A_ROW:]):
            return True
        return len(recent) >= MIN_CALLS and recent.count(False) / len(recent) >= FAILURE_RATIO


class CallHealth:
    """Per-agent outcome windows and latency averages (one instance per gateway process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[str, _Window] = {}
        self._now = clock

    def observe(self, agent_id: str, ok: bool, latency_ms: float | None) -> HealthChange | None:
        """Add one call's outcome; a change to persist, or None when the stored verdict still holds."""
        window = self._windows.get(agent_id)
        if window is None:
            if len(self._windows) >= 10_000:
                self._windows.clear()
            window = self._windows[agent_id] = _Window()
        window.outcomes.append(ok)
        if ok and latency_ms is not None:
            previous = window.latency_ms
            window.latency_ms = (
                latency_ms if previous is None else previous + SMOOTHING * (latency_ms - previous)
            )
        failing = window.failing()
        now = self._now()
        stored = window.stored_latency_ms
        drifted = window.latency_ms is not None and (
            stored is None
            or (
                now - window.stored_at >= REFRESH_SECONDS and abs(window.latency_ms - stored) > DRIFT * stored
            )
        )
        if failing == window.stored_failing and not drifted:
            return None
        window.stored_failing = failing
        window.stored_latency_ms = window.latency_ms
        window.stored_at = now
        latency = None if window.latency_ms is None else round(window.latency_ms, 3)
        return HealthChange(failing=failing, latency_ms=latency)

    def verdict(self, agent_id: str) -> HealthChange | None:
        """The latest verdict reported for an agent (what the store should hold now)."""
        window = self._windows.get(agent_id)
        if window is None or window.stored_failing is None:
            return None
        latency = None if window.stored_latency_ms is None else round(window.stored_latency_ms, 3)
        return HealthChange(failing=window.stored_failing, latency_ms=latency)

    def forget(self, agent_id: str) -> None:
        """Drop an agent's window (it was deleted)."""
        self._windows.pop(agent_id, None)
