"""SQL repositories of the identity aggregates: users, API keys, refresh tokens, login failures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.auth.models import ApiKeyRecord, RefreshRecord, User
from a2a_gateway.storage.tables import api_keys, login_failures, refresh_tokens, users
from a2a_gateway.storage.timestamps import from_micros, micros


def _at(value: int) -> datetime:
    stamp = from_micros(value)
    assert stamp is not None
    return stamp


class SqlUserRepository:
    """Implements auth.ports.UserRepository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, user: User) -> bool:
        """Insert; False when the email is already registered (unique constraint)."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    users.insert().values(
                        id=user.id,
                        email=user.email,
                        password_hash=user.password_hash,
                        created_us=micros(user.created_at),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def by_email(self, email: str) -> User | None:
        """One user by email."""
        return await self._one(users.c.email == email)

    async def by_id(self, user_id: str) -> User | None:
        """One user by id."""
        return await self._one(users.c.id == user_id)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a user's password hash."""
        async with self._engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    async def _one(self, condition: Any) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(condition))).first()
        if row is None:
            return None
        return User(
            id=row.id, email=row.email, password_hash=row.password_hash, created_at=_at(row.created_us)
        )


class SqlApiKeyRepository:
    """Implements auth.ports.ApiKeyRepository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, key: ApiKeyRecord) -> None:
        """Insert a key record (hash and lookup prefix only)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    owner_id=key.owner_id,
                    kind=key.kind,
                    name=key.name,
                    lookup=key.lookup,
                    hashed=key.hashed,
                    scopes=orjson.dumps(key.scopes).decode(),
                    created_us=micros(key.created_at),
                    expires_us=micros(key.expires_at) if key.expires_at else None,
                    agent_id=key.agent_id,
                    daily_spend_cap=key.daily_spend_cap,
                )
            )

    async def by_lookup(self, lookup: str) -> list[ApiKeyRecord]:
        """Keys with this lookup prefix."""
        return await self._many(api_keys.c.lookup == lookup)

    async def for_owner(self, owner_id: str, agent_id: str | None) -> list[ApiKeyRecord]:
        """An owner's user keys, or the keys of one of its agents, newest first."""
        return await self._many(and_(api_keys.c.owner_id == owner_id, _agent_is(agent_id)))

    async def revoke(self, owner_id: str, key_id: str, at: datetime, agent_id: str | None) -> bool:
        """Revoke an owner's key (idempotent for an already revoked key)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.owner_id == owner_id, _agent_is(agent_id))
                .values(revoked_us=micros(at))
            )
        return bool(result.rowcount)

    async def _many(self, condition: Any) -> list[ApiKeyRecord]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(api_keys).where(condition).order_by(api_keys.c.created_us.desc()))
            ).all()
        return [
            ApiKeyRecord(
                id=r.id,
                owner_id=r.owner_id,
                kind=r.kind,
                name=r.name,
                lookup=r.lookup,
                hashed=r.hashed,
                scopes=orjson.loads(r.scopes),
                created_at=_at(r.created_us),
                expires_at=from_micros(r.expires_us),
                revoked_at=from_micros(r.revoked_us),
                agent_id=r.agent_id,
                daily_spend_cap=r.daily_spend_cap,
            )
            for r in rows
        ]


def _agent_is(agent_id: str | None) -> Any:
    return api_keys.c.agent_id.is_(None) if agent_id is None else api_keys.c.agent_id == agent_id


class SqlRefreshTokenRepository:
    """Implements auth.ports.RefreshTokenRepository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: RefreshRecord) -> None:
        """Insert a newly issued token."""
        async with self._engine.begin() as conn:
            await conn.execute(
                refresh_tokens.insert().values(
                    token_hash=record.token_hash,
                    family_id=record.family_id,
                    user_id=record.user_id,
                    issued_us=micros(record.issued_at),
                    expires_us=micros(record.expires_at),
                )
            )

    async def by_hash(self, token_hash: str) -> RefreshRecord | None:
        """One token by its hash."""
        async with self._engine.connect() as conn:
            r = (
                await conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
            ).first()
        if r is None:
            return None
        return RefreshRecord(
            token_hash=r.token_hash,
            family_id=r.family_id,
            user_id=r.user_id,
            issued_at=_at(r.issued_us),
            expires_at=_at(r.expires_us),
            used_at=from_micros(r.used_us),
            revoked_at=from_micros(r.revoked_us),
        )

    async def mark_used(self, token_hash: str, at: datetime) -> bool:
        """Compare-and-set ``used``: of two concurrent refreshes with one token, only one wins."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_us.is_(None))
                .values(used_us=micros(at))
            )
        return bool(result.rowcount)

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        """Revoke every token of the family."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_us.is_(None))
                .values(revoked_us=micros(at))
            )


class SqlLoginFailures:
    """Implements auth.ports.LoginFailures."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, identifier: str, at: datetime) -> None:
        """Count a failure."""
        async with self._engine.begin() as conn:
            await conn.execute(login_failures.insert().values(identifier=identifier[:254], at_us=micros(at)))

    async def since(self, identifier: str, since: datetime) -> list[datetime]:
        """Failure times after ``since``, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(login_failures.c.at_us)
                .where(
                    login_failures.c.identifier == identifier[:254], login_failures.c.at_us > micros(since)
                )
                .order_by(login_failures.c.at_us)
            )
            return [_at(us) for (us,) in rows]

    async def clear(self, identifier: str) -> None:
        """Forget an identifier's failures."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.identifier == identifier[:254]))
