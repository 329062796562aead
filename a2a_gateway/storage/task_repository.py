"""SqlTaskRepository: the task aggregate (task row, history, artifacts, push configs) in SQL."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.billing.models import Outcome, Settlement
from a2a_gateway.errors import InvalidParams
from a2a_gateway.protocol import v1
from a2a_gateway.storage import ledger_sql
from a2a_gateway.storage.tables import routed_calls, task_artifacts, task_messages, task_push_configs, tasks
from a2a_gateway.storage.task_writer import TaskWriter
from a2a_gateway.storage.timestamps import micros
from a2a_gateway.tasks.models import Orphan, Positioned, TaskOrigin, TaskPage, TaskQuery, TaskWrite

TERMINAL = [s.value for s in v1.TERMINAL_STATES]
INTERRUPTED = frozenset(s.value for s in v1.INTERRUPTED_STATES)


def _encode_cursor(status_ts: int, task_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([status_ts, task_id])).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        status_ts, task_id = orjson.loads(raw)
        if isinstance(status_ts, int) and isinstance(task_id, str):
            return status_ts, task_id
    except (binascii.Error, ValueError, TypeError):
        pass
    raise InvalidParams(
        "pageToken is not a token this server issued",
        violations=[{"field": "pageToken", "description": "invalid cursor"}],
    )


class SqlTaskRepository:
    """Implements tasks.ports.TaskRepository over SQLAlchemy Core."""

    def __init__(self, engine: AsyncEngine, holder: str | None = None) -> None:
        self._engine = engine
        self._holder = holder
        self._writer = TaskWriter(engine, holder)

    def submit(self, change: TaskWrite) -> Awaitable[None]:
        """Queue a write for the next group commit."""
        return self._writer.submit(change)

    @property
    def writer(self) -> TaskWriter:
        """The group-commit writer (routed-call records share its batches)."""
        return self._writer

    async def flush(self) -> None:
        """Wait until queued writes are committed."""
        await self._writer.flush()

    async def close(self) -> None:
        """Commit queued writes and stop the writer."""
        await self._writer.close()

    async def get(self, task_id: str, owner: str, history_length: int | None) -> v1.Task | None:
        """One task of an owner, history trimmed to the newest ``history_length`` messages."""
        return await self._one(task_id, tasks.c.owner == owner, history_length)

    async def get_routed(self, task_id: str, agent_id: str, history_length: int | None) -> v1.Task | None:
        """One task routed to ``agent_id``, whoever sent it (what that agent's own key may read)."""
        return await self._one(task_id, _routed_to(agent_id), history_length)

    async def list_routed(self, agent_id: str, query: TaskQuery) -> TaskPage:
        """A page of the tasks routed to ``agent_id``, paged as ``list_tasks`` (``query.owner`` unused)."""
        return await self._page(query, _routed_to(agent_id))

    async def _one(self, task_id: str, scope: Any, history_length: int | None) -> v1.Task | None:
        found = await self._positioned(task_id, scope, history_length)
        return found.task if found is not None else None

    async def positioned(self, task_id: str, owner: str, history_length: int | None) -> Positioned | None:
        """The task of an owner with the number of its last event the snapshot includes and its holder,
        all read as of one moment (a subscriber on another process resumes right after that event)."""
        return await self._positioned(task_id, tasks.c.owner == owner, history_length)

    async def _positioned(self, task_id: str, scope: Any, history_length: int | None) -> Positioned | None:
        async with self._engine.connect() as plain:
            # One snapshot for the row, its history and its artifacts (PostgreSQL reads each statement
            # as of its own start otherwise).
            conn = plain
            if self._engine.dialect.name == "postgresql":
                conn = await plain.execution_options(isolation_level="REPEATABLE READ")
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id, scope))).first()
            if row is None:
                return None
            history = await self._history(conn, [task_id], history_length)
            arts = await self._artifacts(conn, [task_id])
        task = _task(row, history.get(task_id, []), arts.get(task_id, []))
        return Positioned(task, int(row.last_seq), row.holder)

    async def claim(self, task_id: str, was: str | None) -> bool:
        """Make this process the task's holder if ``was`` still holds it (compare and set): of several
        processes taking an orphan over, exactly one wins."""
        held = tasks.c.holder.is_(None) if was is None else tasks.c.holder == was
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, held, tasks.c.state.not_in(TERMINAL))
                .values(holder=self._holder)
            )
        return bool(result.rowcount == 1)

    async def let_go(self, task_id: str) -> None:
        """This process no longer holds the task (paused for its caller: any process may answer it)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(tasks).where(tasks.c.id == task_id, tasks.c.holder == self._holder).values(holder=None)
            )

    async def orphans(
        self, alive: Collection[str], limit: int = 100, *, task_id: str | None = None
    ) -> list[Orphan]:
        """Non-terminal tasks (or the one ``task_id``) whose holder is none of the ``alive`` processes:
        its process stopped."""
        await self.flush()
        query = (
            select(tasks.c.id, tasks.c.owner, tasks.c.state, tasks.c.holder)
            .where(tasks.c.state.not_in(TERMINAL), tasks.c.holder.is_not(None))
            .order_by(tasks.c.updated_us)
            .limit(limit)
        )
        if task_id is not None:
            query = query.where(tasks.c.id == task_id)
        if alive:
            query = query.where(tasks.c.holder.not_in(list(alive)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Orphan(r.id, r.owner, v1.TaskState(r.state), r.holder) for r in rows]

    async def list_tasks(self, query: TaskQuery) -> TaskPage:
        """A page of tasks, newest status first, with an opaque keyset cursor."""
        return await self._page(query, tasks.c.owner == query.owner)

    async def _page(self, query: TaskQuery, scope: Any) -> TaskPage:
        filters: list[Any] = [scope]
        if query.context_id:
            filters.append(tasks.c.context_id == query.context_id)
        if query.state is not None:
            filters.append(tasks.c.state == query.state.value)
        if query.status_after is not None:
            filters.append(tasks.c.status_ts >= micros(query.status_after))
        page_filters = list(filters)
        if query.page_token:
            ts, last_id = _decode_cursor(query.page_token)
            page_filters.append(
                or_(tasks.c.status_ts < ts, and_(tasks.c.status_ts == ts, tasks.c.id < last_id))
            )
        async with self._engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(tasks).where(*filters))).scalar_one()
            rows = (
                await conn.execute(
                    select(tasks)
                    .where(*page_filters)
                    .order_by(tasks.c.status_ts.desc(), tasks.c.id.desc())
                    .limit(query.page_size + 1)
                )
            ).all()
            more = len(rows) > query.page_size
            rows = rows[: query.page_size]
            ids = [r.id for r in rows]
            history = await self._history(conn, ids, query.history_length)
            arts = await self._artifacts(conn, ids) if query.include_artifacts else {}
        token = _encode_cursor(rows[-1].status_ts, rows[-1].id) if more and rows else ""
        found = [_task(r, history.get(r.id, []), arts.get(r.id, [])) for r in rows]
        return TaskPage(tasks=found, next_page_token=token, total_size=int(total))

    async def _history(
        self, conn: Any, ids: Sequence[str], length: int | None
    ) -> dict[str, list[v1.Message]]:
        if length == 0:
            return {}
        found = await _children(conn, task_messages.c.message, task_messages, ids, v1.Message)
        if length is not None:
            found = {k: v[len(v) - length :] for k, v in found.items()}
        return found

    async def _artifacts(self, conn: Any, ids: Sequence[str]) -> dict[str, list[v1.Artifact]]:
        return await _children(conn, task_artifacts.c.artifact, task_artifacts, ids, v1.Artifact)

    async def origin(self, task_id: str, owner: str) -> TaskOrigin | None:
        """The skill and request a task of ``owner`` started from, when its first write stored them."""
        async with self._engine.connect() as conn:
            text = (
                await conn.execute(
                    select(tasks.c.origin).where(tasks.c.id == task_id, tasks.c.owner == owner)
                )
            ).scalar_one_or_none()
        return _origin(text)

    async def fail_inflight(
        self,
        status: v1.TaskStatus,
        keep: Collection[str] = (),
        paused_skills: Collection[str] = (),
    ) -> int:
        """Mark every non-terminal task failed but ``keep`` and the paused tasks of ``paused_skills``; the
        explanation joins each failed task's history, and the holds of the failed tasks are released in
        the same transaction."""
        await self.flush()
        spared = set(paused_skills)
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            found = (
                await conn.execute(
                    select(
                        tasks.c.id,
                        tasks.c.context_id,
                        tasks.c.state,
                        tasks.c.origin,
                        func.max(task_messages.c.seq),
                    )
                    .select_from(tasks.outerjoin(task_messages, task_messages.c.task_id == tasks.c.id))
                    .where(tasks.c.state.not_in(TERMINAL), tasks.c.id.not_in(list(keep)))
                    .group_by(tasks.c.id, tasks.c.context_id, tasks.c.state, tasks.c.origin)
                )
            ).all()
            rows = [
                (task_id, context_id, last_seq)
                for task_id, context_id, state, origin, last_seq in found
                if not (state in INTERRUPTED and _spared(origin, spared))
            ]
            for task_id, context_id, last_seq in rows:
                message, own = None, status
                if status.message is not None:
                    message = status.message.model_copy(update={"task_id": task_id, "context_id": context_id})
                    own = status.model_copy(update={"message": message})
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.id == task_id)
                    .values(
                        state=own.state.value,
                        status=own.model_dump_json(by_alias=True, exclude_none=True),
                        status_ts=micros(own.timestamp),
                        updated_us=micros(now),
                    )
                )
                if message is not None:
                    await conn.execute(
                        task_messages.insert().values(
                            task_id=task_id,
                            seq=(last_seq if last_seq is not None else -1) + 1,
                            message=message.model_dump_json(by_alias=True, exclude_none=True),
                        )
                    )
            if rows:
                # A task that will never run again gives its payer the credits back (decision 0016).
                releases = [Settlement(task_id, Outcome.RELEASE) for task_id, _, _ in rows]
                await conn.run_sync(ledger_sql.settle, releases, now)
        return len(rows)

    async def count_by_state(self) -> dict[str, int]:
        """How many tasks are in each state."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(tasks.c.state, func.count()).group_by(tasks.c.state))
            return {state: int(count) for state, count in rows}

    async def put_push_config(self, task_id: str, config: v1.TaskPushNotificationConfig) -> None:
        """Create or replace a push config."""
        body = config.model_dump_json(by_alias=True, exclude_none=True)
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(task_push_configs).where(
                    task_push_configs.c.task_id == task_id, task_push_configs.c.id == config.id
                )
            )
            await conn.execute(
                task_push_configs.insert().values(
                    task_id=task_id, id=config.id, config=body, created_at=datetime.now(UTC)
                )
            )

    async def get_push_config(self, task_id: str, config_id: str) -> v1.TaskPushNotificationConfig | None:
        """One push config."""
        async with self._engine.connect() as conn:
            text = (
                await conn.execute(
                    select(task_push_configs.c.config).where(
                        task_push_configs.c.task_id == task_id, task_push_configs.c.id == config_id
                    )
                )
            ).scalar_one_or_none()
        return None if text is None else v1.TaskPushNotificationConfig.model_validate_json(text)

    async def list_push_configs(self, task_id: str) -> list[v1.TaskPushNotificationConfig]:
        """A task's push configs, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(task_push_configs.c.config)
                .where(task_push_configs.c.task_id == task_id)
                .order_by(task_push_configs.c.created_at, task_push_configs.c.id)
            )
            return [v1.TaskPushNotificationConfig.model_validate_json(t) for (t,) in rows]

    async def delete_push_config(self, task_id: str, config_id: str) -> bool:
        """Remove a push config; False when there was none."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(task_push_configs).where(
                    task_push_configs.c.task_id == task_id, task_push_configs.c.id == config_id
                )
            )
        return bool(result.rowcount)


