"""A ``nex_`` key's daily spend cap end to end: minted with ``dailySpendCap``, shown in listings, and
enforced at hold time on every entry point (JSON-RPC ``-32073 SPEND_CAP_REACHED``, REST ``402``, nothing
written); ``metadata.maxPrice`` and the cap together; a failed call gives its price back to the cap;
concurrent calls hold exactly what the cap affords (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_paid_calls import PRICE, Market, market
from tests.factories import envelope, user_message


async def mint(shop: Market, **body: Any) -> Any:
    return await shop.gw.post("/api/v1/api-keys", json={"name": "capped", **body}, headers=shop.buyer)


async def capped_key(shop: Market, cap: int) -> dict[str, str]:
    created = await mint(shop, dailySpendCap=cap)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["dailySpendCap"] == cap
    return {"X-API-Key": created.json()["data"]["key"]}


@pytest.fixture
async def shop(tmp_path: Path) -> Any:
    async with market(tmp_path) as opened:
        yield opened


async def test_a_key_is_minted_with_a_cap_shown_in_listings_and_bounds_are_checked(shop: Market) -> None:
    await capped_key(shop, 250)
    plain = await mint(shop)
    assert plain.status_code == 201 and plain.json()["data"]["dailySpendCap"] is None
    listed = (await shop.gw.get("/api/v1/api-keys", headers=shop.buyer)).json()["data"]
    assert sorted((k["dailySpendCap"] is None) for k in listed) == [False, True]
    for bad in ({"dailySpendCap": -1}, {"dailySpendCap": 10**12 + 1}, {"dailySpendCap": "100"}):
        refused = await mint(shop, **bad)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["details"][0]["field"] == "dailySpendCap"
    connect = await mint(shop, dailySpendCap=10, mode="sandbox")  # Agent Connect keys carry no cap
    assert connect.status_code == 400 and "nex_" in connect.json()["error"]["message"]


async def test_a_capped_key_pays_until_its_cap_then_every_entry_point_refuses_with_nothing_written(
    shop: Market,
) -> None:
    await shop.billing.grant(shop.buyer_id, 10 * PRICE, "test")
    key = await capped_key(shop, 2 * PRICE + 50)
    for _ in range(2):
        done = await shop.send(headers=key)
        assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", done
    refused = (await shop.send(headers=key))["error"]
    assert refused["code"] == -32073 and refused["data"][0]["reason"] == "SPEND_CAP_REACHED"
    assert refused["data"][0]["metadata"] == {"cap": "250", "spent": "200", "price": str(PRICE)}
    proxied = await shop.gw.post(
        f"/a2a/agents/{shop.agent_id}",
        json=envelope("SendMessage", {"message": user_message()}),
        headers={"A2A-Version": "1.0", **key},
    )
    assert proxied.status_code == 200 and proxied.json()["error"]["code"] == -32073
    rest = await shop.gw.post("/api/v1/tasks", json={"assignedAgentId": shop.agent_id}, headers=key)
    assert rest.status_code == 402 and rest.json()["error"]["code"] == "SPEND_CAP_REACHED"
    assert "250" in rest.json()["error"]["message"]
    assert len((await shop.gw.get("/api/v1/tasks", headers=shop.buyer)).json()["data"]) == 2
    assert len(shop.agent.assertions) == 2  # the refused calls reached no agent
    assert await shop.balance(shop.buyer_id) == (8 * PRICE, 0)
    # The cap is the key's, not the user's: the session (or another key) still pays.
    other = await shop.send()
    assert other["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert (await shop.billing.check()).ok


async def test_max_price_and_the_key_cap_together_and_a_failed_call_gives_the_cap_back(shop: Market) -> None:
    await shop.billing.grant(shop.buyer_id, 10 * PRICE, "test")
    key = await capped_key(shop, PRICE)
    above = (await shop.send(headers=key, maxPrice=PRICE - 1))["error"]
    assert above["code"] == -32072  # maxPrice refuses first: nothing counted against the cap
    failed = await shop.send("fail", headers=key, maxPrice=PRICE)
    assert failed["result"]["task"]["status"]["state"] == "TASK_STATE_FAILED"  # released: cap given back
    done = await shop.send(headers=key, maxPrice=PRICE)
    assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert (await shop.send(headers=key, maxPrice=PRICE))["error"]["code"] == -32073
    zero = await capped_key(shop, 0)  # a cap of 0: free calls only
    assert (await shop.send(headers=zero))["error"]["code"] == -32073
    own = await shop.gw.post(
        "/api/v1/api-keys", json={"name": "owner's", "dailySpendCap": 0}, headers=shop.owner
    )
    owners_key = {"X-API-Key": own.json()["data"]["key"]}
    free = await shop.send(headers=owners_key)  # the owner's own agent costs nothing: no cap applies
    assert free["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert await shop.balance(shop.buyer_id) == (9 * PRICE, 0)
    report = await shop.billing.check()
    assert report.ok, report.lines()


async def test_thirty_concurrent_calls_with_a_key_cap_that_affords_five_hold_exactly_five(
    tmp_path: Path, database_url: str
) -> None:
    async with market(tmp_path, database_url) as shop:
        await shop.billing.grant(shop.buyer_id, 100 * PRICE, "test")  # credits for all: the cap decides
        key = await capped_key(shop, 5 * PRICE)
        answers = await asyncio.gather(*(shop.send(headers=key) for _ in range(30)))
        completed = [a for a in answers if "result" in a]
        refused = [a for a in answers if a.get("error", {}).get("code") == -32073]
        assert len(completed) == 5 and len(refused) == 25, [a.get("error") for a in answers][:3]
        assert await shop.balance(shop.buyer_id) == (95 * PRICE, 0)
        report = await shop.billing.check()
        assert report.ok, report.lines()
