"""Group commit of task writes: concurrent changes are merged per task and committed together.

A batch that the database refuses is written again one write at a time, so a row only one task's data
breaks fails that task's write alone, never the other callers' tasks in the same batch.

Workflow run saves ride the same batches: a save updates its run row only if the row's ``seq`` is still
the one its driver saved last, and inserts the run's new events only then; its outcome (saved or
refused) is known when the batch commits. On SQLite this keeps the run saves and the task writes from
taking turns at the one write lock (measured: the writer's lock retries were most of a workflow step's
wait).

A write may carry its task's settlement (decision 0016): the batch's holds are captured or released by
one ``ledger_sql.settle`` on the batch's own connection, after its task rows, so a terminal state and
its money commit together or not at all. A settlement the ledger refuses fails its own write only, by
the same one-at-a-time retry.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import bindparam, case, delete, literal_column, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing.models import Settlement
from a2a_gateway.errors import Unavailable
from a2a_gateway.protocol import v1
from a2a_gateway.routing.calls import RoutedCall
from a2a_gateway.storage import ledger_sql
from a2a_gateway.storage.engine import sqlite_writer_engine
from a2a_gateway.storage.tables import (
    routed_calls,
    task_artifacts,
    task_messages,
    tasks,
    workflow_run_events,
    workflow_runs,
)
from a2a_gateway.storage.timestamps import micros
from a2a_gateway.tasks.models import TaskOrigin, TaskWrite

log = logging.getLogger(__name__)
CHECKPOINT_SECONDS = 1.0
LOCK_WAIT_SECONDS = 10.0
Rows = tuple[list[dict[str, Any]], ...]  # tasks, history, dropped artifacts, artifacts, routed calls


RUN_COLUMNS = ("status", "steps", "inputs", "budget", "seq", "error", "ended_us")


@dataclass(frozen=True, slots=True)
class RunSave:
    """A workflow run's new state (``values``: the RUN_COLUMNS of its row) and its new events' rows,
    to be stored only if the run row's ``seq`` is still ``expected_seq``."""

    run_id: str
    expected_seq: int
    values: dict[str, Any]
    events: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one transaction writes: the rows, the settlements of the tasks among them, the run saves."""

    rows: Rows
    at: datetime  # the write time: the rows' ``updated_us`` and the holds' settlement time
    settlements: Sequence[Settlement] = ()
    runs: Sequence[RunSave] = ()


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


class _Statements:
    """The statements of a batch (tasks, history, artifacts, routed calls), compiled once for the dialect.

    Rows go to the driver as positional tuples (``exec_driver_sql``): the values are already plain
    str/int, so SQLAlchemy's per-row parameter processing (a sixth of a request's CPU, measured) is skipped.
    """

    def __init__(self, dialect: Dialect) -> None:
        insert: Any = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        upsert = insert(tasks)
        # A task's first terminal state stays: when two processes end the same task (completed here,
        # canceled there), the stored state is the one whose settlement won the hold, never the other.
        ended = tasks.c.state.in_([literal_column(f"'{s.value}'") for s in v1.TERMINAL_STATES])
        kept = {
            c: case((ended, tasks.c[c]), else_=upsert.excluded[c])
            for c in ("state", "status", "status_ts", "last_seq")
        }
        # Only the task's holder writes it (decision 0020): a process whose task was taken over while it
        # stalled changes nothing (NULL: a single-process gateway, which holds every task).
        upsert = upsert.on_conflict_do_update(
            index_elements=[tasks.c.id],
            set_={**kept, "metadata": upsert.excluded.metadata, "updated_us": upsert.excluded.updated_us},
            where=or_(tasks.c.holder.is_(None), tasks.c.holder == upsert.excluded.holder),
        )
        # History is append-only: a message an earlier batch already wrote is skipped.
        messages = insert(task_messages).on_conflict_do_nothing()
        # A subscription's window lets its oldest artifacts go.
        drop = delete(task_artifacts).where(
            task_artifacts.c.task_id == bindparam("drop_task_id"),
            task_artifacts.c.artifact_id == bindparam("drop_artifact_id"),
        )
        art = insert(task_artifacts)
        art = art.on_conflict_do_update(
            index_elements=[task_artifacts.c.task_id, task_artifacts.c.artifact_id],
            set_={"seq": art.excluded.seq, "artifact": art.excluded.artifact},
        )
        calls = insert(routed_calls)
        calls = calls.on_conflict_do_update(
            index_elements=[routed_calls.c.task_id],
            set_={c.name: calls.excluded[c.name] for c in routed_calls.c if c.name != "task_id"},
        )
        self.all = tuple(_compile(s, dialect) for s in (upsert, messages, drop, art, calls))
        run = workflow_runs.c
        save = (
            update(workflow_runs)
            .where(run.id == bindparam("w_run_id"), run.seq == bindparam("w_expected_seq"))
            .values({c: bindparam(f"w_{c}") for c in RUN_COLUMNS})
        )
        self.run_save = _compile(save, dialect)
        self.run_events = _compile(workflow_run_events.insert(), dialect)

    def execute(self, conn: Connection, batch: _Batch) -> list[bool]:
        """Run a batch on a connection that is inside a transaction; whether each run save was stored."""
        for (sql, order), rows in zip(self.all, batch.rows, strict=True):
            if rows:
                conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in rows])
        if batch.settlements:
            # After the task rows, in their transaction: a hold is settled only with its terminal state.
            ledger_sql.settle(conn, batch.settlements, batch.at)
        return [self._save_run(conn, save) for save in batch.runs]

    def _save_run(self, conn: Connection, save: RunSave) -> bool:
        sql, order = self.run_save
        params = {"w_run_id": save.run_id, "w_expected_seq": save.expected_seq}
        params.update({f"w_{c}": save.values[c] for c in RUN_COLUMNS})
        if conn.exec_driver_sql(sql, tuple(params[name] for name in order)).rowcount != 1:
            return False  # another driver moved the run on: nothing of this save is written
        if save.events:
            sql, order = self.run_events
            conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in save.events])
        return True


def _compile(statement: Any, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    compiled = statement.compile(dialect=dialect)
    assert compiled.positiontup is not None, "the drivers in use take positional parameters"
    return str(compiled), tuple(compiled.positiontup)


class TaskWriter:
    """One background writer per engine: one transaction in flight, batches grow with the load.

    On a SQLite file the batch is committed on the event loop through the plain sqlite3 driver. In WAL
    mode with ``synchronous=NORMAL`` a commit does not fsync, so one batch costs well under a
    millisecond; measured, this beats a writer thread (thread hops and GIL hand-offs) by a third.
    The fsync of WAL checkpoints runs in a background thread on its own connection.
    """

    def __init__(self, engine: AsyncEngine, holder: str | None = None) -> None:
        self._engine = engine
        self._holder = holder  # this process, when several share the database (stamped on every task row)
        self._statements = _Statements(engine.dialect)
        self._sync = sqlite_writer_engine(engine)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wal-checkpoint") if self._sync else None
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointed_at = time.monotonic()
        self._checkpoint_conn: sqlite3.Connection | None = None
        # What the next batch holds, each write with its own outcome; a batch-wide future serves flush().
        self._pending: dict[str, TaskWrite] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._calls: dict[str, RoutedCall] = {}
        self._call_waiters: dict[str, asyncio.Future[None]] = {}
        self._runs: list[tuple[RunSave, asyncio.Future[bool]]] = []
        self._next: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False

    def submit(self, change: TaskWrite) -> Awaitable[None]:
        """Queue a change; the returned future resolves when it is committed (or fails when it is not)."""
        if self._closing:
            raise Unavailable("The gateway is shutting down")
        task_id = change.task.id
        earlier = self._pending.get(task_id)
        if earlier is None:
            self._pending[task_id] = change
            waiter = self._waiters[task_id] = asyncio.get_running_loop().create_future()
        else:
            earlier.merge(change)
            waiter = self._waiters[task_id]
        self._queued()
        return waiter

    def submit_call(self, call: RoutedCall) -> Awaitable[None]:
        """Queue a routed-call record; it commits with the task writes of the same batch."""
        if self._closing:
            raise Unavailable("The gateway is shutting down")
        # The record object is read when the batch is built, so its latest state is what lands.
        self._calls[call.task_id] = call
        waiter = self._call_waiters.get(call.task_id)
        if waiter is None:
            waiter = self._call_waiters[call.task_id] = asyncio.get_running_loop().create_future()
        self._queued()
        return waiter

    def submit_run(self, save: RunSave) -> Awaitable[bool]:
        """Queue a run save; the future says whether it was stored (False: the run's ``seq`` had moved
        on), or fails when the batch could not be committed."""
        if self._closing:
            raise Unavailable("The gateway is shutting down")
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._runs.append((save, waiter))
        self._queued()
        return waiter

    def _queued(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="task-writer")

    async def flush(self) -> None:
        """Wait for everything queued so far."""
        waits = [f for f in (self._inflight, self._next) if f is not None]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    async def close(self) -> None:
        """Commit what is queued and stop."""
        await self.flush()
        self._closing = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._thread is not None:
            self._thread.submit(self._close_checkpoint_conn).result()
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One more loop turn lets tasks that are already runnable add their writes to this batch:
            # a quick task's creation and completion then share one commit (measured: +25% at c=1).
            await asyncio.sleep(0)
            while self._pending or self._calls or self._runs:
                batch, self._pending = self._pending, {}
                waiters, self._waiters = self._waiters, {}
                calls, self._calls = self._calls, {}
                call_waiters, self._call_waiters = self._call_waiters, {}
                runs, self._runs = self._runs, []
                done, self._next = self._next, None
                assert done is not None
                self._inflight = done
                try:
                    await self._write(batch, waiters, calls, call_waiters, runs)
                finally:
                    self._inflight = None
                    done.set_result(None)

    async def _write(
        self,
        batch: dict[str, TaskWrite],
        waiters: dict[str, asyncio.Future[None]],
        calls: dict[str, RoutedCall],
        call_waiters: dict[str, asyncio.Future[None]],
        runs: list[tuple[RunSave, asyncio.Future[bool]]],
    ) -> None:
        """Commit a batch; when the database refuses it, write it again one write at a time."""
        # Rows go in task (and run) id order, so two processes' batches lock shared rows (tasks, then
        # their holds, then runs) in the same order and never wait on each other in a cycle. The sort is
        # stable: two saves of one run stay in the order they were made.
        runs = sorted(runs, key=lambda item: item[0].run_id)
        try:
            changes = [batch[task_id] for task_id in sorted(batch)]
            at = datetime.now(UTC)
            rows = (
                *_rows(changes, at, self._holder),
                [_call_row(calls[task_id]) for task_id in sorted(calls)],
            )
            saved = await self._commit(_Batch(rows, at, _settlements(changes), [r for r, _ in runs]))
        except Exception as exc:
            if len(batch) + len(calls) + len(runs) == 1 or _store_failing(exc):
                log.exception("task write batch failed", extra={"tasks": len(batch), "runs": len(runs)})
                failed: list[asyncio.Future[Any]] = [*waiters.values(), *call_waiters.values()]
                for waiter in (*failed, *(w for _, w in runs)):
                    _fail(waiter, Unavailable("The task store is unavailable"))
                return
            count = len(batch) + len(calls) + len(runs)
            log.warning("task write batch refused; writing its %d writes one by one", count)
            for task_id, change in batch.items():
                await self._write_one(waiters[task_id], task_id, change)
            for task_id, call in calls.items():
                await self._write_one(call_waiters[task_id], task_id, call)
            for save, waiter in runs:
                await self._save_one(waiter, save)
        else:
            for waiter in (*waiters.values(), *call_waiters.values()):
                _succeed(waiter)
            for (_, run_waiter), stored in zip(runs, saved, strict=True):
                if not run_waiter.done():
                    run_waiter.set_result(stored)

    async def _write_one(
        self, waiter: asyncio.Future[None], task_id: str, item: TaskWrite | RoutedCall
    ) -> None:
        try:
            at = datetime.now(UTC)
            if isinstance(item, TaskWrite):
                one = _Batch((*_rows((item,), at, self._holder), []), at, _settlements((item,)))
            else:
                one = _Batch(([], [], [], [], [_call_row(item)]), at)
            await self._commit(one)
        except Exception:
            log.exception("task write refused", extra={"taskId": task_id})
            _fail(waiter, Unavailable("The task store refused this task's write"))
        else:
            _succeed(waiter)

    async def _save_one(self, waiter: asyncio.Future[bool], save: RunSave) -> None:
        try:
            at = datetime.now(UTC)
            stored = await self._commit(_Batch(([], [], [], [], []), at, runs=[save]))
        except Exception:
            log.exception("run save refused", extra={"runId": save.run_id})
            _fail(waiter, Unavailable("The store refused this run's save"))
        else:
            if not waiter.done():
                waiter.set_result(stored[0])

    async def _commit(self, batch: _Batch) -> list[bool]:
        if self._sync is not None:
            saved = await self._commit_on_loop(self._sync, batch)
            self._maybe_checkpoint()
            return saved
        async with self._engine.begin() as conn:
            return await conn.run_sync(self._statements.execute, batch)

    async def _commit_on_loop(self, sync: Engine, batch: _Batch) -> list[bool]:
        """Commit without blocking the loop: while another connection holds the write lock, yield and
        retry (that connection may need the loop to finish its own transaction)."""
        delay, deadline = 0.0005, time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                with sync.begin() as conn:
                    saved = self._statements.execute(conn, batch)
                return saved
            except OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _maybe_checkpoint(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        now = time.monotonic()
        if now - self._checkpointed_at < CHECKPOINT_SECONDS:
            return
        self._checkpointed_at = now
        self._checkpoint = asyncio.get_running_loop().run_in_executor(self._thread, self._run_checkpoint)
        self._checkpoint.add_done_callback(_log_failure)

    def _run_checkpoint(self) -> None:
        # Runs in the checkpoint thread, which owns this connection.
        if self._checkpoint_conn is None:
            assert self._sync is not None and self._sync.url.database
            self._checkpoint_conn = sqlite3.connect(self._sync.url.database)
            self._checkpoint_conn.execute("PRAGMA busy_timeout=5000")
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _close_checkpoint_conn(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None


def _call_row(call: RoutedCall) -> dict[str, Any]:
    return {
        "task_id": call.task_id,
        "requester": call.requester,
        "agent_id": call.agent_id,
        "skill_id": call.skill_id,
        "upstream_task_id": call.upstream_task_id,
        "upstream_context_id": call.upstream_context_id,
        "started_us": micros(call.started_at),
        "first_response_ms": call.first_response_ms,
        "finished_us": micros(call.finished_at) if call.finished_at is not None else None,
        "outcome": call.outcome,
        "error": call.error,
    }


def _origin(origin: TaskOrigin | None) -> str | None:
    if origin is None:
        return None
    try:
        return dumps({"skill": origin.skill_id, "metadata": origin.metadata, "streaming": origin.streaming})
    except TypeError:
        return None  # metadata JSON cannot hold: the task is stored, it just cannot be replayed


def _settlements(batch: Iterable[TaskWrite]) -> list[Settlement]:
    """The holds a batch settles: one per write that carries a settlement."""
    return [Settlement(c.task.id, c.settlement) for c in batch if c.settlement is not None]


def _rows(batch: Iterable[TaskWrite], at: datetime, holder: str | None) -> Rows:
    """Serialize a batch on the event loop, where the task objects are owned."""
    now = micros(at)
    task_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    dropped_rows: list[dict[str, Any]] = []
    artifact_rows: list[dict[str, Any]] = []
    for change in batch:
        task = change.task
        task_rows.append(
            {
                "id": task.id,
                "context_id": task.context_id or "",
                "owner": change.owner,
                "state": task.status.state.value,
                "status": _json(task.status),
                "status_ts": micros(task.status.timestamp),
                "metadata": dumps(task.metadata) if task.metadata is not None else None,
                "created_us": micros(change.created_at),
                "updated_us": now,
                # Only an insert stores it (the upsert leaves it), and only a first write inserts.
                "origin": _origin(change.origin) if change.messages_from == 0 else None,
                "holder": holder,
                "last_seq": change.seq,
            }
        )
        history = task.history or []
        message_rows.extend(
            {
                "task_id": task.id,
                "seq": seq,
                "message": history[seq].model_dump_json(by_alias=True, exclude_none=True),
            }
            for seq in range(change.messages_from, len(history))
        )
        dropped_rows.extend(
            {"drop_task_id": task.id, "drop_artifact_id": artifact_id}
            for artifact_id in change.dropped_artifact_ids
        )
        if change.artifact_ids:
            base = change.artifact_seq_base
            artifact_rows.extend(
                {
                    "task_id": task.id,
                    "artifact_id": artifact.artifact_id,
                    "seq": base + seq,
                    "artifact": _json(artifact),
                }
                for seq, artifact in enumerate(task.artifacts or [])
                if artifact.artifact_id in change.artifact_ids
            )
    return task_rows, message_rows, dropped_rows, artifact_rows


def _json(model: BaseModel) -> str:
    return model.model_dump_json(by_alias=True, exclude_none=True)


def _locked(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock."""
    text = str(exc.orig).lower()
    return isinstance(exc.orig, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("WAL checkpoint failed", exc_info=future.exception())


def _store_failing(exc: Exception) -> bool:
    """Whether the store itself failed (locked, unreachable): then no single row is to blame."""
    return isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError)


def _succeed(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a waiter may have been cancelled by its caller
        waiter.set_result(None)


def _fail(waiter: asyncio.Future[Any], error: Exception) -> None:
    if waiter.done():
        return
    waiter.set_exception(error)
    # Most writers never wait for the outcome (the failure is logged here); one that does still gets it.
    waiter.exception()
