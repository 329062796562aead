"""Group commit of task writes: concurrent changes are coalesced per task and committed together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from a2a_gateway.errors import Unavailable
from a2a_gateway.storage.tables import task_artifacts, task_messages, tasks
from a2a_gateway.tasks.models import TaskWrite

log = logging.getLogger(__name__)


def micros(value: datetime | None) -> int:
    """Microseconds since the epoch (UTC)."""
    value = value or datetime.now(UTC)
    return int(value.timestamp() * 1_000_000)


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


class TaskWriter:
    """One background writer per engine: at most one transaction in flight, batches grow under load."""

    def __init__(self, engine: AsyncEngine, batch_max: int = 512) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._pending: dict[str, TaskWrite] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False

    def submit(self, change: TaskWrite) -> Awaitable[None]:
        """Queue a change; the returned future resolves when it is committed."""
        if self._closing:
            raise Unavailable("The gateway is shutting down")
        earlier = self._pending.get(change.task.id)
        if earlier is None:
            self._pending[change.task.id] = change
        else:
            earlier.merge(change)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A caller may not wait for the outcome; errors are logged here instead of being lost.
        future.add_done_callback(_consume)
        self._waiters.append(future)
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="task-writer")
        return future

    async def flush(self) -> None:
        """Wait for everything queued so far."""
        if self._waiters:
            await asyncio.gather(*self._waiters, return_exceptions=True)

    async def close(self) -> None:
        """Commit what is queued and stop."""
        await self.flush()
        self._closing = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, waiters = self._take()
                try:
                    async with self._engine.begin() as conn:
                        await self._write(conn, batch)
                except Exception:
                    log.exception("task write batch failed", extra={"tasks": len(batch)})
                    for w in waiters:
                        if not w.done():
                            w.set_exception(Unavailable("The task store is unavailable"))
                    continue
                for w in waiters:
                    if not w.done():
                        w.set_result(None)

    def _take(self) -> tuple[list[TaskWrite], list[asyncio.Future[None]]]:
        if len(self._pending) <= self._batch_max:
            batch = list(self._pending.values())
            self._pending = {}
            waiters, self._waiters = self._waiters, []
            return batch, waiters
        # Over the batch size: commit a slice now; the rest (and all waiters) ride the next batch.
        ids = list(self._pending)[: self._batch_max]
        batch = [self._pending.pop(i) for i in ids]
        return batch, []

    async def _write(self, conn: AsyncConnection, batch: list[TaskWrite]) -> None:
        now = datetime.now(UTC)
        rows, messages, artifacts = [], [], []
        for change in batch:
            task = change.task
            rows.append(
                {
                    "id": task.id,
                    "context_id": task.context_id or "",
                    "owner": change.owner,
                    "state": task.status.state.value,
                    "status": task.status.model_dump_json(by_alias=True, exclude_none=True),
                    "status_ts": micros(task.status.timestamp),
                    "metadata": dumps(task.metadata) if task.metadata is not None else None,
                    "created_at": change.created_at,
                    "updated_at": now,
                }
            )
            history = task.history or []
            for seq in range(change.messages_from, len(history)):
                messages.append(
                    {
                        "task_id": task.id,
                        "seq": seq,
                        "message": history[seq].model_dump_json(by_alias=True, exclude_none=True),
                    }
                )
            if change.artifact_ids:
                for seq, artifact in enumerate(task.artifacts or []):
                    if artifact.artifact_id in change.artifact_ids:
                        artifacts.append(
                            {
                                "task_id": task.id,
                                "artifact_id": artifact.artifact_id,
                                "seq": seq,
                                "artifact": artifact.model_dump_json(by_alias=True, exclude_none=True),
                            }
                        )
        upsert = self._insert(tasks)
        upsert = upsert.on_conflict_do_update(
            index_elements=[tasks.c.id],
            set_={
                "state": upsert.excluded.state,
                "status": upsert.excluded.status,
                "status_ts": upsert.excluded.status_ts,
                "metadata": upsert.excluded.metadata,
                "updated_at": upsert.excluded.updated_at,
            },
        )
        await conn.execute(upsert, rows)
        if messages:
            # History is append-only; a message already written by an earlier batch is skipped.
            await conn.execute(self._insert(task_messages).on_conflict_do_nothing(), messages)
        if artifacts:
            art = self._insert(task_artifacts)
            art = art.on_conflict_do_update(
                index_elements=[task_artifacts.c.task_id, task_artifacts.c.artifact_id],
                set_={"seq": art.excluded.seq, "artifact": art.excluded.artifact},
            )
            await conn.execute(art, artifacts)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