M = TypeVar("M", bound=BaseModel)


def _origin(text: str | None) -> TaskOrigin | None:
    """A stored origin; None when there is none or it is unreadable."""
    if not text:
        return None
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    skill, metadata = raw.get("skill"), raw.get("metadata") or {}
    if not isinstance(skill, str) or not isinstance(metadata, dict):
        return None
    return TaskOrigin(skill_id=skill, metadata=metadata, streaming=bool(raw.get("streaming")))


def _spared(text: str | None, skills: set[str]) -> bool:
    origin = _origin(text) if skills else None
    return origin is not None and origin.skill_id in skills


async def _children(
    conn: Any, body: Any, table: Any, ids: Sequence[str], model: type[M]
) -> dict[str, list[M]]:
    """Rows of a task's child table (history or artifacts), grouped by task, in ``seq`` order."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(table.c.task_id, body).where(table.c.task_id.in_(ids)).order_by(table.c.task_id, table.c.seq)
    )
    found: dict[str, list[M]] = {}
    for task_id, text in rows:
        found.setdefault(task_id, []).append(model.model_validate_json(text))
    return found


def _routed_to(agent_id: str) -> Any:
    """Tasks whose routed-call record names ``agent_id`` (one record per relayed task)."""
    return tasks.c.id.in_(select(routed_calls.c.task_id).where(routed_calls.c.agent_id == agent_id))


def _task(row: Row[Any], history: list[v1.Message], artifacts: list[v1.Artifact]) -> v1.Task:
    return v1.Task(
        id=row.id,
        context_id=row.context_id,
        status=v1.TaskStatus.model_validate_json(row.status),
        history=history or None,
        artifacts=artifacts or None,
        metadata=orjson.loads(row.metadata) if row.metadata else None,
    )
