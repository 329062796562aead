"""The billing routes end to end: balance, history and usage from the ledger; buying credits through a
local fake of Stripe, credited only by a verified webhook for a paid session, once per session and event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from a2a_gateway.billing.service import BillingService
from tests.api.test_agent_key_scope import agent_key
from tests.api.test_registry import register, user
from tests.conftest import make_settings
from tests.factories import host_of
from tests.stripe_fake import API_BASE, SECRET_KEY, WEBHOOK_SECRET, FakeStripe, signed_headers


async def resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"] if host == "stripe.test" else []


class ToStripe(httpx.AsyncBaseTransport):
    """The gateway's outbound calls, sent to the fake Stripe."""

    def __init__(self, stripe: FakeStripe) -> None:
        self.stripe = stripe

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert host_of(request) == "stripe.test"
        return await httpx.ASGITransport(app=self.stripe.app).handle_async_request(request)


@dataclass
class Shop:
    gw: httpx.AsyncClient
    stripe: FakeStripe
    billing: BillingService
    buyer: dict[str, str]
    buyer_id: str

    async def balance(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        answer = await self.gw.get("/api/v1/billing/balance", headers=headers or self.buyer)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()["data"]
        return body

    async def deliver(self, body: bytes, timestamp: float | None = None) -> httpx.Response:
        headers = signed_headers(body, int(timestamp if timestamp is not None else time.time()))
        return await self.gw.post("/api/v1/billing/webhook", content=body, headers=headers)

    async def bought_session(self, package: str = "starter") -> str:
        answer = await self.gw.post(
            "/api/v1/billing/checkout", json={"packageId": package}, headers=self.buyer
        )
        assert answer.status_code == 200, answer.text
        session: str = answer.json()["data"]["sessionId"]
        self.stripe.pay(session)
        return session


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    stripe = FakeStripe()
    settings = make_settings(
        tmp_path,
        outbound_allowlist=[],
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=API_BASE,
    )
    app = create_gateway_app(settings, outbound_transport=ToStripe(stripe), resolver=resolver)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as gw,
    ):
        buyer = await user(gw, "buyer@example.com")
        me = (await gw.get("/api/v1/auth/me", headers=buyer)).json()["data"]["id"]
        yield Shop(gw, stripe, app.state.billing, buyer, me)


async def test_a_new_user_has_nothing_and_a_grant_shows_as_promotional(shop: Shop) -> None:
    assert await shop.balance() == {
        "user_id": shop.buyer_id, "balance": 0, "available": 0, "held": 0, "promo": 0,
        "total_earned": 0, "total_spent": 0, "total_purchased": 0,
    }  # fmt: skip
    assert await shop.billing.grant(shop.buyer_id, 250, "welcome", reference=f"signup:{shop.buyer_id}")
    assert not await shop.billing.grant(shop.buyer_id, 250, "welcome", reference=f"signup:{shop.buyer_id}")
    after = await shop.balance()
    assert after["balance"] == 250 and after["promo"] == 250 and after["total_purchased"] == 0
    (entry,) = (await shop.gw.get("/api/v1/billing/transactions", headers=shop.buyer)).json()["data"]
    assert entry["type"] == "grant" and entry["amount"] == 250 and entry["balanceAfter"] == 250


async def test_a_paid_session_is_credited_once_whatever_arrives_and_in_what_order(shop: Shop) -> None:
    session = await shop.bought_session("pro")
    completed = shop.stripe.event(session)
    answers = await asyncio.gather(*(shop.deliver(completed) for _ in range(2)))  # two deliveries at once
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["data"]["credited"] for a in answers) == [False, True]
    await shop.deliver(shop.stripe.event(session, "checkout.session.async_payment_succeeded"))
    await shop.deliver(completed)  # a redelivery days later
    balance = await shop.balance()
    assert balance["balance"] == 5000 and balance["total_purchased"] == 5000 and balance["promo"] == 0
    purchases = await shop.gw.get(
        "/api/v1/billing/transactions", params={"type": "purchase"}, headers=shop.buyer
    )
    assert [e["amount"] for e in purchases.json()["data"]] == [5000]


