"""Redis adapter for the rate-limit and nonce stores, so several gateway processes share one budget."""

from __future__ import annotations

import math
from typing import Final

import redis.asyncio as aioredis

from a2a_gateway.auth.rate_limit import EPSILON, Decision, Limit, RateLimitStore, gcra
from a2a_gateway.auth.signing import NonceStore

# The conformance test of auth.rate_limit.gcra, run inside Redis so read-decide-write is one atomic step.
# Both sides do the same IEEE double operations and numbers cross as %.17g / repr strings (exact round
# trips), so the Decision that gcra() rebuilds from the returned old TAT agrees with what was stored.
_GCRA_LUA: Final = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local epsilon = tonumber(ARGV[4])
local old = redis.call('GET', KEYS[1])
local base = now
if old and tonumber(old) >= now then base = tonumber(old) end
local new_tat = base + interval
if now + epsilon < new_tat - burst * interval then return {0, old} end
local ttl_ms = math.max(1, math.ceil((new_tat - now) * 1000))
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl_ms)
return {1, old}
"""


def connect(url: str) -> aioredis.Redis:
    """A Redis client for ``url`` (redis://, rediss:// or unix://); connects lazily on first command."""
    return aioredis.Redis.from_url(url)


class RedisRateLimitStore(RateLimitStore):
    """GCRA with the TAT of each key in Redis under ``{prefix}rl:{key}``, expiring once it has passed."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._prefix = prefix
        self._script = client.register_script(_GCRA_LUA)  # EVALSHA, loading the script on NOSCRIPT

    async def hit(self, key: str, limit: Limit, now: float) -> Decision:
        """Count one request of ``key`` at ``now`` (wall-clock seconds, shared by all processes)."""
        burst = limit.count if limit.burst is None else limit.burst
        interval = limit.period_seconds / limit.count
        args = [repr(float(now)), repr(interval), str(burst), repr(EPSILON)]
        allowed, old = await self._script(keys=[f"{self._prefix}rl:{key}"], args=args)
        decision, _ = gcra(None if old is None else float(old), limit, now)
        if decision.allowed != bool(allowed):  # unreachable while both sides stay in step; Redis wins
            return Decision(bool(allowed), burst, 0, 0.0 if allowed else interval, decision.reset_after)
        return decision


class RedisNonceStore(NonceStore):
    """Seen request signatures as Redis keys ``{prefix}nonce:{key_id}:{signature}`` set with NX and PX."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def remember(self, key_id: str, signature: str, ttl_seconds: float) -> bool:
        """Record the signature; False if the key already exists (seen within its TTL)."""
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        created = await self._client.set(
            f"{self._prefix}nonce:{key_id}:{signature}", b"1", nx=True, px=ttl_ms
        )
        return bool(created)
