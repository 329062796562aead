"""The exchange's A2A skills called directly on its kit agent app (JSON-RPC SendMessage, A2A 1.0)."""

from __future__ import annotations

import json
from pathlib import Path

from a2a_gateway.auth.signing import signed_headers
from tests.trading.exchange.skill_helpers import (
    artifact_data,
    auth,
    exchange,
    order_string,
    signed_order,
    state,
    status_text,
)


async def test_the_card_lists_the_trading_skills_and_the_subscription_is_tagged(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        card = (await ex.client.get("/.well-known/agent-card.json")).json()
        skills = {s["id"]: s["tags"] for s in card["skills"]}
        assert list(skills) == ["market-data", "portfolio", "place-order", "cancel-order", "order-updates"]
        assert "subscription" in skills["order-updates"]
        assert not any("subscription" in tags for sid, tags in skills.items() if sid != "order-updates")


async def test_market_data_answers_what_get_market_answers_from_data_or_text(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register(permissions=["read:market"])
        rest = await ex.client.get(
            "/v1/agent/market?coins=bitcoin,ETH", headers={"X-NX-Key": agent["apiKey"]}
        )
        by_data = await ex.call("market-data", {"coins": "bitcoin,ETH"})
        by_text = await ex.call("market-data", text="bitcoin,ETH")
        assert state(by_data) == state(by_text) == "TASK_STATE_COMPLETED"
        assert artifact_data(by_data) == artifact_data(by_text) == rest.json()
        assert [d["symbol"] for d in artifact_data(by_data)["data"]] == ["BTC", "ETH"]
        unknown = await ex.call("market-data", {"coins": "NOPE"})
        assert state(unknown) == "TASK_STATE_REJECTED"
        assert status_text(unknown).startswith("UNKNOWN_INSTRUMENT"), status_text(unknown)


async def test_portfolio_is_the_signing_accounts_and_needs_read_portfolio(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        task = await ex.call("portfolio", {"auth": auth(agent, "GET", "/portfolio")})
        assert state(task) == "TASK_STATE_COMPLETED", task
        rest = await ex.client.get("/v1/agent/portfolio", headers={"X-NX-Key": agent["apiKey"]})
        assert artifact_data(task) == rest.json()
        assert task["artifacts"][-1]["metadata"]["caller"]["viaGateway"] is False
        reader = await ex.register(permissions=["read:market"])
        denied = await ex.call("portfolio", {"auth": auth(reader, "GET", "/portfolio")})
        assert state(denied) == "TASK_STATE_REJECTED"
        assert status_text(denied).startswith("PERMISSION_DENIED: "), status_text(denied)
        unsigned = await ex.call("portfolio", {"auth": {"apiKey": agent["apiKey"]}})
        assert status_text(unsigned).startswith("INVALID_SIGNATURE: ")
        nothing = await ex.call("portfolio", {})
        assert status_text(nothing).startswith("UNAUTHENTICATED: ")
        wrong = dict(agent, apiSecret="not-the-secret")
        forged = await ex.call("portfolio", {"auth": auth(wrong, "GET", "/portfolio")})
        assert state(forged) == "TASK_STATE_REJECTED" and status_text(forged).startswith("INVALID_SIGNATURE")
        old = await ex.call("portfolio", {"auth": auth(agent, "GET", "/portfolio", now_ms=1_000)})
        assert "window" in status_text(old)


async def test_place_order_fills_and_a_retry_with_its_client_order_id_returns_the_same_order(
    tmp_path: Path,
) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        order = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
        task = await ex.call("place-order", signed_order(agent, order))
        assert state(task) == "TASK_STATE_COMPLETED", task
        placed = artifact_data(task)["order"]
        assert placed["status"] == "closed" and placed["filled"] == 0.01
        assert placed["clientOrderId"] == json.loads(order)["clientOrderId"]
        again = await ex.call("place-order", signed_order(agent, order))  # a fresh signature, same order
        assert artifact_data(again)["order"]["orderId"] == placed["orderId"]
        assert len(ex.service.engine.orders(agent["id"])) == 1
        rest = await ex.client.get(
            f"/v1/agent/orders/{placed['orderId']}", headers={"X-NX-Key": agent["apiKey"]}
        )
        assert rest.json()["order"]["status"] == "closed"


async def test_place_order_refusals_end_rejected_with_their_code(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        capped = await ex.register(maxPositionSize=10)
        reader = await ex.register(permissions=["read:portfolio"])
        cases = [
            (
                agent,
                order_string(symbol="ETH", side="sell", type="market", quantity=1),
                "INSUFFICIENT_BALANCE",
            ),
            (capped, order_string(symbol="BTC", side="buy", type="market", quantity=1), "MAX_POSITION_SIZE"),
            (
                reader,
                order_string(symbol="BTC", side="buy", type="market", quantity=0.01),
                "PERMISSION_DENIED",
            ),
            (
                agent,
                json.dumps({"symbol": "BTC", "side": "buy", "type": "market", "quantity": 0.01}),
                "INVALID_REQUEST",
            ),
            (agent, order_string(symbol="NOPE", side="buy", type="market", quantity=1), "UNKNOWN_INSTRUMENT"),
            (agent, order_string(symbol="BTC", side="up", type="market", quantity=1), "INVALID_ORDER"),
        ]
        for who, order, code in cases:
            task = await ex.call("place-order", signed_order(who, order))
            assert state(task) == "TASK_STATE_REJECTED", (code, task)
            assert status_text(task).startswith(f"{code}: "), (code, status_text(task))
        assert not ex.service.engine.orders(reader["id"])


async def test_a_halted_account_is_rejected_with_daily_loss_limit(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register(dailyLossLimit=2)
        first = await ex.call(
            "place-order",
            signed_order(agent, order_string(symbol="BTC", side="buy", type="market", quantity=0.01)),
        )
        assert state(first) == "TASK_STATE_COMPLETED"
        for _ in range(5000):
            if ex.service.engine.portfolio(agent["id"])["limits"]["halted"]:
                break
            ex.service.simulator.advance(1)
        task = await ex.call(
            "place-order",
            signed_order(agent, order_string(symbol="BTC", side="sell", type="market", quantity=0.001)),
        )
        assert state(task) == "TASK_STATE_REJECTED"
        assert status_text(task).startswith("DAILY_LOSS_LIMIT: "), status_text(task)


async def test_a_tampered_order_string_and_a_replayed_one_are_refused(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        order = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
        signed = signed_order(agent, order)
        tampered = dict(signed, order=order.replace("0.01", "0.02"))
        refused = await ex.call("place-order", tampered)
        assert state(refused) == "TASK_STATE_REJECTED"
        assert status_text(refused) == "INVALID_SIGNATURE: Invalid request signature"
        assert not ex.service.engine.orders(agent["id"])
        assert state(await ex.call("place-order", signed)) == "TASK_STATE_COMPLETED"
        replayed = await ex.call("place-order", signed)
        assert status_text(replayed) == "INVALID_SIGNATURE: Replayed request"


async def test_one_nonce_store_for_rest_and_a2a(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        headers = signed_headers(agent["apiKey"], agent["apiSecret"], "GET", "/portfolio")
        rest = await ex.client.get("/v1/agent/portfolio", headers=headers)
        assert rest.status_code == 200
        same = {
            "apiKey": agent["apiKey"],
            "timestamp": headers["X-NX-Timestamp"],
            "signature": headers["X-NX-Signature"],
        }
        task = await ex.call("portfolio", {"auth": same})
        assert status_text(task) == "INVALID_SIGNATURE: Replayed request"
        body = order_string(symbol="BTC", side="buy", type="market", quantity=0.01)
        a2a = signed_order(agent, body)
        assert state(await ex.call("place-order", a2a)) == "TASK_STATE_COMPLETED"
        again = await ex.client.post(
            "/v1/agent/orders",
            content=body,
            headers={
                "X-NX-Key": agent["apiKey"],
                "X-NX-Timestamp": a2a["auth"]["timestamp"],
                "X-NX-Signature": a2a["auth"]["signature"],
            },
        )
        assert again.status_code == 401 and again.json()["error"]["message"] == "Replayed request"


async def test_cancel_order_cancels_an_open_order_and_refuses_a_closed_one(tmp_path: Path) -> None:
    async with exchange(tmp_path) as ex:
        agent = await ex.register()
        placed = await ex.call(
            "place-order",
            signed_order(agent, order_string(symbol="BTC", side="buy", type="limit", quantity=0.01, price=1)),
        )
        order_id = artifact_data(placed)["order"]["orderId"]
        assert artifact_data(placed)["order"]["status"] == "open"
        wrong_path = await ex.call(
            "cancel-order", {"orderId": order_id, "auth": auth(agent, "DELETE", "/orders/ord_999")}
        )
        assert status_text(wrong_path).startswith("INVALID_SIGNATURE")
        path = f"/orders/{order_id}"
        task = await ex.call("cancel-order", {"orderId": order_id, "auth": auth(agent, "DELETE", path)})
        assert state(task) == "TASK_STATE_COMPLETED", task
        assert artifact_data(task)["order"]["status"] == "canceled"
        again = await ex.call("cancel-order", {"orderId": order_id, "auth": auth(agent, "DELETE", path)})
        assert state(again) == "TASK_STATE_REJECTED" and status_text(again).startswith("ORDER_NOT_OPEN")
        other = await ex.register()
        theirs = await ex.call("cancel-order", {"orderId": order_id, "auth": auth(other, "DELETE", path)})
        assert status_text(theirs).startswith("ORDER_NOT_FOUND")
