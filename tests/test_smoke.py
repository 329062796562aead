"""The first user journey: the card, then a send in each protocol version."""

from __future__ import annotations

import httpx

from tests.factories import legacy_message, rpc, send_text


async def test_card_and_send_in_both_versions(client: httpx.AsyncClient) -> None:
    card = (await client.get("/.well-known/agent-card.json")).json()
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0", "0.3"}
    task = await send_text(client, "hello")
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "hello"}]
    legacy = await rpc(client, "message/send", {"message": legacy_message("hi")}, version=None)
    assert legacy["result"]["kind"] == "task"
    assert legacy["result"]["status"]["state"] == "completed"
