"""Login and registration budgets (per client address, per account), and a locked database: a brief retry,
then 503 with Retry-After, never 500."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rate_limiter import RateLimiter, parse_limit
from a2a_gateway.api.rest.api_key_routes import ApiKeyApi
from a2a_gateway.api.rest.auth_routes import AuthApi
from a2a_gateway.api.rest.mount import rest_mount
from a2a_gateway.app import create_gateway_app
from a2a_gateway.auth.models import ApiKeyRecord, User
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.rate_limit import MemoryRateLimitStore
from tests.auth.identity_fakes import MemoryKeys, MemoryUsers, memory_auth, memory_stores
from tests.conftest import make_settings

PASSWORD = "long enough"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    limits = {"auth:login": "4/minute", "auth:login:account": "2/minute", "auth:register": "2/minute"}
    app = create_gateway_app(make_settings(tmp_path, rate_limits=limits))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_login_budget_per_account_then_per_address(gateway: httpx.AsyncClient) -> None:
    await gateway.post("/api/v1/auth/register", json={"email": "a@example.com", "password": PASSWORD})
    assert (await login(gateway, "a@example.com", "wrong one")).status_code == 401
    assert (await login(gateway, "A@Example.com ")).status_code == 200  # the same account, normalized
    third = await login(gateway, "a@example.com")
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
    assert third.json()["error"]["code"] == "RATE_LIMITED" and "auth:login:account" in third.text
    # Another account from the same address still has its own budget, until the address's runs out.
    assert (await login(gateway, "b@example.com")).status_code == 401
    address = await login(gateway, "c@example.com")
    assert address.status_code == 429 and address.json()["error"]["message"].endswith("for auth:login")


async def test_registration_budget_per_address(gateway: httpx.AsyncClient) -> None:
    statuses = []
    for i in range(3):
        body = {"email": f"r{i}@example.com", "password": PASSWORD}
        statuses.append((await gateway.post("/api/v1/auth/register", json=body)).status_code)
    assert statuses == [201, 201, 429]


def locked() -> OperationalError:
    return OperationalError("INSERT INTO users ...", {}, sqlite3.OperationalError("database is locked"))


class FlakyUsers(MemoryUsers):
    """Users whose store is locked for the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    async def add(self, user: User) -> bool:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise locked()
        return await super().add(user)


class LockedKeys(MemoryKeys):
    """Keys whose store is always locked."""

    async def by_lookup(self, lookup: str) -> list[ApiKeyRecord]:
        raise locked()


async def identity_client(users: MemoryUsers, keys: MemoryKeys) -> Any:
    stores = memory_stores()
    auth = memory_auth(IdentityStores(users, keys, stores.refresh_tokens, stores.failures))
    limiter = RateLimiter(MemoryRateLimitStore(), {"auth:register": parse_limit("100/minute")})
    authn = Authenticator(auth, False, limiter, 65_536)
    app = Starlette(routes=[rest_mount(AuthApi(authn), ApiKeyApi(authn))])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_locked_database_is_retried_briefly() -> None:
    users = FlakyUsers(failures=2)
    async with await identity_client(users, MemoryKeys()) as client:
        body = {"email": "x@example.com", "password": PASSWORD}
        created = await client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201 and users.attempts == 3


async def test_a_database_that_stays_locked_answers_503_not_500() -> None:
    users = FlakyUsers(failures=100)
    async with await identity_client(users, LockedKeys()) as client:
        register = await client.post(
            "/api/v1/auth/register", json={"email": "x@example.com", "password": PASSWORD}
        )
        keys = await client.get("/api/v1/api-keys", headers={"X-API-Key": "nex_" + "a" * 43})
    assert users.attempts == 3
    for response in (register, keys):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "UNAVAILABLE"
        assert response.headers["retry-after"] == "1"
        assert "busy" in response.text and "INSERT" not in response.text
