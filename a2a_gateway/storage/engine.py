"""Engine creation and schema upgrade for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable across app crashes in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 64 MiB of page cache (the default is 2 MiB): random-key index pages stay hot as tables grow.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, busy timeout and foreign keys, and its directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Checkpoints fsync; the task writer runs them in a background thread instead of on commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    # The writer commits on the event loop: it must never sleep inside SQLite waiting for a lock that
    # another (async) connection can only release once the loop runs again. It retries instead.
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def sqlite_writer_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file, a plain-driver twin used by the task writer (None for other databases)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync = create_sync_engine(url.set(drivername="sqlite"), pool_size=1, max_overflow=0)
    event.listen(sync, "connect", _sqlite_pragmas)
    event.listen(sync, "connect", _writer_pragmas)
    return sync


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema's migration revision, None before the first upgrade."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def is_reachable(engine: AsyncEngine) -> bool:
    """Whether the database answers a trivial query (readiness)."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        log.warning("database readiness check failed", exc_info=True)
        return False
