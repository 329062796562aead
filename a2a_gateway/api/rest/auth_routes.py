"""/api/v1/auth: register, login, refresh, logout, me (seed 000)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.busy import retry_when_busy
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, parse, rest
from a2a_gateway.api.rest.browser_session import (
    REFRESH_COOKIE,
    SESSION_COOKIE,
    clear_cookies,
    dashboard_principal,
    set_cookies,
)
from a2a_gateway.auth.models import Session, User
from a2a_gateway.errors import InvalidParams
from a2a_gateway.protocol.base import format_timestamp, utc_now

# Budgets (Settings.rate_limits): logins per client address and per account, registrations per address.
LOGIN_BUDGET = "auth:login"
LOGIN_ACCOUNT_BUDGET = "auth:login:account"
REGISTER_BUDGET = "auth:register"


class Credentials(RestBody):
    """Register and login body."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(RestBody):
    """Refresh and logout body; browsers may send the refresh cookie instead."""

    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)


def refresh_token_of(request: Request, body: RefreshBody) -> str:
    """The refresh token from the body, else from the browser's refresh cookie."""
    token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise InvalidParams(
            "refreshToken is required", violations=[{"field": "refreshToken", "description": "required"}]
        )
    return token


def client_of(request: Request) -> str:
    """The budget identity of the client address (``ip:...``)."""
    return f"ip:{request.client.host if request.client else 'unknown'}"


def account_of(email: str) -> str:
    """The budget identity of a submitted email, known or not; a digest, so no address is kept."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"account:{digest}"


def user_view(user: User) -> dict[str, Any]:
    """A user as the API shows it (never the password hash)."""
    return {"id": user.id, "email": user.email, "createdAt": format_timestamp(user.created_at)}


def session_view(session: Session) -> dict[str, Any]:
    """Tokens of a session."""
    return {
        "accessToken": session.access_token,
        "tokenType": "Bearer",
        "expiresIn": max(0, int((session.access_expires_at - utc_now()).total_seconds())),
        "refreshToken": session.refresh_token,
        "refreshExpiresAt": format_timestamp(session.refresh_expires_at),
        "user": user_view(session.user),
    }


def routes(authn: Authenticator) -> list[BaseRoute]:
    """The auth routes."""
    auth = authn.auth

    def session_response(request: Request, session: Session) -> Response:
        response = data(session_view(session))
        set_cookies(response, request, auth, session)
        return response

    @rest
    async def register(request: Request) -> Response:
        await authn.limiter.spend(REGISTER_BUDGET, client_of(request))
        body = await parse(request, Credentials)
        user = await retry_when_busy(lambda: auth.register(body.email, body.password))
        return data(user_view(user), 201)

    @rest
    async def login(request: Request) -> Response:
        # The address budget is spent before anything is parsed or hashed; the account budget slows a
        # spread-out guessing attempt against one account, next to its lockout.
        await authn.limiter.spend(LOGIN_BUDGET, client_of(request))
        body = await parse(request, Credentials)
        await authn.limiter.spend(LOGIN_ACCOUNT_BUDGET, account_of(body.email))
        session = await retry_when_busy(lambda: auth.login(body.email, body.password))
        return session_response(request, session)

    @rest
    async def refresh(request: Request) -> Response:
        body = await parse(request, RefreshBody)
        # Not retried: a refresh marks its token used first, and a second attempt would look like reuse.
        return session_response(request, await auth.refresh(refresh_token_of(request, body)))

    @rest
    async def logout(request: Request) -> Response:
        body = await parse(request, RefreshBody)
        await auth.logout(refresh_token_of(request, body))
        response = data({"loggedOut": True})
        clear_cookies(response)
        return response

    @rest
    async def dashboard_session(request: Request) -> Response:
        principal = dashboard_principal(request, auth)
        token = request.cookies[SESSION_COOKIE]
        return data({"user": user_view(await auth.me(principal)), "csrfToken": auth.csrf_token(token)})

    @rest
    async def dashboard_logout(request: Request) -> Response:
        dashboard_principal(request, auth)
        refresh_cookie = request.cookies.get(REFRESH_COOKIE)
        if refresh_cookie:
            await auth.logout(refresh_cookie)
        response = data({"loggedOut": True})
        clear_cookies(response)
        return response

    @rest
    async def me(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        principal.require()  # a per-agent key speaks for its agent, not as its owner
        return data(user_view(await auth.me(principal)))

    return [
        Route("/api/v1/auth/register", register, methods=["POST"]),
        Route("/api/v1/auth/login", login, methods=["POST"]),
        Route("/api/v1/auth/refresh", refresh, methods=["POST"]),
        Route("/api/v1/auth/logout", logout, methods=["POST"]),
        Route("/api/v1/auth/me", me, methods=["GET"]),
        Route("/api/dashboard/session", dashboard_session, methods=["GET"]),
        Route("/api/dashboard/logout", dashboard_logout, methods=["POST"]),
    ]
