"""Browser sessions for the dashboard routes: HttpOnly session cookies and a CSRF token."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.auth.models import Principal, Session
from a2a_gateway.auth.service import AuthService
from a2a_gateway.errors import Forbidden, Unauthenticated
from a2a_gateway.protocol.base import utc_now

SESSION_COOKIE = "a2a_session"
REFRESH_COOKIE = "a2a_refresh"
CSRF_COOKIE = "a2a_csrf"
CSRF_HEADER = "x-csrf-token"
REFRESH_PATH = "/api/v1/auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def set_cookies(response: Response, request: Request, auth: AuthService, session: Session) -> None:
    """Put a session in cookies: access and refresh tokens HttpOnly, the CSRF token readable by the page."""
    secure = request.url.scheme == "https"
    now = utc_now()
    access_age = max(1, int((session.access_expires_at - now).total_seconds()))
    refresh_age = max(1, int((session.refresh_expires_at - now).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE, session.access_token, max_age=access_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        REFRESH_COOKIE,
        session.refresh_token,
        max_age=refresh_age,
        path=REFRESH_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    csrf = auth.csrf_token(session.access_token)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=access_age, samesite="lax", secure=secure)


def clear_cookies(response: Response) -> None:
    """End the browser session."""
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH)
    response.delete_cookie(CSRF_COOKIE)


async def dashboard_principal(request: Request, auth: AuthService) -> Principal:
    """The caller of a dashboard route: from the session cookie, with a CSRF check on state changes."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthenticated("Dashboard routes need a session; log in first")
    principal = await auth.authenticate_access_token(token)
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(presented.encode(), auth.csrf_token(token).encode()):
            raise Forbidden("CSRF token missing or invalid: send the a2a_csrf cookie's value in X-CSRF-Token")
    return principal
