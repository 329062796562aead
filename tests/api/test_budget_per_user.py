"""Budgets are the user's, whatever credential spends them: minting keys buys no extra calls."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.api.rate_limiter import RateLimiter
from a2a_gateway.app import create_gateway_app
from a2a_gateway.auth.models import ANONYMOUS_ID, Principal
from a2a_gateway.auth.rate_limit import Limit, MemoryRateLimitStore
from a2a_gateway.errors import RateLimited
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import V1, envelope, user_message


async def test_fresh_keys_share_their_users_budget(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limits={"tasks:create": "3/minute"})
    app = create_gateway_app(settings, local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        credentials = {"email": "k@example.com", "password": "long enough"}
        await client.post("/api/v1/auth/register", json=credentials)
        token = (await client.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
        session = {"Authorization": f"Bearer {token}"}
        keys = [
            {
                "X-API-Key": (
                    await client.post("/api/v1/api-keys", json={"name": f"k{i}"}, headers=session)
                ).json()["data"]["key"]
            }
            for i in range(3)
        ]
        statuses = []
        for headers in [session, *keys, *keys]:
            body = envelope("SendMessage", {"message": user_message()})
            statuses.append((await client.post("/a2a", json=body, headers={**V1, **headers})).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429, 429]


async def test_a_per_agent_key_draws_on_its_users_budget() -> None:
    limiter = RateLimiter(MemoryRateLimitStore(), {"b": Limit(count=2, period_seconds=60)}, clock=lambda: 0.0)
    session = Principal(id="u1", kind="user", scopes=frozenset({"*"}))
    agent_key = Principal(id="u1", kind="user", scopes=frozenset({"*"}), key_id="k", agent_id="a")
    other_user = Principal(id="u2", kind="user", scopes=frozenset({"*"}), key_id="k2")
    await limiter.check("b", session, "1.1.1.1")
    await limiter.check("b", agent_key, "2.2.2.2")
    with pytest.raises(RateLimited):  # the user's budget is spent; its agent key has none of its own
        await limiter.check("b", agent_key, "3.3.3.3")
    await limiter.check("b", other_user, "1.1.1.1")
    anonymous = Principal(id=ANONYMOUS_ID, kind="anonymous", scopes=frozenset())
    await limiter.check("b", anonymous, "1.1.1.1")  # anonymous callers are counted per address
    await limiter.check("b", anonymous, "1.1.1.1")
    await limiter.check("b", anonymous, "9.9.9.9")
