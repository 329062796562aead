"""The gateway's hold sweeper: every so often, the pending holds nobody else will settle are settled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from a2a_gateway.billing.service import BillingService
from a2a_gateway.billing.sweep import OpenBudget, PendingHold, budgets_to_close, plan
from a2a_gateway.protocol.base import utc_now

log = logging.getLogger(__name__)


class PendingHolds(Protocol):
    """Where pending holds are read from (storage.pending_holds.SqlPendingHolds)."""

    async def pending(self, limit: int = 500) -> list[PendingHold]:
        """Pending holds with their tasks' states."""
        ...

    async def open_budgets(self, limit: int = 500) -> list[OpenBudget]:
        """Open run budgets with whether their runs have ended."""
        ...


class PausedTasks(Protocol):
    """Cancels a paid task that waited too long for its caller (the task service, adapted)."""

    async def cancel_paused(self, owner: str, task_id: str) -> bool:
        """Cancel it (its end releases the hold); False when it is not here or already ended."""
        ...


class HoldSweeper:
    """Settles holds whose task ended without settling, releases holds no task came of, ends paid
    tasks paused longer than ``paused_limit`` (decision 0016), and closes run budgets whose run ended or
    never came to be (decision 0018)."""

    def __init__(
        self,
        holds: PendingHolds,
        billing: BillingService,
        tasks: PausedTasks,
        *,
        interval: float,
        paused_limit: timedelta,
        orphan_after: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._holds = holds
        self._billing = billing
        self._tasks = tasks
        self._interval = interval
        self._paused_limit = paused_limit
        self._orphan_after = orphan_after
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One pass; the number of holds settled, tasks ended and budgets closed."""
        now = self._clock()
        decided = plan(
            await self._holds.pending(),
            now,
            orphan_after=self._orphan_after,
            paused_limit=self._paused_limit,
        )
        settled = len(await self._billing.settle(decided.settlements)) if decided.settlements else 0
        ended = 0
        for owner, task_id in decided.expire:
            if await self._tasks.cancel_paused(owner, task_id):
                ended += 1
        closed = 0
        for run_id in budgets_to_close(
            await self._holds.open_budgets(), now, orphan_after=self._orphan_after
        ):
            if await self._billing.close_budget(run_id) is not None:
                closed += 1
        if settled or ended or closed:
            log.info(
                "hold sweeper settled %d holds, ended %d paused paid tasks and closed %d run budgets",
                settled,
                ended,
                closed,
            )
        return settled + ended + closed

    async def start(self) -> None:
        """Sweep every ``interval`` seconds in the background."""
        self._task = asyncio.create_task(self._run(), name="hold-sweeper")

    async def close(self) -> None:
        """Stop sweeping."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("hold sweep failed; the next one tries again")
