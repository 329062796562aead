"""Per-caller request budgets (GCRA), keyed by user (whatever key it uses) or by client address."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from a2a_gateway.auth.models import Principal
from a2a_gateway.auth.rate_limit import Limit, RateLimitStore
from a2a_gateway.errors import RateLimited

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def parse_limit(spec: str) -> Limit:
    """``"30/minute"`` as a Limit; ValueError names the expected form."""
    match = _SPEC.match(spec.lower())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {spec!r} must look like '30/minute' (second, minute, hour or day)")
    return Limit(count=int(match.group(1)), period_seconds=_UNITS[match.group(2)])


class RateLimiter:
    """Checks one named budget per caller; over budget raises RateLimited (429 with Retry-After)."""

    def __init__(
        self, store: RateLimitStore, limits: dict[str, Limit], clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock

    async def check(self, budget: str, principal: Principal, client: str | None) -> None:
        """Spend one request of ``budget`` for this caller; budgets not configured are unlimited.

        Budgets belong to the user, not to the credential: every key of a user, per-agent keys included,
        draws on the user's one budget, so minting more keys buys no more calls. Anonymous callers are
        counted per client address.
        """
        await self.spend(budget, caller_identity(principal, client))

    async def spend(self, budget: str, who: str) -> None:
        """Spend one request of ``budget`` for an identity such as ``"ip:1.2.3.4"``; RateLimited when over."""
        limit = self._limits.get(budget)
        if limit is None:
            return
        decision = await self._store.hit(f"{budget}:{who}", limit, self._clock())
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit of {limit.count} per {int(limit.period_seconds)} s exceeded for {budget}",
                retry_after=decision.retry_after,
                limit=decision.limit,
                remaining=decision.remaining,
            )


def caller_identity(principal: Principal, client: str | None) -> str:
    """Whose budget a call spends: the user behind any credential, or the client address if anonymous."""
    if not principal.authenticated:
        return f"ip:{client or 'unknown'}"
    return f"user:{principal.id}"
