"""The gateway as identity provider: its JWKS verifies the access tokens it issues, rotation keeps old
sessions working, and introspection answers registered agents only, never with key material."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a2a_gateway.app import create_gateway_app
from a2a_gateway.cli import main
from a2a_gateway.settings import Settings
from tests.api.test_agent_key_scope import agent_key
from tests.api.test_registry import register, user
from tests.conftest import make_settings


async def jwks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert "max-age" in response.headers["cache-control"]
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def test_the_jwks_verifies_the_gateways_access_tokens(client: httpx.AsyncClient) -> None:
    owner = await user(client, "jwks@example.com")
    token = owner["Authorization"].removeprefix("Bearer ")
    (key,) = await jwks(client)
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # no private half ("d")
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="http://testserver")
    assert claims["iss"] == "http://testserver" and claims["scope"] == "*"


async def test_a_token_signed_with_another_key_is_refused_with_a_clear_401(client: httpx.AsyncClient) -> None:
    owner = await user(client, "forge@example.com")
    token = owner["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    refused = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Invalid or expired access token"
    assert (await client.get("/api/v1/auth/me", headers=owner)).status_code == 200


async def session_and_keys(settings: Settings, login: bool) -> tuple[dict[str, str], list[dict[str, Any]]]:
    async with (
        LifespanManager(create_gateway_app(settings)) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw") as client,
    ):
        if not login:
            return await user(client, "rotate@example.com"), await jwks(client)
        answer = await client.post(
            "/api/v1/auth/login", json={"email": "rotate@example.com", "password": "long enough"}
        )
        return {"Authorization": f"Bearer {answer.json()['data']['accessToken']}"}, await jwks(client)


async def accepted(settings: Settings, headers: dict[str, str]) -> bool:
    async with (
        LifespanManager(create_gateway_app(settings)) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw") as client,
    ):
        return (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200


def test_rotation_by_the_cli_keeps_sessions_and_new_tokens_use_the_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    before, (old,) = asyncio.run(session_and_keys(settings, login=False))
    # The operator rotates with the CLI against the same database...
    monkeypatch.setenv("A2A_GATEWAY_DATA_DIR", str(tmp_path))
    main(["keys", "rotate"])
    printed = capsys.readouterr().out
    assert "new signing key" in printed and old["kid"] in printed and "verifying until" in printed
    main(["keys", "list"])
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and listing[0].endswith("signing") and old["kid"] in listing[1]
    # ...and the gateway signs new sessions with the new key, and still accepts the old one.
    after, published = asyncio.run(session_and_keys(settings, login=True))
    assert [k["kid"] for k in published][1:] == [old["kid"]]
    assert jwt.get_unverified_header(after["Authorization"][7:])["kid"] == published[0]["kid"] != old["kid"]
    assert asyncio.run(accepted(settings, before)) and asyncio.run(accepted(settings, after))


async def introspect(client: httpx.AsyncClient, headers: dict[str, str], token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/introspect", json={"token": token}, headers=headers)


async def test_introspection_answers_registered_agents_only_and_never_with_key_material(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client, "intro@example.com")
    token = owner["Authorization"].removeprefix("Bearer ")
    agent = await register(client, owner)
    nxk = await agent_key(client, owner, agent["id"])
    created = await client.post(
        "/api/v1/api-keys", json={"name": "u", "scopes": ["tasks:write"]}, headers=owner
    )
    nex = created.json()["data"]
    me = (await client.get("/api/v1/auth/me", headers=owner)).json()["data"]["id"]

    session = (await introspect(client, nxk, token)).json()["data"]
    assert session["active"] is True and session["sub"] == me and session["kind"] == "session"
    assert session["scopes"] == ["*"] and session["exp"] and session["keyId"] is None
    keyed = (await introspect(client, nxk, nex["key"])).json()["data"]
    assert keyed == {
        "active": True, "sub": me, "kind": "user", "scopes": ["tasks:write"], "keyId": nex["id"], "exp": None,
    }  # fmt: skip
    text = (await introspect(client, nxk, nex["key"])).text
    assert nex["key"] not in text and nex["key"][4:12] not in text  # neither the key nor its lookup part
    # Unknown, forged, revoked and other kinds of credential are inactive, and say nothing more.
    await client.delete(f"/api/v1/api-keys/{nex['id']}", headers=owner)
    for other in [nex["key"], nxk["X-API-Key"], "nex_" + "A" * 43, token + "x", "junk"]:
        answer = await introspect(client, nxk, other)
        assert answer.status_code == 200 and answer.json() == {"data": {"active": False}}
    # Only a per-agent key may ask: a user's session and keys get 403, nobody at all 401.
    for headers in [
        owner,
        {
            "X-API-Key": (await client.post("/api/v1/api-keys", json={"name": "x"}, headers=owner)).json()[
                "data"
            ]["key"]
        },
    ]:
        refused = await introspect(client, headers, token)
        assert refused.status_code == 403 and "nxk_" in refused.json()["error"]["message"]
    assert (await introspect(client, {}, token)).status_code == 401
    bad = await client.post("/api/v1/auth/introspect", json={"token": ""}, headers=nxk)
    assert bad.status_code == 400


async def test_a_gateway_given_another_pepper_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    first = make_settings(tmp_path, key_pepper="pepper-one-" * 4)
    async with LifespanManager(create_gateway_app(first)):
        pass  # creates the first signing key, sealed under this pepper
    other = make_settings(tmp_path, key_pepper="pepper-two-" * 4)
    with pytest.raises(RuntimeError, match="the key pepper changed"):
        async with LifespanManager(create_gateway_app(other)):
            pass


async def test_introspection_has_a_budget_per_agent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limits={"auth:introspect": "2/minute"})
    async with (
        LifespanManager(create_gateway_app(settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        owner = await user(client, "budget@example.com")
        first, second = await register(client, owner, name="One"), await register(client, owner, name="Two")
        one, two = await agent_key(client, owner, first["id"]), await agent_key(client, owner, second["id"])
        for _ in range(2):
            assert (await introspect(client, one, "junk")).status_code == 200
        over = await introspect(client, one, "junk")
        assert over.status_code == 429 and "Retry-After" in over.headers
        assert (await introspect(client, two, "junk")).status_code == 200  # another agent's own budget
