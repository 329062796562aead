"""The SQLite task writer commits on the event loop: it must not stall the loop, or fail, while another
connection holds the write lock (that connection may need the loop to finish its transaction)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from a2a_gateway.protocol import v1
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks import state
from a2a_gateway.tasks.models import TaskWrite


def _write(task_id: str) -> TaskWrite:
    msg = v1.Message(
        message_id="m", role=v1.Role.USER, parts=[v1.Part(text="x")], task_id=task_id, context_id="c"
    )
    now = datetime.now(UTC)
    return TaskWrite(task=state.new_task(task_id, "c", msg, now), owner="o", created_at=now, messages_from=0)


async def test_writer_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await db.upgrade(engine)
    repo = SqlTaskRepository(engine)
    try:
        async with engine.begin() as conn:
            # This transaction holds SQLite's write lock across awaits, as any async write does.
            await conn.execute(text("INSERT INTO login_failures (identifier, at_us) VALUES ('x', 1)"))
            written = repo.submit(_write("t1"))
            # The loop keeps running while the writer waits for the lock.
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert not written.done()  # type: ignore[attr-defined]
        await asyncio.wait_for(written, 5)
        assert await repo.get("t1", "o", None) is not None
    finally:
        await repo.close()
        await engine.dispose()
