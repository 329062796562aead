"""The identity service with an injected clock and a cheap hasher: lockout windows, key expiry, rehashing,
on real SQL storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from a2a_gateway.auth.models import Principal
from a2a_gateway.auth.passwords import PasswordHashing
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.service import AuthService
from a2a_gateway.errors import AccountLocked, Unauthenticated
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.identity_repository import (
    SqlApiKeyRepository,
    SqlLoginFailures,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
from tests.auth.identity_fakes import PEPPER, memory_tokens
from tests.factories import Clock

# Cheap, but not the cheapest: the rehash test needs weaker parameters than these.
HASHER = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)


@pytest.fixture
async def sql_stores(tmp_path: Path) -> AsyncIterator[IdentityStores]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}")
    await db.upgrade(engine)
    yield IdentityStores(
        SqlUserRepository(engine),
        SqlApiKeyRepository(engine),
        SqlRefreshTokenRepository(engine),
        SqlLoginFailures(engine),
    )
    await engine.dispose()


@pytest.fixture
def service(sql_stores: IdentityStores) -> tuple[AuthService, Clock]:
    clock = Clock()
    auth = AuthService(sql_stores, memory_tokens(), PEPPER, clock=clock, passwords=PasswordHashing(HASHER))
    return auth, clock


async def test_lock_lasts_the_window_then_lifts(service: tuple[AuthService, Clock]) -> None:
    auth, clock = service
    await auth.register("kim@example.com", "right password")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await auth.login("kim@example.com", "wrong")
        clock.now += timedelta(seconds=10)
    with pytest.raises(AccountLocked) as locked:
        await auth.login("kim@example.com", "right password")
    assert 800 < locked.value.retry_after <= 900
    clock.now += timedelta(minutes=15)
    session = await auth.login("kim@example.com", "right password")
    assert session.user.email == "kim@example.com"
    # Success clears the counter: four more failures do not lock.
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await auth.login("kim@example.com", "wrong")
    await auth.login("kim@example.com", "right password")


async def test_failures_outside_the_window_do_not_count(service: tuple[AuthService, Clock]) -> None:
    auth, clock = service
    await auth.register("lee@example.com", "right password")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await auth.login("lee@example.com", "wrong")
        clock.now += timedelta(minutes=4)
    assert (await auth.login("lee@example.com", "right password")).user.email == "lee@example.com"


async def test_keys_expire(service: tuple[AuthService, Clock]) -> None:
    auth, clock = service
    user = await auth.register("exp@example.com", "right password")
    owner = Principal(id=user.id, kind="user", scopes=frozenset({"*"}))
    issued = await auth.create_key(owner, "short", ["tasks:read"], expires_in_days=1)
    assert (await auth.authenticate_key(issued.plaintext)).scopes == frozenset({"tasks:read"})
    clock.now += timedelta(days=1, seconds=1)
    with pytest.raises(Unauthenticated):
        await auth.authenticate_key(issued.plaintext)


async def test_access_tokens_expire(service: tuple[AuthService, Clock]) -> None:
    auth, _ = service
    await auth.register("jwt@example.com", "right password")
    session = await auth.login("jwt@example.com", "right password")
    assert (await auth.authenticate_access_token(session.access_token)).id == session.user.id
    with pytest.raises(Unauthenticated):
        await auth.authenticate_access_token(session.access_token + "x")


async def test_login_upgrades_an_outdated_password_hash(
    service: tuple[AuthService, Clock], sql_stores: IdentityStores
) -> None:
    auth, _ = service
    user = await auth.register("old@example.com", "right password")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("right password")
    await sql_stores.users.set_password_hash(user.id, weak)
    await auth.login("old@example.com", "right password")
    stored = await sql_stores.users.by_id(user.id)
    assert stored is not None and stored.password_hash != weak
    assert (await auth.login("old@example.com", "right password")).user.id == user.id