async def test_bad_stale_future_or_missing_signatures_credit_nothing(shop: Shop) -> None:
    session = await shop.bought_session()
    body = shop.stripe.event(session)
    for timestamp in (time.time() - 400, time.time() + 400):
        assert (await shop.deliver(body, timestamp)).status_code == 400
    forged = signed_headers(body, int(time.time()), secret="whsec_someone_else")
    assert (await shop.gw.post("/api/v1/billing/webhook", content=body, headers=forged)).status_code == 400
    assert (await shop.gw.post("/api/v1/billing/webhook", content=body)).status_code == 400
    tampered = body.replace(b'"paid"', b'"paid" ')
    headers = signed_headers(body, int(time.time()))
    assert (
        await shop.gw.post("/api/v1/billing/webhook", content=tampered, headers=headers)
    ).status_code == 400
    assert (await shop.balance())["balance"] == 0


async def test_an_unpaid_or_altered_session_credits_nothing(shop: Shop) -> None:
    answer = await shop.gw.post("/api/v1/billing/checkout", json={"packageId": "starter"}, headers=shop.buyer)
    session = answer.json()["data"]["sessionId"]
    unpaid = await shop.deliver(shop.stripe.event(session))
    assert unpaid.status_code == 200 and unpaid.json()["data"]["credited"] is False
    shop.stripe.pay(session)
    shop.stripe.update(session, amount_total=1)  # Stripe's session says one cent: not our package
    assert (await shop.deliver(shop.stripe.event(session))).json()["data"]["credited"] is False
    assert (await shop.balance())["balance"] == 0


async def test_checkout_needs_a_known_package_and_replays_for_the_same_idempotency_key(shop: Shop) -> None:
    assert (
        await shop.gw.post("/api/v1/billing/checkout", json={"packageId": "gold"}, headers=shop.buyer)
    ).status_code == 400
    keyed = {**shop.buyer, "Idempotency-Key": "order-1"}
    first = await shop.gw.post("/api/v1/billing/checkout", json={"packageId": "starter"}, headers=keyed)
    second = await shop.gw.post("/api/v1/billing/checkout", json={"packageId": "starter"}, headers=keyed)
    assert first.json()["data"]["sessionId"] == second.json()["data"]["sessionId"]
    assert first.json()["data"]["url"].startswith("http")
    listed = (await shop.gw.get("/api/v1/billing/packages")).json()["data"]
    assert [p["id"] for p in listed] == ["starter", "pro", "enterprise"]


async def test_reading_needs_a_user_and_bad_parameters_are_400(shop: Shop) -> None:
    assert (await shop.gw.get("/api/v1/billing/balance")).status_code == 401
    agent = await register(shop.gw, shop.buyer, endpoint="http://stripe.test/a2a")
    nxk = await agent_key(shop.gw, shop.buyer, agent["id"])
    assert (await shop.gw.get("/api/v1/billing/balance", headers=nxk)).status_code == 403
    narrow = await shop.gw.post(
        "/api/v1/api-keys", json={"name": "t", "scopes": ["tasks:read"]}, headers=shop.buyer
    )
    key = {"X-API-Key": narrow.json()["data"]["key"]}
    assert (await shop.gw.get("/api/v1/billing/balance", headers=key)).status_code == 403
    for params in ({"limit": "-1"}, {"limit": "x"}, {"type": "gift"}, {"limit": "0"}):
        answer = await shop.gw.get("/api/v1/billing/transactions", params=params, headers=shop.buyer)
        assert answer.status_code == 400, params
    assert (
        await shop.gw.get("/api/v1/billing/usage", params={"period": "1y"}, headers=shop.buyer)
    ).status_code == 400
    usage = (await shop.gw.get("/api/v1/billing/usage", params={"period": "7d"}, headers=shop.buyer)).json()[
        "data"
    ]
    assert usage["period"] == "7d" and len(usage["daily"]) == 7 and usage["totalSpent"] == 0
