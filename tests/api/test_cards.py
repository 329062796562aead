"""The gateway's agent card in 1.0 and 0.3 forms, with caching headers."""

from __future__ import annotations

import httpx

V0_3_ONLY = {
    "url",
    "protocolVersion",
    "preferredTransport",
    "additionalInterfaces",
    "supportsAuthenticatedExtendedCard",
    "security",
}


async def test_1_0_card_is_pure(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/agent-card.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    card = response.json()
    assert not V0_3_ONLY & set(card)
    assert card["supportedInterfaces"] == [
        {"url": "http://testserver/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": "http://testserver/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": True}
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"] == {
        "location": "header",
        "name": "X-API-Key",
        "description": "A user key (nex_...)",
    }
    # The open gateway accepts anonymous calls: an empty requirement is one of the alternatives.
    assert {"schemes": {}} in card["securityRequirements"]
    assert [s["id"] for s in card["skills"]] == ["echo", "countdown", "ask", "discover"]
    assert all({"id", "name", "description", "tags"} <= set(s) for s in card["skills"])
    assert card["name"] and card["description"] and card["version"]


async def test_0_3_card_by_query_and_legacy_path(client: httpx.AsyncClient) -> None:
    by_query = (await client.get("/.well-known/agent-card.json", params={"A2A-Version": "0.3"})).json()
    legacy = (await client.get("/.well-known/agent.json")).json()
    assert by_query == legacy
    assert legacy["protocolVersion"] == "0.3.0"
    assert legacy["url"] == "http://testserver/a2a" and legacy["preferredTransport"] == "JSONRPC"
    assert "supportedInterfaces" not in legacy
    assert legacy["capabilities"]["streaming"] is True
    assert legacy["supportsAuthenticatedExtendedCard"] is True
    assert legacy["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT access token, or an API key (nex_..., nxk_...)",
        "description": "Authorization: Bearer <token or key>",
    }


async def test_etag_and_cache_control(client: httpx.AsyncClient) -> None:
    first = await client.get("/.well-known/agent-card.json")
    etag = first.headers["etag"]
    assert "max-age=300" in first.headers["cache-control"]
    again = await client.get("/.well-known/agent-card.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    legacy = await client.get("/.well-known/agent.json", headers={"If-None-Match": etag})
    assert legacy.status_code == 200 and legacy.headers["etag"] != etag
    stale = await client.get("/.well-known/agent-card.json", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
