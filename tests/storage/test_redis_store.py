"""The rate-limit and nonce store contract, on the in-memory stores and (when configured) on Redis."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from a2a_gateway.auth.rate_limit import Limit, MemoryRateLimitStore, RateLimitStore
from a2a_gateway.auth.signing import MemoryNonceStore, NonceStore
from a2a_gateway.storage.redis_store import RedisNonceStore, RedisRateLimitStore, connect
from tests.factories import drop_redis_keys

REDIS_URL = os.environ.get("A2A_GATEWAY_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    REDIS_URL is None, reason="set A2A_GATEWAY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run"
)
BACKENDS = ["memory", pytest.param("redis", marks=needs_redis)]
NOW = 1_767_225_600.0  # seconds; the contract passes time in, so it never sleeps for rate limits
MINUTE = Limit(count=30, period_seconds=60)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix unique to this test; every key under it is deleted afterwards."""
    value = f"a2a-gateway-test:{uuid.uuid4().hex}:"
    yield value
    if REDIS_URL is not None:
        await drop_redis_keys(REDIS_URL, value)


@pytest.fixture
async def clients() -> AsyncIterator[list[aioredis.Redis]]:
    """Two independent Redis clients, standing for two gateway processes."""
    assert REDIS_URL is not None
    opened = [connect(REDIS_URL), connect(REDIS_URL)]
    yield list(opened)
    for client in opened:
        await client.aclose()


@pytest.fixture(params=BACKENDS)
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimitStore]:
    if request.param == "memory":
        yield MemoryRateLimitStore()
        return
    assert REDIS_URL is not None
    client = connect(REDIS_URL)
    yield RedisRateLimitStore(client, prefix)
    await client.aclose()


@pytest.fixture(params=BACKENDS)
async def nonces(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[NonceStore]:
    if request.param == "memory":
        yield MemoryNonceStore()
        return
    assert REDIS_URL is not None
    client = connect(REDIS_URL)
    yield RedisNonceStore(client, prefix)
    await client.aclose()


async def test_burst_then_denied_with_retry_after(limiter: RateLimitStore) -> None:
    decisions = [await limiter.hit("user-1", MINUTE, NOW) for _ in range(31)]
    assert [d.remaining for d in decisions[:30]] == list(range(29, -1, -1))
    assert all(d.allowed and d.limit == 30 for d in decisions[:30])
    denied = decisions[30]
    assert not denied.allowed and denied.remaining == 0
    assert denied.retry_after == pytest.approx(2.0)
    assert not (await limiter.hit("user-1", MINUTE, NOW + denied.retry_after - 0.01)).allowed
    assert (await limiter.hit("user-1", MINUTE, NOW + denied.retry_after)).allowed


async def test_keys_are_independent_and_recover(limiter: RateLimitStore) -> None:
    limit = Limit(count=2, period_seconds=10)
    for _ in range(2):
        assert (await limiter.hit("a", limit, NOW)).allowed
    assert not (await limiter.hit("a", limit, NOW)).allowed
    assert (await limiter.hit("b", limit, NOW)).allowed
    recovered = await limiter.hit("a", limit, NOW + 10)
    assert recovered.allowed and recovered.remaining == 1


async def test_same_decisions_as_the_pure_function(limiter: RateLimitStore) -> None:
    reference = MemoryRateLimitStore()
    limit = Limit(count=5, period_seconds=1.5, burst=3)
    now = NOW
    for step in [0, 0, 0, 0, 0.1, 0.3, 0.31, 0.0, 1.7, 0.01, 0.29, 0.3, 0.3, 2.0]:
        now += step
        assert await limiter.hit("k", limit, now) == await reference.hit("k", limit, now)


@needs_redis
async def test_two_processes_share_one_budget(clients: list[aioredis.Redis], prefix: str) -> None:
    first, second = (RedisRateLimitStore(client, prefix) for client in clients)
    limit = Limit(count=10, period_seconds=60)
    results = await asyncio.gather(
        *(store.hit("shared", limit, NOW) for _ in range(15) for store in (first, second))
    )
    assert sum(d.allowed for d in results) == 10
    assert not (await first.hit("shared", limit, NOW)).allowed
    assert not (await second.hit("shared", limit, NOW)).allowed


@needs_redis
async def test_redis_keys_are_namespaced_and_expire(clients: list[aioredis.Redis], prefix: str) -> None:
    client = clients[0]
    store = RedisRateLimitStore(client, prefix)
    await store.hit("who", Limit(count=1, period_seconds=60), time.time())
    ttl_ms = await client.pttl(f"{prefix}rl:who")
    assert 0 < ttl_ms <= 60_000


async def test_nonce_seen_once_per_key(nonces: NonceStore) -> None:
    assert await nonces.remember("key-1", "sig-a", 60)
    assert not await nonces.remember("key-1", "sig-a", 60)
    assert await nonces.remember("key-2", "sig-a", 60)
    assert await nonces.remember("key-1", "sig-b", 60)


async def test_nonce_concurrent_remember_admits_one(nonces: NonceStore) -> None:
    results = await asyncio.gather(*(nonces.remember("key-1", "race", 60) for _ in range(20)))
    assert results.count(True) == 1


async def test_nonce_forgotten_after_ttl(nonces: NonceStore) -> None:
    assert await nonces.remember("key-1", "short", 0.05)
    await asyncio.sleep(0.1)
    assert await nonces.remember("key-1", "short", 0.05)
