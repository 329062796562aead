"""Stored trust scores brought up to date in the background, at most once per interval per agent.

Recomputing a score reads the agent's evidence window, so doing it on every routed call made each call
cost more than the one before (docs/performance.md, issue 10). Evidence is stored at once; the stored
score, which discovery and routing read, follows within ``interval`` seconds. Reads of the trust API
compute the score fresh and never lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from a2a_gateway.trust.service import TrustService

log = logging.getLogger(__name__)


class ScoreRefresher:
    """Collects agents whose evidence changed and refreshes each once per pass."""

    def __init__(
        self,
        trust: TrustService,
        *,
        interval: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._trust = trust
        self._interval = interval
        self._sleep = sleep
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def mark(self, agent_id: str) -> None:
        """The agent's evidence changed: refresh its stored score at the next pass."""
        self._dirty.add(agent_id)

    async def flush(self) -> int:
        """Refresh every marked agent now; how many were refreshed."""
        dirty, self._dirty = self._dirty, set()
        for agent_id in sorted(dirty):
            try:
                await self._trust.refresh(agent_id)
            except Exception:
                log.exception("refreshing a trust score failed", extra={"agentId": agent_id})
        return len(dirty)

    async def start(self) -> None:
        """Refresh in the background every ``interval`` seconds."""
        self._task = asyncio.create_task(self._run(), name="trust-refresher")

    async def close(self) -> None:
        """Stop, after one last pass so no marked agent is left behind."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._sleep(self._interval)
            await self.flush()
