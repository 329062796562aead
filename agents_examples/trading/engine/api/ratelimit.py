"""A small in-memory sliding-window rate limit: at most ``limit`` hits per ``window`` seconds per key.

Each key keeps the times of its hits within the window; a hit that would be one too many is refused
with the seconds until the oldest one leaves the window (the ``Retry-After``). Refused hits are not
counted, so a client that waits as told gets in. Keys with no hit inside the window are forgotten,
and at most ``max_keys`` are kept (the least recently used go first), so memory stays bounded
whoever calls. The clock is injected (``time.monotonic`` by default) so tests never sleep.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    """Per-key hit budgets over a sliding window."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if limit < 1 or window_seconds <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be at least 1 and window_seconds positive")
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str) -> int | None:
        """Count a hit for ``key``: None when allowed, else the whole seconds to wait (at least 1)."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            self._evict()
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None

    def remaining(self, key: str) -> int:
        """Hits ``key`` may still make now."""
        now = self._clock()
        hits = self._hits.get(key, deque())
        return self.limit - sum(1 for t in hits if t > now - self.window)

    def _evict(self) -> None:
        now = self._clock()
        if len(self._hits) <= self._max_keys:
            return
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)
