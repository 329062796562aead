"""SqlIdempotencyStore: claims of Idempotency-Keys and the answers stored under them, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.storage.tables import idempotency_keys

K = idempotency_keys.c
IN_PROGRESS = "in_progress"
DONE = "done"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key someone already claimed: what it was claimed for and, once done, the answer it got."""

    request_hash: str
    done: bool
    status_code: int | None
    response_body: str | None
    created_us: int


class SqlIdempotencyStore:
    """One row per (principal, key); a claim is one INSERT ... ON CONFLICT DO NOTHING, so of two
    concurrent requests with the same key exactly one gets to run."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def claim(
        self, principal_id: str, key: str, request_hash: str, now_us: int, expired_before_us: int
    ) -> StoredKey | None:
        """Claim ``key`` for this request: None when claimed (the caller runs the request), else the
        claim already there. A claim older than ``expired_before_us`` is taken over, at most once."""
        row = {
            "principal_id": principal_id,
            "key": key,
            "request_hash": request_hash,
            "state": IN_PROGRESS,
            "status_code": None,
            "response_body": None,
            "created_us": now_us,
        }
        insert = self._insert(idempotency_keys).values(**row).on_conflict_do_nothing()
        async with self._engine.begin() as conn:
            if (await conn.execute(insert)).rowcount == 1:
                return None
            found = (
                await conn.execute(
                    select(idempotency_keys).where(K.principal_id == principal_id, K.key == key)
                )
            ).first()
            if found is None:  # released between the two statements: answered as still in progress
                return StoredKey(request_hash, False, None, None, now_us)
            if found.created_us >= expired_before_us:
                return StoredKey(
                    found.request_hash,
                    found.state == DONE,
                    found.status_code,
                    found.response_body,
                    found.created_us,
                )
            # Expired: the first of the requests that saw the old claim takes it over (compare-and-set).
            taken = await conn.execute(
                update(idempotency_keys)
                .where(K.principal_id == principal_id, K.key == key, K.created_us == found.created_us)
                .values(**{k: v for k, v in row.items() if k not in ("principal_id", "key")})
            )
            if taken.rowcount == 1:
                return None
        # Another request took the expired key over first: it is now in progress for that one.
        return StoredKey(request_hash, False, None, None, now_us)

    async def finish(self, principal_id: str, key: str, status_code: int, body: str) -> None:
        """Store the answer of a claimed key."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(K.principal_id == principal_id, K.key == key, K.state == IN_PROGRESS)
                .values(state=DONE, status_code=status_code, response_body=body)
            )

    async def release(self, principal_id: str, key: str) -> None:
        """Give a claimed key up without an answer (the request may be retried with it)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(idempotency_keys).where(
                    K.principal_id == principal_id, K.key == key, K.state == IN_PROGRESS
                )
            )

    async def prune(self, expired_before_us: int, limit: int = 500) -> int:
        """Delete up to ``limit`` keys claimed before ``expired_before_us``; how many went."""
        async with self._engine.begin() as conn:
            old = select(K.principal_id, K.key).where(K.created_us < expired_before_us).limit(limit)
            rows = (await conn.execute(old)).all()
            for row in rows:
                await conn.execute(
                    delete(idempotency_keys).where(
                        K.principal_id == row.principal_id,
                        K.key == row.key,
                        K.created_us < expired_before_us,
                    )
                )
        return len(rows)
