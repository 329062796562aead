"""SqlLease: named leases in the database, one holder at a time until expiry (implements
workflows.ports.Lease; reusable for anything that one process at a time should drive).

Taking a lease is one statement: insert it, or on conflict update it only where it has expired or is
the taker's own. The database serialises concurrent takers on the row, so exactly one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.protocol.base import utc_now
from a2a_gateway.storage.tables import leases
from a2a_gateway.storage.timestamps import micros

L = leases.c


class SqlLease:
    """Leases on SQLite or PostgreSQL, on an injected clock."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take the lease if free or expired, or extend it if ``holder`` has it; True when held now."""
        now = self._clock()
        expires = micros(now + timedelta(seconds=ttl_s))
        statement = self._insert(leases).values(name=name, holder=holder, expires_us=expires)
        statement = statement.on_conflict_do_update(
            index_elements=[L.name],
            set_={"holder": holder, "expires_us": expires},
            where=or_(leases.c.holder == holder, leases.c.expires_us <= micros(now)),
        )
        async with self._engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount == 1)

    async def release(self, name: str, holder: str) -> None:
        """Let the lease go if ``holder`` has it."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(leases).where(L.name == name, L.holder == holder))

    async def holders(self, prefix: str) -> set[str]:
        """Who holds a lease whose name starts with ``prefix`` and has not expired."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(L.holder).where(
                    L.name.startswith(prefix, autoescape=True), L.expires_us > micros(self._clock())
                )
            )
            return {holder for (holder,) in rows}

    async def holder_of(self, name: str) -> str | None:
        """Who holds the lease ``name`` now (None: nobody, or it expired)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(L.holder).where(L.name == name, L.expires_us > micros(self._clock()))
                )
            ).first()
            return None if row is None else str(row.holder)
