"""Bad input on the REST API that must be refused before anything is stored."""

from __future__ import annotations

from typing import Any

import httpx


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    credentials = {"email": "rest@example.com", "password": "long enough"}
    await client.post("/api/v1/auth/register", json=credentials)
    token = (await client.post("/api/v1/auth/login", json=credentials)).json()["data"]["accessToken"]
    return {"Authorization": f"Bearer {token}"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


async def test_a_deeply_nested_body_is_a_400_naming_the_path(client: httpx.AsyncClient) -> None:
    headers = await login(client)
    body = {"assignedAgentId": "some-agent", "input": {"data": nested(40)}}
    response = await client.post("/api/v1/tasks", json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMS"
    assert error["details"][0]["field"].startswith("input.data.k.k")
    listed = (await client.get("/api/v1/tasks", headers=headers)).json()["data"]
    assert listed == []
