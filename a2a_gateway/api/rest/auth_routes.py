"""/api/v1/auth (register, login, refresh, logout, me; seed 000) and the dashboard's session and logout."""

from __future__ import annotations

import hashlib

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.busy import retry_when_busy
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, parse
from a2a_gateway.api.rest.browser_session import (
    REFRESH_COOKIE,
    SESSION_COOKIE,
    clear_cookies,
    dashboard_principal,
    set_cookies,
)
from a2a_gateway.api.rest.views import introspection_view, session_view, user_view
from a2a_gateway.auth.models import Session
from a2a_gateway.errors import InvalidParams

# Budgets (Settings.rate_limits): logins per client address and per account, registrations per address.
LOGIN_BUDGET = "auth:login"
LOGIN_ACCOUNT_BUDGET = "auth:login:account"
REGISTER_BUDGET = "auth:register"
INTROSPECT_BUDGET = "auth:introspect"  # per agent: a flood of made-up keys costs the gateway lookups


class Credentials(RestBody):
    """Register and login body."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class IntrospectionBody(RestBody):
    """Introspection body: the credential an agent was handed."""

    token: str = Field(min_length=1, max_length=8192)


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


class AuthApi:
    """The identity routes: accounts and sessions by token, and the dashboard's browser session."""

    def __init__(self, authn: Authenticator) -> None:
        self._authn = authn
        self._auth = authn.auth

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        return [
            Route("/api/v1/auth/register", self.register, methods=["POST"]),
            Route("/api/v1/auth/login", self.login, methods=["POST"]),
            Route("/api/v1/auth/refresh", self.refresh, methods=["POST"]),
            Route("/api/v1/auth/logout", self.logout, methods=["POST"]),
            Route("/api/v1/auth/me", self.me, methods=["GET"]),
            Route("/api/v1/auth/introspect", self.introspect, methods=["POST"]),
            Route("/api/dashboard/session", self.dashboard_session, methods=["GET"]),
            Route("/api/dashboard/logout", self.dashboard_logout, methods=["POST"]),
        ]

    def _session_response(self, request: Request, session: Session) -> Response:
        response = data(session_view(session))
        set_cookies(response, request, self._auth, session)
        return response

    async def register(self, request: Request) -> Response:
        """POST /api/v1/auth/register: a new account (201), within the address's registration budget."""
        await self._authn.limiter.spend(REGISTER_BUDGET, client_of(request))
        body = await parse(request, Credentials)
        user = await retry_when_busy(lambda: self._auth.register(body.email, body.password))
        return data(user_view(user), 201)

    async def login(self, request: Request) -> Response:
        """POST /api/v1/auth/login: a session (tokens in the body and in browser cookies)."""
        # The address budget is spent before anything is parsed or hashed; the account budget slows a
        # spread-out guessing attempt against one account, next to its lockout.
        await self._authn.limiter.spend(LOGIN_BUDGET, client_of(request))
        body = await parse(request, Credentials)
        await self._authn.limiter.spend(LOGIN_ACCOUNT_BUDGET, account_of(body.email))
        session = await retry_when_busy(lambda: self._auth.login(body.email, body.password))
        return self._session_response(request, session)

    async def refresh(self, request: Request) -> Response:
        """POST /api/v1/auth/refresh: a new session for a refresh token, which is used up."""
        body = await parse(request, RefreshBody)
        # Not retried: a refresh marks its token used first, and a second attempt would look like reuse.
        return self._session_response(request, await self._auth.refresh(refresh_token_of(request, body)))

    async def logout(self, request: Request) -> Response:
        """POST /api/v1/auth/logout: end the refresh token's session and clear the cookies."""
        body = await parse(request, RefreshBody)
        await self._auth.logout(refresh_token_of(request, body))
        response = data({"loggedOut": True})
        clear_cookies(response)
        return response

    async def me(self, request: Request) -> Response:
        """GET /api/v1/auth/me: the caller's account."""
        principal = await self._authn.resolve(request, required=True)
        principal.require()  # a per-agent key speaks for its agent, not as its owner
        return data(user_view(await self._auth.me(principal)))

    async def introspect(self, request: Request) -> Response:
        """POST /api/v1/auth/introspect: whom a credential stands for; registered agents (nxk_) only."""
        principal = await self._authn.resolve(request, required=True)
        if principal.agent_id is not None:
            await self._authn.limiter.spend(INTROSPECT_BUDGET, "agent:" + principal.agent_id)
        body = await parse(request, IntrospectionBody)
        return data(introspection_view(await self._auth.introspect(principal, body.token)))

    async def dashboard_session(self, request: Request) -> Response:
        """GET /api/dashboard/session: the session cookie's user and the CSRF token to send back."""
        principal = await dashboard_principal(request, self._auth)
        token = request.cookies[SESSION_COOKIE]
        return data(
            {"user": user_view(await self._auth.me(principal)), "csrfToken": self._auth.csrf_token(token)}
        )

    async def dashboard_logout(self, request: Request) -> Response:
        """POST /api/dashboard/logout: end the browser session (CSRF-checked)."""
        await dashboard_principal(request, self._auth)
        refresh_cookie = request.cookies.get(REFRESH_COOKIE)
        if refresh_cookie:
            await self._auth.logout(refresh_cookie)
        response = data({"loggedOut": True})
        clear_cookies(response)
        return response
