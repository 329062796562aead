"""Authentication, permissions, the rate limit and bad input through a real server: signature failures
(wrong secret, skew, replay, tampered body, missing on a live key) are 401, a route's missing
permission 403, the 61st request in a minute 429 with Retry-After, bad bodies 400/413 with codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from a2a_gateway.auth.signing import signed_headers
from tests.trading.exchange.api_helpers import running_exchange

ORDER = json.dumps({"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.01, "price": None})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_signature_failures_are_401_and_a_good_signature_passes(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        live = await ex.register("live")
        key, secret = live["apiKey"], live["apiSecret"]

        async def post(headers: dict[str, str], body: str = ORDER) -> tuple[int, str]:
            response = await ex.client.post(f"{ex.url}/orders", content=body.encode(), headers=headers)
            return response.status_code, response.json()["error"][
                "code"
            ] if response.status_code >= 400 else ""

        assert await post({"X-NX-Key": key}) == (401, "INVALID_SIGNATURE")  # a live key must sign
        assert await post(signed_headers(key, "wrong", "POST", "/orders", ORDER)) == (
            401,
            "INVALID_SIGNATURE",
        )
        stale = signed_headers(key, secret, "POST", "/orders", ORDER, now_ms=_now_ms() - 31_000)
        assert await post(stale) == (401, "INVALID_SIGNATURE")
        future = signed_headers(key, secret, "POST", "/orders", ORDER, now_ms=_now_ms() + 31_000)
        assert await post(future) == (401, "INVALID_SIGNATURE")
        tampered = signed_headers(key, secret, "POST", "/orders", ORDER)
        assert await post(tampered, ORDER.replace("0.01", "0.02")) == (401, "INVALID_SIGNATURE")
        full_path = signed_headers(key, secret, "POST", "/v1/agent/orders", ORDER)
        assert await post(full_path) == (401, "INVALID_SIGNATURE")
        good = signed_headers(key, secret, "POST", "/orders", ORDER)
        assert await post(good) == (201, "")
        assert await post(good) == (401, "INVALID_SIGNATURE")  # the same request again: a replay
        assert len(ex.service.engine.orders(live["id"])) == 1
        # a signed GET with a query string signs the path alone
        market = signed_headers(key, secret, "GET", "/market")
        response = await ex.client.get(f"{ex.url}/market?coins=ETH", headers=market)
        assert response.status_code == 200 and response.json()["data"][0]["symbol"] == "ETH"


async def test_sandbox_keys_need_no_signature_but_a_sent_one_must_be_valid(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        sandbox = await ex.register("sandbox")
        key = sandbox["apiKey"]
        assert (await ex.client.get(f"{ex.url}/portfolio", headers={"X-NX-Key": key})).status_code == 200
        bad = signed_headers(key, "wrong", "GET", "/portfolio")
        response = await ex.client.get(f"{ex.url}/portfolio", headers=bad)
        assert (response.status_code, response.json()["error"]["code"]) == (401, "INVALID_SIGNATURE")
        for headers in ({}, {"X-NX-Key": "nx_test_unknown"}, {"X-NX-Key": key + "x"}):
            response = await ex.client.get(f"{ex.url}/portfolio", headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (401, "UNAUTHENTICATED")


async def test_live_registration_needs_the_operators_token(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        body = {"name": "x", "permissions": ["read:market"], "mode": "live"}
        for headers in ({}, {"X-NX-Registration-Token": "guess"}):
            response = await ex.client.post(f"{ex.url}/register", json=body, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (
                403,
                "REGISTRATION_TOKEN_REQUIRED",
            )
        assert (await ex.register("live"))["mode"] == "live"


ROUTES = [
    ("GET", "/market", "read:market"),
    ("GET", "/portfolio", "read:portfolio"),
    ("POST", "/orders", "write:orders"),
    ("GET", "/orders", "read:portfolio"),
    ("GET", "/orders/ord_1", "read:portfolio"),
    ("DELETE", "/orders/ord_1", "write:orders"),
    ("GET", "/trades", "read:portfolio"),
    ("GET", "/sentiment", "read:sentiment"),
    ("GET", "/social", "read:social"),
]


async def test_each_route_needs_its_permission(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        for method, path, permission in ROUTES:
            without = await ex.register(permissions=[p for _, _, p in ROUTES if p != permission])
            with_it = await ex.register(permissions=[permission])
            body = ORDER.encode() if method == "POST" else b""
            denied = await ex.client.request(
                method, ex.url + path, content=body, headers={"X-NX-Key": without["apiKey"]}
            )
            assert (denied.status_code, denied.json()["error"]["code"]) == (403, "PERMISSION_DENIED"), path
            allowed = await ex.client.request(
                method, ex.url + path, content=body, headers={"X-NX-Key": with_it["apiKey"]}
            )
            assert allowed.status_code != 403, path


async def test_the_61st_request_in_a_minute_is_429_with_retry_after(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        agent = await ex.register()
        other = await ex.register()
        headers = {"X-NX-Key": agent["apiKey"]}
        for n in range(60):
            response = await ex.client.get(f"{ex.url}/portfolio", headers=headers)
            assert response.status_code == 200, n
        assert response.headers["X-RateLimit-Remaining"] == "0"
        response = await ex.client.get(f"{ex.url}/portfolio", headers=headers)
        assert response.status_code == 429 and response.json()["error"]["code"] == "RATE_LIMITED"
        assert int(response.headers["Retry-After"]) >= 1 and response.headers["X-RateLimit-Limit"] == "60"
        # per key: another account is not affected
        assert (
            await ex.client.get(f"{ex.url}/portfolio", headers={"X-NX-Key": other["apiKey"]})
        ).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "INVALID_JSON"),
        (b"[1, 2]", 400, "INVALID_REQUEST"),
        (b'{"symbol": "BTC"}', 400, "INVALID_REQUEST"),
        (b'{"symbol": 5, "side": "buy", "type": "market", "quantity": 1}', 400, "INVALID_REQUEST"),
        (
            b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": 1, "extra": 1}',
            400,
            "INVALID_REQUEST",
        ),
        (b'{"symbol": "DOGE", "side": "buy", "type": "market", "quantity": 1}', 400, "UNKNOWN_INSTRUMENT"),
        (b'{"symbol": "BTC", "side": "hold", "type": "market", "quantity": 1}', 422, "INVALID_ORDER"),
        (b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": -1}', 422, "INVALID_ORDER"),
        (b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": "1e999999"}', 422, "INVALID_ORDER"),
        (
            b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.000000001}',
            422,
            "INVALID_ORDER",
        ),
        (
            b'{"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 1, "price": null}',
            422,
            "INVALID_ORDER",
        ),
        (b'{"symbol": "BTC", "side": "buy", "type": "market", "quantity": true}', 422, "INVALID_ORDER"),
        (b"\xff\xfe", 400, "INVALID_JSON"),
        (b"{" * 70_000, 413, "PAYLOAD_TOO_LARGE"),
    ],
)
async def test_bad_order_bodies_get_a_code_never_a_500(
    tmp_path: Path, body: bytes, status: int, code: str
) -> None:
    async with running_exchange(tmp_path) as ex:
        agent = await ex.register()
        response = await ex.client.post(
            f"{ex.url}/orders", content=body, headers={"X-NX-Key": agent["apiKey"]}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


async def test_bad_registrations_and_queries_get_codes(tmp_path: Path) -> None:
    async with running_exchange(tmp_path) as ex:
        for body, code in [
            ({"name": "x", "permissions": ["trade:everything"]}, "INVALID_PERMISSION"),
            ({"name": "", "permissions": []}, "INVALID_REQUEST"),
            ({"name": "x", "mode": "paper"}, "INVALID_REQUEST"),
            ({"name": "x", "dailyLossLimit": -5}, "INVALID_REQUEST"),
            ({"name": "x", "maxPositionSize": "lots"}, "INVALID_REQUEST"),
        ]:
            response = await ex.client.post(f"{ex.url}/register", json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (400, code), body
        agent = await ex.register()
        headers = {"X-NX-Key": agent["apiKey"]}
        response = await ex.client.get(f"{ex.url}/market?coins=bitcoin,nothing", headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "UNKNOWN_INSTRUMENT")
        response = await ex.client.get(f"{ex.url}/orders/ord_404", headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "ORDER_NOT_FOUND")
        response = await ex.client.get(f"{ex.url}/nowhere", headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "NOT_FOUND")
