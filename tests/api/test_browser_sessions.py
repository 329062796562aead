"""Dashboard routes: session cookie set at login (HttpOnly, SameSite=Lax, Secure behind HTTPS) and CSRF."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette


async def login(client: httpx.AsyncClient, email: str = "web@example.com") -> httpx.Response:
    await client.post("/api/v1/auth/register", json={"email": email, "password": "long enough"})
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": "long enough"})
    assert response.status_code == 200
    return response


def cookie_header(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


async def test_login_sets_session_cookies_with_the_right_flags(client: httpx.AsyncClient) -> None:
    response = await login(client)
    session = cookie_header(response, "a2a_session").lower()
    assert "httponly" in session and "samesite=lax" in session and "secure" not in session
    refresh = cookie_header(response, "a2a_refresh").lower()
    assert "httponly" in refresh and "path=/api/v1/auth" in refresh and "samesite=strict" in refresh
    csrf = cookie_header(response, "a2a_csrf").lower()
    assert "httponly" not in csrf


@pytest.fixture
async def https_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
    ) as c:
        yield c


async def test_cookies_are_secure_behind_https(https_client: httpx.AsyncClient) -> None:
    response = await login(https_client, "secure@example.com")
    assert "secure" in cookie_header(response, "a2a_session").lower()


async def test_dashboard_needs_the_cookie_and_csrf_on_state_changes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    anonymous = await client.get("/api/dashboard/session")
    assert anonymous.status_code == 401
    response = await login(client)
    token = response.json()["data"]["accessToken"]
    # A bearer token is not a browser session: dashboard routes read the cookie only.
    bearer_only = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with bearer_only:
        assert (
            await bearer_only.get("/api/dashboard/session", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401
    session = (await client.get("/api/dashboard/session")).json()["data"]
    assert session["user"]["email"] == "web@example.com"
    assert session["csrfToken"] == client.cookies["a2a_csrf"]

    no_csrf = await client.post("/api/dashboard/logout")
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    forged = await client.post("/api/dashboard/logout", headers={"X-CSRF-Token": "0" * 40})
    assert forged.status_code == 403
    ok = await client.post("/api/dashboard/logout", headers={"X-CSRF-Token": session["csrfToken"]})
    assert ok.status_code == 200
    assert "a2a_session" not in client.cookies
    assert (await client.get("/api/dashboard/session")).status_code == 401


async def test_refresh_and_logout_accept_the_refresh_cookie(client: httpx.AsyncClient) -> None:
    await login(client, "cookie@example.com")
    first = client.cookies["a2a_session"]
    refreshed = await client.post("/api/v1/auth/refresh", json={})
    assert refreshed.status_code == 200 and client.cookies["a2a_session"] != first
    assert (await client.post("/api/v1/auth/logout", json={})).status_code == 200
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 400
