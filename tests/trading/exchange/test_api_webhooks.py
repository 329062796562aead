"""Webhooks through a real server: registration checks, signed fill and breaker deliveries to an in-process
receiver, retries then giving up without touching orders, deletion stopping deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agents_examples.trading.exchange.agent import create_exchange_app
from agents_examples.trading.exchange.market.sources import load_market_data
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.exchange.store import AccountStore
from agents_examples.trading.exchange.webhooks import WebhookDispatcher
from tests.conftest import LiveServer, free_port, make_settings
from tests.trading.exchange.api_helpers import TOKEN, Running

RECEIVER = "http://receiver.test"
NAMES = {"public.example": ["93.184.216.34"], "internal.example": ["10.1.2.3"]}


@dataclass
class Receiver:
    """An in-process ASGI app standing in for the account's server: records every POST, answers
    ``status[path]`` (200 by default; a 3xx points at ``/landing``)."""

    got: asyncio.Queue[tuple[str, dict[str, str], bytes]] = field(default_factory=asyncio.Queue)
    status: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            path = request.url.path
            self.calls[path] = self.calls.get(path, 0) + 1
            await self.got.put((path, dict(request.headers), await request.body()))
            status = self.status.get(path, 200)
            headers = {"Location": f"{RECEIVER}/landing"} if 300 <= status < 400 else None
            return Response(status_code=status, headers=headers)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST", "GET"])])

    async def next(self) -> tuple[str, dict[str, str], bytes]:
        return await asyncio.wait_for(self.got.get(), 10)


async def resolve(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError("no such host")
    return NAMES[host]


@asynccontextmanager
async def exchange(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Running]:
    store = AccountStore(tmp_path / "exchange")
    hooks = WebhookDispatcher(
        store,
        allowlist=["receiver.test"],
        transport=httpx.ASGITransport(app=receiver.app()),
        resolver=resolve,
        retry_delays=(0, 0, 0),
    )
    market = load_market_data(use_real=False, seed=7)
    service = ExchangeService(store, market, registration_token=TOKEN, webhooks=hooks)
    service.simulator.advance(30)
    port = free_port()
    settings = make_settings(tmp_path / "exchange", public_url=f"http://127.0.0.1:{port}")
    server = LiveServer(create_exchange_app(service, settings, paced=False), port)
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            yield Running(service, f"{server.url}/v1/agent", server.url, client)
    finally:
        await server.stop()


async def _hook(ex: Running, key: str, url: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = await ex.client.post(
        f"{ex.url}/webhooks", json={"url": url, **extra}, headers={"X-NX-Key": key}
    )
    doc: dict[str, Any] = response.json()
    return response.status_code, doc


async def _buy(ex: Running, key: str, quantity: float = 0.01) -> dict[str, Any]:
    response = await ex.client.post(
        f"{ex.url}/orders",
        json={"symbol": "BTC", "side": "buy", "type": "market", "quantity": quantity},
        headers={"X-NX-Key": key},
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()["order"]
    return order


def _verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    parts = dict(p.split("=", 1) for p in headers["x-nx-webhook-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)


async def test_registration_refuses_bad_urls_too_many_and_a_key_without_the_permission(
    tmp_path: Path,
) -> None:
    async with exchange(tmp_path, Receiver()) as ex:
        key = (await ex.register())["apiKey"]
        refused = {
            "http://public.example/hook": "INVALID_WEBHOOK_URL",  # http to a host not allowlisted
            "ftp://public.example/hook": "INVALID_WEBHOOK_URL",
            "https://internal.example/hook": "WEBHOOK_URL_REFUSED",  # resolves to a private address
            "https://127.0.0.1/hook": "WEBHOOK_URL_REFUSED",
            "https://169.254.169.254/latest": "WEBHOOK_URL_REFUSED",
            "https://nowhere.example/hook": "WEBHOOK_URL_REFUSED",
        }
        for url, code in refused.items():
            status, doc = await _hook(ex, key, url)
            assert (status, doc["error"]["code"]) == (400, code), url
        status, doc = await _hook(ex, key, "https://public.example/hook", events=["orders"])
        assert (status, doc["error"]["code"]) == (400, "INVALID_REQUEST")

        ids = []
        for n in range(5):
            status, doc = await _hook(ex, key, f"https://public.example/hook{n}")
            assert status == 201, doc
            assert doc["webhook"]["secret"].startswith("whsec_")
            assert doc["webhook"]["events"] == ["fill", "breaker"]
            ids.append(doc["webhook"]["id"])
        status, doc = await _hook(ex, key, f"{RECEIVER}/one-too-many")
        assert (status, doc["error"]["code"]) == (409, "TOO_MANY_WEBHOOKS")

        listed = await ex.client.get(f"{ex.url}/webhooks", headers={"X-NX-Key": key})
        assert [h["id"] for h in listed.json()["data"]] == ids
        assert all("secret" not in h for h in listed.json()["data"])

        other = (await ex.register(permissions=["read:market", "write:orders"]))["apiKey"]
        status, doc = await _hook(ex, other, f"{RECEIVER}/hook")
        assert (status, doc["error"]["code"]) == (403, "PERMISSION_DENIED")
        gone = await ex.client.delete(f"{ex.url}/webhooks/{ids[0]}", headers={"X-NX-Key": other})
        assert gone.status_code == 403
        listed = await ex.client.get(f"{ex.url}/webhooks", headers={"X-NX-Key": other})
        assert listed.status_code == 403


async def test_a_fill_is_delivered_signed_to_the_account_s_webhook_only(tmp_path: Path) -> None:
    receiver = Receiver()
    async with exchange(tmp_path, receiver) as ex:
        agent = await ex.register()
        bystander = await ex.register()
        status, doc = await _hook(ex, agent["apiKey"], f"{RECEIVER}/mine", events=["fill"])
        assert status == 201
        hook = doc["webhook"]
        assert (await _hook(ex, bystander["apiKey"], f"{RECEIVER}/theirs"))[0] == 201

        order = await _buy(ex, agent["apiKey"])
        path, headers, body = await receiver.next()
        assert path == "/mine"
        _verify(hook["secret"], headers, body)
        assert headers["x-nx-webhook-id"] == hook["id"]
        assert headers["content-type"] == "application/json"
        event = httpx.Response(200, content=body).json()
        assert (event["type"], event["accountId"]) == ("fill", agent["id"])
        assert event["data"]["order"] == order["orderId"]
        assert headers["x-nx-event-id"] == event["id"]
        await ex.service.webhooks.idle()
        assert receiver.calls == {"/mine": 1}

        tampered = body.replace(b'"fill"', b'"fill" ')
        try:
            _verify(hook["secret"], headers, tampered)
        except AssertionError:
            pass
        else:
            raise AssertionError("a changed body must not verify")


async def test_a_breaker_event_is_delivered(tmp_path: Path) -> None:
    receiver = Receiver()
    async with exchange(tmp_path, receiver) as ex:
        agent = await ex.register(dailyLossLimit=2)
        status, doc = await _hook(ex, agent["apiKey"], f"{RECEIVER}/breaker", events=["breaker"])
        assert status == 201
        await _buy(ex, agent["apiKey"])
        for _ in range(5000):
            if ex.service.engine.portfolio(agent["id"])["limits"]["halted"]:
                break
            ex.service.simulator.advance(1)
        path, headers, body = await receiver.next()
        _verify(doc["webhook"]["secret"], headers, body)
        event = httpx.Response(200, content=body).json()
        assert (path, event["type"], event["accountId"]) == ("/breaker", "breaker", agent["id"])
        assert event["data"]["state"] == "halted"
        assert event["data"]["code"] == "DAILY_LOSS_LIMIT"
        assert event["data"]["limit"] == 2


async def test_a_failing_receiver_is_retried_then_given_up_and_orders_go_on(tmp_path: Path) -> None:
    receiver = Receiver(status={"/down": 500, "/moved": 302})
    async with exchange(tmp_path, receiver) as ex:
        agent = await ex.register()
        for name in ("down", "moved"):
            assert (await _hook(ex, agent["apiKey"], f"{RECEIVER}/{name}"))[0] == 201
        first = await _buy(ex, agent["apiKey"])
        second = await _buy(ex, agent["apiKey"])
        assert first["status"] == second["status"] == "closed"
        await ex.service.webhooks.idle()
        # 2 fills x (1 attempt + 3 retries) each; the redirect is a failure, not followed
        assert receiver.calls == {"/down": 8, "/moved": 8}
        assert ex.service.webhooks.given_up == 4
        trades = await ex.client.get(f"{ex.url}/trades", headers={"X-NX-Key": agent["apiKey"]})
        assert len(trades.json()["data"]) == 2


async def test_a_deleted_webhook_receives_nothing_more(tmp_path: Path) -> None:
    receiver = Receiver()
    async with exchange(tmp_path, receiver) as ex:
        agent = await ex.register()
        key = agent["apiKey"]
        _, doc = await _hook(ex, key, f"{RECEIVER}/gone")
        hook_id = doc["webhook"]["id"]
        await _buy(ex, key)
        await ex.service.webhooks.idle()
        assert receiver.calls == {"/gone": 1}

        response = await ex.client.delete(f"{ex.url}/webhooks/{hook_id}", headers={"X-NX-Key": key})
        assert (response.status_code, response.json()) == (200, {"deleted": hook_id})
        again = await ex.client.delete(f"{ex.url}/webhooks/{hook_id}", headers={"X-NX-Key": key})
        assert (again.status_code, again.json()["error"]["code"]) == (404, "WEBHOOK_NOT_FOUND")
        await _buy(ex, key)
        await ex.service.webhooks.idle()
        assert receiver.calls == {"/gone": 1}
        listed = await ex.client.get(f"{ex.url}/webhooks", headers={"X-NX-Key": key})
        assert listed.json()["data"] == []
