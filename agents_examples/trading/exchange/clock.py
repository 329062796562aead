"""The simulation clock: the one time every trading rule reads (fills, timeouts, breakers, the trading day).

Simulated time is an integer count of milliseconds since the Unix epoch. The market simulator advances it
as it replays bars; nothing here reads wall time, so a replay at any speed (or as fast as possible in a
test or a benchmark) gives the same trading outcome. Authentication windows, rate limits and keep-alives
use wall time and do not belong here.
"""

from __future__ import annotations

from typing import Final, Protocol

DAY_MS: Final = 86_400_000


class Clock(Protocol):
    """What a trading rule needs from a clock: the current simulated time in ms."""

    def now_ms(self) -> int: ...


class SimClock:
    """A simulated clock that only moves forward, and only when told to.

    The market simulator owns it while it runs (it sets the time to each tick's as it replays); tests
    and components without a simulator move it with :meth:`advance_to` / :meth:`advance_by`.
    """

    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        """The current simulated time, ms since the Unix epoch."""
        return self._now_ms

    def advance_to(self, t_ms: int) -> None:
        """Move to ``t_ms``; it must not be earlier than now (simulated time never goes back)."""
        if t_ms < self._now_ms:
            raise ValueError(f"the simulation clock cannot go back from {self._now_ms} to {t_ms}")
        self._now_ms = t_ms

    def advance_by(self, delta_ms: int) -> None:
        """Move forward by ``delta_ms`` (not negative)."""
        self.advance_to(self._now_ms + delta_ms)

    def day_start_ms(self) -> int:
        """00:00 UTC of the current simulated day (the boundary of the daily loss limit)."""
        return self._now_ms - self._now_ms % DAY_MS

    def __repr__(self) -> str:
        return f"SimClock(now_ms={self._now_ms})"
