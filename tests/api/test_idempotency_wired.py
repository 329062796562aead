"""The gateway as built honours Idempotency-Key on REST task creation: a retried paid task is paid once."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_paid_calls import PRICE, market


async def test_a_retried_rest_task_with_the_same_key_is_created_and_paid_once(tmp_path: Path) -> None:
    async with market(tmp_path) as shop:
        await shop.billing.grant(shop.buyer_id, 3 * PRICE, "test")
        headers = {**shop.buyer, "Idempotency-Key": "order-42"}
        body = {"assignedAgentId": shop.agent_id, "title": "t", "description": "hi"}
        first = await shop.gw.post("/api/v1/tasks", json=body, headers=headers)
        again = await shop.gw.post("/api/v1/tasks", json=body, headers=headers)
        assert first.status_code == again.status_code == 202
        assert first.json()["data"]["id"] == again.json()["data"]["id"]
        assert again.headers.get("Idempotent-Replayed") == "true"
        other = await shop.gw.post("/api/v1/tasks", json={**body, "title": "u"}, headers=headers)
        assert other.status_code == 422
        tasks = (await shop.gw.get("/api/v1/tasks", headers=shop.buyer)).json()["data"]
        assert len(tasks) == 1
        balance = await shop.billing.balance(shop.buyer_id)
        assert balance.available == 2 * PRICE  # one price, held or already captured
