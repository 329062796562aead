"""Task-creation budgets: 429 with Retry-After and X-RateLimit-*, recovery, and a budget shared via Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import V1, drop_redis_keys, envelope, error_of, user_message

REDIS_URL = os.environ.get("A2A_GATEWAY_TEST_REDIS_URL")


async def send(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await client.post(
        "/a2a", json=envelope("SendMessage", {"message": user_message()}), headers={**V1, **headers}
    )


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:

        async def make(name: str, **overrides: Any) -> httpx.AsyncClient:
            app = create_gateway_app(
                make_settings(tmp_path / name, **overrides), local_skills=ECHO_AGENT.skills
            )
            await stack.enter_async_context(LifespanManager(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            )

        yield make


async def test_over_budget_gets_429_with_headers_then_recovers(clients: Any) -> None:
    client = await clients("a", rate_limits={"tasks:create": "3/second"})
    assert [(await send(client)).status_code for _ in range(3)] == [200, 200, 200]
    refused = await send(client)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == "3" and refused.headers["x-ratelimit-remaining"] == "0"
    error = error_of(refused.json())
    assert error["code"] == -32062 and "tasks:create" in error["message"]
    assert error["data"][0]["metadata"]["retryAfter"] == refused.headers["retry-after"]
    # Reads are not task creation and stay allowed.
    assert (await client.post("/a2a", json=envelope("ListTasks", {}), headers=V1)).status_code == 200
    await asyncio.sleep(0.4)
    assert (await send(client)).status_code == 200


async def test_budgets_are_per_caller(clients: Any) -> None:
    client = await clients("b", rate_limits={"tasks:create": "1/minute"})
    await client.post("/api/v1/auth/register", json={"email": "r@example.com", "password": "long enough"})
    token = (
        await client.post("/api/v1/auth/login", json={"email": "r@example.com", "password": "long enough"})
    ).json()
    auth = {"Authorization": f"Bearer {token['data']['accessToken']}"}
    assert (await send(client)).status_code == 200
    assert (await send(client)).status_code == 429
    assert (await send(client, **auth)).status_code == 200
    assert (await send(client, **auth)).status_code == 429


async def test_no_budgets_configured_means_no_limit(clients: Any) -> None:
    client = await clients("c", rate_limits={})
    assert {(await send(client)).status_code for _ in range(40)} == {200}


@pytest.mark.skipif(not REDIS_URL, reason="A2A_GATEWAY_TEST_REDIS_URL is not set; shared-budget test skipped")
async def test_two_gateway_instances_share_one_budget_through_redis(clients: Any) -> None:
    prefix = f"a2a-test-{uuid.uuid4().hex[:12]}:"
    shared = {"rate_limits": {"tasks:create": "4/minute"}, "redis_url": REDIS_URL, "redis_prefix": prefix}
    first, second = await clients("d1", **shared), await clients("d2", **shared)
    statuses = [(await send(client)).status_code for _ in range(3) for client in (first, second)]
    assert statuses.count(200) == 4 and statuses.count(429) == 2
    await drop_redis_keys(REDIS_URL, prefix)
