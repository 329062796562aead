"""Identity end to end: sessions, refresh rotation, lockout, API keys, scopes and ownership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from a2a_gateway.app import create_gateway_app
from agents_examples.echo import ECHO_AGENT
from tests.conftest import make_settings
from tests.factories import V1, envelope, error_of, user_message


async def register_and_login(
    client: httpx.AsyncClient, email: str, password: str = "correct horse 1"
) -> dict[str, Any]:
    created = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    session: dict[str, Any] = login.json()["data"]
    return session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_key(client: httpx.AsyncClient, token: str, scopes: list[str], **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": scopes, **extra}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()["data"]
    return key


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    session = await register_and_login(client, "Ann@Example.com")
    assert session["tokenType"] == "Bearer" and 0 < session["expiresIn"] <= 900
    assert session["user"]["email"] == "ann@example.com" and "passwordHash" not in session["user"]
    me = await client.get("/api/v1/auth/me", headers=bearer(session["accessToken"]))
    assert me.json()["data"]["id"] == session["user"]["id"]

    rotated = (
        await client.post("/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]})
    ).json()["data"]
    assert rotated["refreshToken"] != session["refreshToken"]
    logout = await client.post("/api/v1/auth/logout", json={"refreshToken": rotated["refreshToken"]})
    assert logout.status_code == 200
    after = await client.post("/api/v1/auth/refresh", json={"refreshToken": rotated["refreshToken"]})
    assert after.status_code == 401 and after.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_refresh_token_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    session = await register_and_login(client, "reuse@example.com")
    first = session["refreshToken"]
    second = (await client.post("/api/v1/auth/refresh", json={"refreshToken": first})).json()["data"][
        "refreshToken"
    ]
    replay = await client.post("/api/v1/auth/refresh", json={"refreshToken": first})
    assert replay.status_code == 401 and "reuse" in replay.json()["error"]["message"]
    # The legitimate holder of the newest token is logged out too.
    assert (await client.post("/api/v1/auth/refresh", json={"refreshToken": second})).status_code == 401


async def test_registration_errors(client: httpx.AsyncClient) -> None:
    await register_and_login(client, "dup@example.com")
    again = await client.post(
        "/api/v1/auth/register", json={"email": "DUP@example.com", "password": "whatever123"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
    short = await client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": "short"})
    assert short.status_code == 400
    bad = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "long enough"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "email"
    junk = await client.post(
        "/api/v1/auth/register", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert junk.status_code == 400


async def test_lockout_after_five_failures_same_answer_for_unknown_users(client: httpx.AsyncClient) -> None:
    await register_and_login(client, "lock@example.com")
    wrong = {"email": "lock@example.com", "password": "wrong password"}
    unknown = {"email": "nobody@example.com", "password": "wrong password"}
    for _ in range(5):
        a = await client.post("/api/v1/auth/login", json=wrong)
        b = await client.post("/api/v1/auth/login", json=unknown)
        assert a.status_code == b.status_code == 401
        assert (
            a.json()
            == b.json()
            == {"error": {"code": "UNAUTHENTICATED", "message": "Invalid email or password"}}
        )
    for body in (wrong, unknown, {"email": "lock@example.com", "password": "correct horse 1"}):
        locked = await client.post("/api/v1/auth/login", json=body)
        assert locked.status_code == 423 and locked.json()["error"]["code"] == "ACCOUNT_LOCKED"
        assert 0 < int(locked.headers["retry-after"]) <= 900


async def test_api_key_shown_once_hashed_at_rest_and_revocable(
    client: httpx.AsyncClient, settings: Any
) -> None:
    session = await register_and_login(client, "keys@example.com")
    key = await make_key(client, session["accessToken"], ["tasks:read", "tasks:write"], expiresInDays=30)
    assert key["key"].startswith("nex_") and key["prefix"] == key["key"][: len(key["prefix"])]
    listed = (await client.get("/api/v1/api-keys", headers=bearer(session["accessToken"]))).json()["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    # The database holds no key material, only a prefix and a keyed hash.
    database = b"".join(p.read_bytes() for p in Path(settings.data_dir).glob("gateway.db*"))
    assert key["key"].encode() not in database and key["prefix"].encode() in database

    works = await client.post("/a2a", json=envelope("ListTasks", {}), headers={**V1, "X-API-Key": key["key"]})
    assert works.status_code == 200 and "result" in works.json()
    revoke = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=bearer(session["accessToken"]))
    assert revoke.status_code == 200
    refused = await client.post(
        "/a2a", json=envelope("ListTasks", {}), headers={**V1, "X-API-Key": key["key"]}
    )
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    forged = await client.post(
        "/a2a", json=envelope("ListTasks", {}), headers={**V1, "X-API-Key": key["key"][:-2] + "xx"}
    )
    assert forged.status_code == 401


async def test_scopes_are_enforced_on_json_rpc_and_rest(client: httpx.AsyncClient) -> None:
    session = await register_and_login(client, "scopes@example.com")
    reader = await make_key(client, session["accessToken"], ["tasks:read"])
    headers = {**V1, "Authorization": f"Bearer {reader['key']}"}
    listed = await client.post("/a2a", json=envelope("ListTasks", {}), headers=headers)
    assert listed.status_code == 200
    send = await client.post(
        "/a2a", json=envelope("SendMessage", {"message": user_message()}), headers=headers
    )
    assert send.status_code == 403
    error = error_of(send.json())
    assert error["code"] == -32061 and "tasks:write" in error["message"]
    escalate = await client.post(
        "/api/v1/api-keys", json={"name": "more", "scopes": ["*"]}, headers={"X-API-Key": reader["key"]}
    )
    assert escalate.status_code == 403 and escalate.json()["error"]["code"] == "FORBIDDEN"
    unknown = await client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=bearer(session["accessToken"])
    )
    assert unknown.status_code == 400


async def test_tasks_and_keys_are_owner_scoped(client: httpx.AsyncClient) -> None:
    alice = await register_and_login(client, "alice@example.com")
    bob = await register_and_login(client, "bob@example.com")
    a_headers = {**V1, **bearer(alice["accessToken"])}
    b_headers = {**V1, **bearer(bob["accessToken"])}
    task = (
        await client.post(
            "/a2a", json=envelope("SendMessage", {"message": user_message()}), headers=a_headers
        )
    ).json()
    task_id = task["result"]["task"]["id"]
    for method, params in [
        ("GetTask", {"id": task_id}),
        ("CancelTask", {"id": task_id}),
        ("SubscribeToTask", {"id": task_id}),
    ]:
        response = await client.post("/a2a", json=envelope(method, params), headers=b_headers)
        assert error_of(response.json())["code"] == -32001, method
    follow_up = envelope("SendMessage", {"message": user_message(taskId=task_id)})
    assert error_of((await client.post("/a2a", json=follow_up, headers=b_headers)).json())["code"] == -32001
    assert (await client.post("/a2a", json=envelope("ListTasks", {}), headers=b_headers)).json()["result"][
        "totalSize"
    ] == 0
    anonymous = await client.post("/a2a", json=envelope("GetTask", {"id": task_id}), headers=V1)
    assert error_of(anonymous.json())["code"] == -32001
    mine = await client.post("/a2a", json=envelope("GetTask", {"id": task_id}), headers=a_headers)
    assert mine.json()["result"]["id"] == task_id

    key = await make_key(client, alice["accessToken"], ["tasks:read"])
    stolen = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=bearer(bob["accessToken"]))
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "NOT_FOUND"


async def test_extended_card_for_authenticated_callers(client: httpx.AsyncClient) -> None:
    session = await register_and_login(client, "card@example.com")
    card = await client.post(
        "/a2a", json=envelope("GetExtendedAgentCard", {}), headers={**V1, **bearer(session["accessToken"])}
    )
    assert card.json()["result"]["name"] == "A2A Gateway"
    legacy = await client.post(
        "/a2a", json=envelope("agent/getAuthenticatedExtendedCard"), headers=bearer(session["accessToken"])
    )
    assert legacy.json()["result"]["protocolVersion"] == "0.3.0"


@pytest.fixture
async def closed_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gateway_app(make_settings(tmp_path, open_gateway=False), local_skills=ECHO_AGENT.skills)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


async def test_closed_gateway_demands_credentials(closed_client: httpx.AsyncClient) -> None:
    response = await closed_client.post(
        "/a2a", json=envelope("SendMessage", {"message": user_message()}), headers=V1
    )
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    card = (await closed_client.get("/.well-known/agent-card.json")).json()
    assert {"schemes": {}} not in card["securityRequirements"]
    bad = await closed_client.post(
        "/a2a", json=envelope("ListTasks", {}), headers={**V1, "Authorization": "Basic abc"}
    )
    assert bad.status_code == 401
    expired = await closed_client.post(
        "/a2a", json=envelope("ListTasks", {}), headers={**V1, **bearer("not.a.jwt")}
    )
    assert expired.status_code == 401
