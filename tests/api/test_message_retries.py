"""Through the gateway: a paid SendMessage repeated with the same messageId by the same caller answers the
first task and is paid once (also when the retries race), on SQLite and PostgreSQL; another caller's
message with that id is a task of its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.api.test_paid_calls import PRICE, Market, market
from tests.factories import envelope, user_message


async def send(shop: Market, message_id: str, headers: dict[str, str], method: str = "SendMessage") -> Any:
    params = {"message": user_message(messageId=message_id), "metadata": {"agentId": shop.agent_id}}
    answer = await shop.gw.post(
        "/a2a", json=envelope(method, params), headers={"A2A-Version": "1.0", **headers}
    )
    return answer


async def test_a_repeated_paid_send_is_paid_once_even_when_the_retries_race(
    tmp_path: Path, database_url: str
) -> None:
    async with market(tmp_path, database_url) as shop:
        await shop.billing.grant(shop.buyer_id, 3 * PRICE, "test")
        answers = await asyncio.gather(*(send(shop, "retry-me", shop.buyer) for _ in range(5)))
        tasks = [a.json()["result"]["task"] for a in answers]
        assert len({t["id"] for t in tasks}) == 1, tasks
        assert {t["status"]["state"] for t in tasks} == {"TASK_STATE_COMPLETED"}
        later = (await send(shop, "retry-me", shop.buyer)).json()["result"]["task"]  # from the store now
        assert later["id"] == tasks[0]["id"] and later["status"]["state"] == "TASK_STATE_COMPLETED"
        assert len(shop.agent.assertions) == 1  # the agent was called once
        assert await shop.balance(shop.buyer_id) == (2 * PRICE, 0)
        stream = await send(shop, "retry-me", shop.buyer, "SendStreamingMessage")
        assert stream.status_code == 200 and tasks[0]["id"] in stream.text and stream.text.count("data:") == 1
        # The agent's owner sends a message with the same id: its own task (its own agent: free).
        own = (await send(shop, "retry-me", shop.owner)).json()["result"]["task"]
        assert own["id"] != tasks[0]["id"] and len(shop.agent.assertions) == 2
        assert (await shop.billing.check()).ok
