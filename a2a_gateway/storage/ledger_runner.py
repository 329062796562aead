"""Runs ledger transactions: on a SQLite file through the plain driver on the event loop, elsewhere on
the async engine with ``run_sync``; on PostgreSQL, single-statement writes (a hold) on connections of
the runner's own.

On SQLite a write transaction starts with BEGIN IMMEDIATE, so it holds the write lock from its first
read (the balance it checks cannot change under it). It never sleeps inside SQLite waiting for that
lock: another connection may need the event loop to finish its own transaction, so a locked database
is retried with short asynchronous pauses, as the task writer does. A write costs well under a
millisecond this way (no thread hops); measured in the report of issue 10.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
LOCK_WAIT_SECONDS = 10.0
# PostgreSQL connections of fetchrow, besides the engine's pool: a hold holds one for a round trip and a
# commit, so a few serve hundreds of holds a second (and they count against the server's max_connections).
OWN_CONNECTIONS = 4


async def _keep(_conn: asyncpg.Connection) -> None:
    """A connection back from one autocommit statement has no state to reset (saves a round trip)."""


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=0")  # never block the loop on a lock: retried asynchronously
    cursor.close()


def _sqlite_twin(engine: AsyncEngine) -> Engine | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    # AUTOCOMMIT leaves transactions to us (BEGIN IMMEDIATE / BEGIN ... COMMIT).
    sync = create_sync_engine(
        url.set(drivername="sqlite"), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT"
    )
    event.listen(sync, "connect", _pragmas)
    return sync


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return isinstance(exc.orig, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class LedgerRunner:
    """One transaction per call; the function gets a sync Connection inside it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync = _sqlite_twin(engine)
        self.postgres = engine.dialect.name == "postgresql"
        self._pool: asyncpg.Pool | None = None  # PostgreSQL: connections of its own for fetchrow
        self._pool_lock = asyncio.Lock()

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction; it commits when ``fn`` returns and rolls back if it raises."""
        if self._sync is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        sync = self._sync
        return await self._retried(lambda: self._on_loop(sync, fn, "BEGIN IMMEDIATE"))

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        """PostgreSQL: run one statement on its own (autocommit: the statement is its transaction) and
        return its first row, on the runner's own asyncpg connections.

        A hold is one statement, so its cost is the round trip and the commit; through the engine's pool
        it was half as much again (a ping per checkout, the async adapter's work). A connection found
        closed is replaced once: the statements sent here are a hold (a second one conflicts) and reads.
        """
        pool = await self._own_pool()
        try:
            async with pool.acquire() as conn:
                return await conn.fetchrow(sql, *args)
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            async with pool.acquire() as conn:
                return await conn.fetchrow(sql, *args)

    async def _own_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    dsn = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                    self._pool = await asyncpg.create_pool(
                        dsn, min_size=1, max_size=OWN_CONNECTIONS, reset=_keep, statement_cache_size=16
                    )
        return self._pool

    @staticmethod
    async def _retried(attempt: Callable[[], T]) -> T:
        delay, deadline = 0.0005, time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return attempt()
            except OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def read(self, fn: Callable[[Connection], T], *, small: bool = False) -> T:
        """Run ``fn`` in one consistent read snapshot (a SQLite read transaction; REPEATABLE READ).

        A ``small`` read (a few rows by key) of a SQLite file runs on the event loop like the writes:
        it takes far less time than the thread hops of the async driver would. Large reads stay off it.
        """
        sync = self._sync
        if small and sync is not None:
            return await self._retried(lambda: self._on_loop(sync, fn, "BEGIN"))
        async with self._engine.connect() as conn:
            if self.postgres:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            else:
                # The driver opens transactions before writes only; a read snapshot is asked for.
                await conn.exec_driver_sql("BEGIN")
            try:
                return await conn.run_sync(fn)
            finally:
                await conn.rollback()

    async def aclose(self) -> None:
        """Release the runner's own connections (SQLite's, PostgreSQL's pool)."""
        if self._sync is not None:
            self._sync.dispose()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @staticmethod
    def _on_loop(sync: Engine, fn: Callable[[Connection], T], begin: str) -> T:
        with sync.connect() as conn:
            conn.exec_driver_sql(begin)
            try:
                result = fn(conn)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql("ROLLBACK")
                raise
            return result
