"""In-memory fakes of the identity ports, a cheap password hasher, and a service built on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from argon2 import PasswordHasher

from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.models import ApiKeyRecord, RefreshRecord, User
from a2a_gateway.auth.passwords import PasswordHashing
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.service import AuthService
from a2a_gateway.auth.tokens import AccessTokens
from tests.factories import Clock
from tests.fakes import MemorySigningKeys

PEPPER = b"test-pepper-" * 4


def memory_tokens() -> AccessTokens:
    """Access tokens signed by a key ring held in memory."""
    return AccessTokens(KeyRing(MemorySigningKeys()))


def cheap_hasher() -> PasswordHasher:
    """Argon2id at its lowest cost: the same code paths as production, in microseconds."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class MemoryUsers:
    """UserRepository in a dict."""

    def __init__(self) -> None:
        self.by_key: dict[str, User] = {}

    async def add(self, user: User) -> bool:
        if any(u.email == user.email for u in self.by_key.values()):
            return False
        self.by_key[user.id] = replace(user)
        return True

    async def by_email(self, email: str) -> User | None:
        found = next((u for u in self.by_key.values() if u.email == email), None)
        return replace(found) if found else None

    async def by_id(self, user_id: str) -> User | None:
        found = self.by_key.get(user_id)
        return replace(found) if found else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.by_key[user_id].password_hash = password_hash


class MemoryKeys:
    """ApiKeyRepository in a list."""

    def __init__(self) -> None:
        self.records: list[ApiKeyRecord] = []

    async def add(self, key: ApiKeyRecord) -> None:
        self.records.append(replace(key, scopes=list(key.scopes)))

    async def by_lookup(self, lookup: str) -> list[ApiKeyRecord]:
        return [replace(k) for k in self.records if k.lookup == lookup]

    async def for_owner(self, owner_id: str, agent_id: str | None) -> list[ApiKeyRecord]:
        mine = [k for k in self.records if k.owner_id == owner_id and k.agent_id == agent_id]
        return [replace(k) for k in reversed(mine)]

    async def revoke(self, owner_id: str, key_id: str, at: datetime, agent_id: str | None) -> bool:
        for key in self.records:
            if key.id == key_id and key.owner_id == owner_id and key.agent_id == agent_id:
                key.revoked_at = key.revoked_at or at
                return True
        return False


class MemoryRefresh:
    """RefreshTokenRepository in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, RefreshRecord] = {}

    async def add(self, record: RefreshRecord) -> None:
        self.records[record.token_hash] = replace(record)

    async def by_hash(self, token_hash: str) -> RefreshRecord | None:
        found = self.records.get(token_hash)
        return replace(found) if found else None

    async def mark_used(self, token_hash: str, at: datetime) -> bool:
        record = self.records[token_hash]
        if record.used_at is not None:
            return False
        record.used_at = at
        return True

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        for record in self.records.values():
            if record.family_id == family_id:
                record.revoked_at = record.revoked_at or at


class MemoryFailures:
    """LoginFailures in a dict."""

    def __init__(self) -> None:
        self.times: dict[str, list[datetime]] = {}

    async def record(self, identifier: str, at: datetime) -> None:
        self.times.setdefault(identifier, []).append(at)

    async def since(self, identifier: str, since: datetime) -> list[datetime]:
        return [t for t in self.times.get(identifier, []) if t > since]

    async def clear(self, identifier: str) -> None:
        self.times.pop(identifier, None)


def memory_stores() -> IdentityStores:
    """Fresh in-memory identity stores."""
    return IdentityStores(MemoryUsers(), MemoryKeys(), MemoryRefresh(), MemoryFailures())


def memory_auth(
    stores: IdentityStores | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    passwords: PasswordHashing | None = None,
) -> AuthService:
    """An AuthService over in-memory stores, with a cheap hasher unless one is given."""
    return AuthService(
        stores or memory_stores(),
        memory_tokens(),
        PEPPER,
        clock=clock or Clock(),
        passwords=passwords or PasswordHashing(cheap_hasher()),
    )
