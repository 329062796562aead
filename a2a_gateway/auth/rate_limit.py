"""GCRA rate limiting: one theoretical arrival time (TAT) per key, no refill job."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol

# Float slack on the conformance test: now + retry_after, computed in floats at epoch magnitudes
# (ulp ≈ 2.4e-7 s), must conform; a microsecond early is irrelevant to any limit.
EPSILON: Final = 1e-6


@dataclass(frozen=True)
class Limit:
    """``count`` requests per ``period_seconds``, of which up to ``burst`` (default ``count``) at once."""

    count: int
    period_seconds: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.count < 1 or not self.period_seconds > 0 or (self.burst is not None and self.burst < 1):
            raise ValueError("a limit needs count >= 1, period_seconds > 0 and burst >= 1")


@dataclass(frozen=True)
class Decision:
    """The verdict on one request, with what the RateLimit and Retry-After headers need."""

    allowed: bool
    limit: int  # the burst: the most requests that can be made at once
    remaining: int  # requests that would be allowed right now, after this one
    retry_after: float  # seconds until a denied request would be allowed (0 when allowed)
    reset_after: float  # seconds until the full burst is available again


class RateLimitStore(Protocol):
    """Keeps the TAT of every key and applies GCRA to it atomically."""

    async def hit(self, key: str, limit: Limit, now: float) -> Decision:
        """Count one request of ``key`` at ``now`` (seconds) against ``limit``."""
        ...


def gcra(tat: float | None, limit: Limit, now: float) -> tuple[Decision, float | None]:
    """Decide one request given the key's stored TAT; the new TAT to store, or None when denied."""
    burst = limit.count if limit.burst is None else limit.burst
    interval = limit.period_seconds / limit.count  # the time one request "costs"
    base = now if tat is None or tat < now else tat  # an idle key does not bank unused time
    new_tat = base + interval
    allow_at = new_tat - burst * interval  # earliest instant this request conforms
    if now + EPSILON < allow_at:
        # min(): with burst 1 the two are equal but may round apart; Retry-After never exceeds the reset.
        return Decision(False, burst, 0, min(allow_at, base) - now, base - now), None
    remaining = math.floor((now - allow_at) / interval + EPSILON)
    return Decision(True, burst, max(0, min(remaining, burst - 1)), 0.0, new_tat - now), new_tat


class MemoryRateLimitStore(RateLimitStore):
    """A process-local RateLimitStore holding at most ``max_keys`` keys."""

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._max = max_keys
        self._tats: dict[str, float] = {}  # least recently hit first

    async def hit(self, key: str, limit: Limit, now: float) -> Decision:
        """Count one request of ``key`` at ``now``; no await inside, so atomic on the event loop."""
        tat = self._tats.pop(key, None)
        decision, new_tat = gcra(tat, limit, now)
        kept = new_tat if new_tat is not None else tat
        if kept is not None:
            if len(self._tats) >= self._max:
                self._evict(now)
            self._tats[key] = kept
        return decision

    @property
    def size(self) -> int:
        """How many entries the store holds now."""
        return len(self._tats)

    def _evict(self, now: float) -> None:
        # A key whose TAT has passed is indistinguishable from an absent one, so dropping it is free.
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
        # Still full of live keys: forget the least recently hit (they get a fresh budget) down to 90%, so
        # the O(n) sweep above runs at most once per max_keys/10 new keys.
        excess = len(self._tats) - (self._max * 9) // 10
        for key in list(self._tats)[: max(0, excess)]:
            del self._tats[key]
