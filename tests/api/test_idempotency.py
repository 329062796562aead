"""Idempotency-Key on POST /api/v1/tasks and POST /api/v1/billing/checkout: a retry with the same key and
body gets the first answer (a paid task is created and paid once), another body with the key is 422, a key
still in progress 409, a malformed key 400; of concurrent requests with one key exactly one runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from a2a_gateway.api.rest.billing_routes import BillingApi
from a2a_gateway.api.rest.idempotency import TTL_SECONDS, Idempotency, request_hash
from a2a_gateway.api.rest.mount import RestMount
from a2a_gateway.api.rest.task_routes import TaskApi
from a2a_gateway.app import create_gateway_app
from a2a_gateway.billing.service import BillingService
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.idempotency_repository import SqlIdempotencyStore
from tests.api.test_paid_calls import AGENT_HOST, PRICE, PaidAgent
from tests.api.test_registry import user
from tests.conftest import make_settings
from tests.factories import host_of
from tests.stripe_fake import API_BASE, SECRET_KEY, WEBHOOK_SECRET, FakeStripe

TASKS = "/api/v1/tasks"
CHECKOUT = "/api/v1/billing/checkout"
T0 = 1_800_000_000.0


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host in (AGENT_HOST, "stripe.test") else []


class Outbound(httpx.AsyncBaseTransport):
    """The gateway's outbound calls: Stripe's host to the fake Stripe, anything else to the paid agent."""

    def __init__(self, agent: PaidAgent, stripe: FakeStripe) -> None:
        self._agent = httpx.ASGITransport(app=agent)
        self._stripe = httpx.ASGITransport(app=stripe.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self._stripe if host_of(request) == "stripe.test" else self._agent
        return await target.handle_async_request(request)


@dataclass
class Shop:
    gw: httpx.AsyncClient
    agent: PaidAgent
    stripe: FakeStripe
    billing: BillingService
    store: SqlIdempotencyStore
    agent_id: str
    buyer: dict[str, str]
    buyer_id: str
    now: list[float]

    async def post(self, path: str, body: dict[str, Any], key: str | bytes | None = "k-1") -> httpx.Response:
        headers: dict[str, Any] = dict(self.buyer)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.gw.post(path, content=orjson.dumps(body), headers=headers)

    def task(self, text: str = "hi") -> dict[str, Any]:
        return {"assignedAgentId": self.agent_id, "description": text}

    async def available(self) -> int:
        return (await self.billing.balance(self.buyer_id)).available

    async def tasks(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await self.gw.get(TASKS, headers=self.buyer)).json()["data"]
        return listed


def use_idempotency(app: Starlette, layer: Idempotency) -> None:
    """Give the app's task and billing routes this idempotency layer (with the test's clock)."""
    found = set()
    for mount in app.router.routes:
        for route in mount.routes if isinstance(mount, RestMount) else []:
            owner = getattr(getattr(route, "endpoint", None), "__self__", None)
            if isinstance(owner, TaskApi | BillingApi):
                owner.idempotency = layer
                found.add(type(owner))
    assert found == {TaskApi, BillingApi}


@contextlib.asynccontextmanager
async def opened(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Shop]:
    agent, stripe, now = PaidAgent(), FakeStripe(), [T0]
    settings = make_settings(
        tmp_path,
        outbound_allowlist=[],
        rate_limits={},
        database_url=database_url,
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=API_BASE,
    )
    app = create_gateway_app(
        settings, outbound_transport=Outbound(agent, stripe), resolver=resolver, auto_migrate=True
    )
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as gw,
    ):
        engine = db.create_engine(settings.resolved_database_url())
        try:
            store = SqlIdempotencyStore(engine)
            use_idempotency(app, Idempotency(store, clock))
            owner = await user(gw, "owner@example.com")
            buyer = await user(gw, "buyer@example.com")
            buyer_id = (await gw.get("/api/v1/auth/me", headers=buyer)).json()["data"]["id"]
            created = await gw.post(
                "/api/v1/agents",
                json={"cardUrl": f"http://{AGENT_HOST}", "pricePerTask": PRICE},
                headers=owner,
            )
            assert created.status_code == 201, created.text
            yield Shop(
                gw,
                agent,
                stripe,
                app.state.billing,
                store,
                created.json()["data"]["id"],
                buyer,
                buyer_id,
                now,
            )
        finally:
            await engine.dispose()


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    async with opened(tmp_path) as made:
        yield made


async def test_a_paid_task_retried_with_the_same_key_is_created_and_paid_once(shop: Shop) -> None:
    await shop.billing.grant(shop.buyer_id, 450, "test")
    first = await shop.post(TASKS, shop.task())
    again = await shop.post(TASKS, shop.task())
    assert first.status_code == again.status_code == 202, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert [t["id"] for t in await shop.tasks()] == [first.json()["data"]["id"]]
    assert await shop.available() == 450 - PRICE
    other = await shop.post(TASKS, shop.task(), key="k-2")  # another key: another task, paid again
    assert other.json()["data"]["id"] != first.json()["data"]["id"]
    assert await shop.available() == 450 - 2 * PRICE
    unkeyed = [await shop.post(TASKS, shop.task(), key=None) for _ in range(2)]  # no key: no replay
    assert unkeyed[0].json()["data"]["id"] != unkeyed[1].json()["data"]["id"]


async def test_the_same_key_with_another_body_is_422_and_runs_nothing(shop: Shop) -> None:
    await shop.billing.grant(shop.buyer_id, 250, "test")
    assert (await shop.post(TASKS, shop.task("one"))).status_code == 202
    reused = await shop.post(TASKS, shop.task("two"))
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    on_checkout = await shop.post(CHECKOUT, {"packageId": "starter"})  # the key is the caller's, per key
    assert on_checkout.status_code == 422  # other path, other body: another request
    assert len(await shop.tasks()) == 1 and await shop.available() == 250 - PRICE


async def test_a_key_still_in_progress_is_409_and_can_be_retried_once_it_is_done(shop: Shop) -> None:
    body = shop.task()
    wanted = request_hash("POST", TASKS, orjson.dumps(body))
    now_us = int(shop.now[0] * 1_000_000)
    assert await shop.store.claim(shop.buyer_id, "k-1", wanted, now_us, 0) is None  # another request's
    busy = await shop.post(TASKS, body)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert await shop.tasks() == []
    await shop.store.release(shop.buyer_id, "k-1")  # that request failed without an answer
    await shop.billing.grant(shop.buyer_id, 250, "test")
    assert (await shop.post(TASKS, body)).status_code == 202


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "caf\xe9".encode("latin-1"), b"tab\tin"], ids=["empty", "long", "latin1", "ctl"]
)
async def test_a_malformed_key_is_400_on_both_routes(shop: Shop, key: str | bytes) -> None:
    for path, body in ((TASKS, shop.task()), (CHECKOUT, {"packageId": "starter"})):
        answer = await shop.post(path, body, key=key)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert await shop.tasks() == [] and shop.stripe.sessions == {}
    assert (await shop.post(TASKS, shop.task(), key="x" * 255)).status_code == 402  # 255 is allowed


async def test_errors_are_replayed_but_validation_errors_are_not_stored(shop: Shop) -> None:
    poor = await shop.post(TASKS, shop.task())
    assert poor.status_code == 402  # the caller cannot pay: that answer is the key's, as on Stripe
    await shop.billing.grant(shop.buyer_id, 250, "test")
    replayed = await shop.post(TASKS, shop.task())
    assert replayed.status_code == 402 and replayed.headers["idempotent-replayed"] == "true"
    assert await shop.tasks() == []
    bad = {"assignedAgentId": shop.agent_id, "timeoutSeconds": 0}
    assert (await shop.post(TASKS, bad, key="k-bad")).status_code == 400
    refused_again = await shop.post(TASKS, bad, key="k-bad")
    assert refused_again.status_code == 400 and "idempotent-replayed" not in refused_again.headers
    # The key of an invalid request was not kept: it may carry the corrected request.
    assert (await shop.post(TASKS, shop.task(), key="k-bad")).status_code == 202


async def test_a_key_older_than_24_hours_is_ignored(shop: Shop) -> None:
    await shop.billing.grant(shop.buyer_id, 250, "test")
    first = (await shop.post(TASKS, shop.task())).json()["data"]["id"]
    shop.now[0] += TTL_SECONDS - 1
    assert (await shop.post(TASKS, shop.task())).json()["data"]["id"] == first
    shop.now[0] += 2
    later = await shop.post(TASKS, shop.task("another request, a day later"))
    assert later.status_code == 202 and later.json()["data"]["id"] != first
    assert await shop.available() == 250 - 2 * PRICE


async def test_checkout_replays_its_session_without_asking_stripe_again(shop: Shop) -> None:
    first = await shop.post(CHECKOUT, {"packageId": "starter"})
    asked = len(shop.stripe.requests)
    again = await shop.post(CHECKOUT, {"packageId": "starter"})
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(shop.stripe.requests) == asked and len(shop.stripe.sessions) == 1
    assert list(shop.stripe.idempotency) == [f"{shop.buyer_id}:k-1"]  # Stripe still gets the key
    reused = await shop.post(CHECKOUT, {"packageId": "pro"})
    assert reused.status_code == 422 and len(shop.stripe.sessions) == 1
    unknown = await shop.post(CHECKOUT, {"packageId": "gold"}, key="k-gold")
    assert unknown.status_code == 400 and len(shop.stripe.sessions) == 1


async def test_concurrent_requests_with_one_key_run_the_route_once(tmp_path: Path, database_url: str) -> None:
    async with opened(tmp_path, database_url) as shop:
        await shop.billing.grant(shop.buyer_id, 1000, "test")
        answers = await asyncio.gather(*(shop.post(TASKS, shop.task()) for _ in range(8)))
        made = {a.json()["data"]["id"] for a in answers if a.status_code == 202}
        assert len(made) == 1, [a.text for a in answers]
        assert {a.status_code for a in answers} <= {202, 409}
        assert len(await shop.tasks()) == 1 and await shop.available() == 1000 - PRICE
        sessions = await asyncio.gather(
            *(shop.post(CHECKOUT, {"packageId": "starter"}, key="k-buy") for _ in range(8))
        )
        assert {a.status_code for a in sessions} <= {200, 409} and len(shop.stripe.sessions) == 1
        assert len({a.json()["data"]["sessionId"] for a in sessions if a.status_code == 200}) == 1
