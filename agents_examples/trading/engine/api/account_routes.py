"""``/auth`` and ``/api-keys``: the gateway's accounts, sessions and user keys, forwarded (:mod:`.forward`).

``POST /auth/register``, ``/auth/login`` and ``/auth/refresh`` go to the gateway as they are (the
gateway applies its own budgets and lockouts: 429 and 423 come back with their ``Retry-After``).
``GET /auth/me``, ``GET /api-keys`` need a credential; ``POST /auth/logout``, ``POST /api-keys`` and
``DELETE /api-keys/{id}`` need a login session. The engine checks these before forwarding, and the
gateway checks the credential again. Without a gateway every one of them is 502
``GATEWAY_UNAVAILABLE``.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from agents_examples.trading.engine.api.access import Access, Call, Handler, Spec
from agents_examples.trading.engine.api.forward import GatewayForwarder, unavailable
from agents_examples.trading.engine.api.responses import parse_json, read_body
from agents_examples.trading.engine.errors import not_found

KEY_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class AccountRoutes:
    """The forwarded routes, through ``forwarder`` (None: no gateway configured)."""

    def __init__(self, forwarder: GatewayForwarder | None) -> None:
        self.forwarder = forwarder

    def specs(self) -> list[Spec]:
        """This resource's routes."""
        return [
            Spec("/auth/register", ("POST",), self._to("/auth/register"), Access.PUBLIC),
            Spec("/auth/login", ("POST",), self._to("/auth/login"), Access.PUBLIC),
            Spec("/auth/refresh", ("POST",), self._to("/auth/refresh"), Access.PUBLIC),
            Spec("/auth/logout", ("POST",), self._to("/auth/logout"), Access.SESSION),
            Spec("/auth/me", ("GET",), self._to("/auth/me"), Access.READ),
            Spec("/api-keys", ("GET",), self._to("/api-keys"), Access.READ),
            Spec("/api-keys", ("POST",), self._to("/api-keys"), Access.SESSION),
            Spec("/api-keys/{id}", ("DELETE",), self.revoke, Access.SESSION),
        ]

    def _to(self, path: str) -> Handler:
        """A handler forwarding to the gateway's ``/api/v1{path}``."""

        async def forward(request: Request, call: Call) -> Response:
            return await self._forward(request, path)

        return forward

    async def revoke(self, request: Request, call: Call) -> Response:
        key_id = request.path_params["id"]
        if not KEY_ID.fullmatch(key_id) or key_id in (".", ".."):
            raise not_found("API key", "API_KEY_NOT_FOUND")
        return await self._forward(request, f"/api-keys/{key_id}")

    async def _forward(self, request: Request, path: str) -> Response:
        if self.forwarder is None:
            return unavailable("This engine has no gateway configured")
        body = b""
        if request.method in ("POST", "PUT", "PATCH"):
            body = await read_body(request)
            parse_json(body)  # 400 INVALID_JSON here rather than the gateway's own words
        query = request.url.query if request.method == "GET" else ""
        return await self.forwarder.forward(request.method, path, request.headers, body, query)
