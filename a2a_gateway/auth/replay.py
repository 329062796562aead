"""Refusing a caller assertion seen before: its ``jti`` is remembered until the assertion expires.

Memory is bounded: an entry lives only until its assertion's ``exp`` (seconds, as the gateway issues
them), and at most ``max_entries`` are kept. When that many unexpired assertions have been seen, further
ones are refused until the oldest expire (failing closed: a flood of valid assertions cannot push a
remembered one out and make it replayable). Only assertions whose signature verified are recorded, so
forged ones cannot fill it. The memory is per process; agents running several processes behind one
address would each accept a replay once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime
from typing import Final

from a2a_gateway.protocol.base import utc_now

DEFAULT_MAX_ENTRIES: Final = 100_000


class ReplayGuard:
    """Remembers assertion ids until they expire; ``first_use`` says whether one is new."""

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._seen: dict[str, int] = {}
        self._expiries: list[tuple[int, str]] = []  # a heap: the soonest expiry first

    def first_use(self, jti: str, expires: int) -> bool:
        """Record ``jti`` (valid until ``expires``, epoch seconds); False for a replay or when full."""
        now = self._clock().timestamp()
        self._forget_expired(now)
        if jti in self._seen:
            return False
        if expires <= now:
            return False  # expired already: never valid, and nothing worth remembering
        if len(self._seen) >= self._max:
            return False
        self._seen[jti] = expires
        heapq.heappush(self._expiries, (expires, jti))
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, jti = heapq.heappop(self._expiries)
            self._seen.pop(jti, None)
