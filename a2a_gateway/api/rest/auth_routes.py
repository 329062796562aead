"""/api/v1/auth: register, login, refresh, logout, me (seed 000)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.common import RestBody, data, parse, rest
from a2a_gateway.auth.models import Session, User
from a2a_gateway.protocol.base import format_timestamp, utc_now


class Credentials(RestBody):
    """Register and login body."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(RestBody):
    """Refresh and logout body."""

    refresh_token: str = Field(min_length=1, max_length=512)


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

    @rest
    async def register(request: Request) -> Response:
        body = await parse(request, Credentials)
        return data(user_view(await auth.register(body.email, body.password)), 201)

    @rest
    async def login(request: Request) -> Response:
        body = await parse(request, Credentials)
        return data(session_view(await auth.login(body.email, body.password)))

    @rest
    async def refresh(request: Request) -> Response:
        body = await parse(request, RefreshBody)
        return data(session_view(await auth.refresh(body.refresh_token)))

    @rest
    async def logout(request: Request) -> Response:
        body = await parse(request, RefreshBody)
        await auth.logout(body.refresh_token)
        return data({"loggedOut": True})

    @rest
    async def me(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        return data(user_view(await auth.me(principal)))

    return [
        Route("/api/v1/auth/register", register, methods=["POST"]),
        Route("/api/v1/auth/login", login, methods=["POST"]),
        Route("/api/v1/auth/refresh", refresh, methods=["POST"]),
        Route("/api/v1/auth/logout", logout, methods=["POST"]),
        Route("/api/v1/auth/me", me, methods=["GET"]),
    ]
