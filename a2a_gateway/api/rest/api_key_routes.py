"""/api/v1/api-keys: user keys (``X-API-Key: nex_...``), shown once, listed without key material.

Listing needs ``keys:read``, minting and revoking ``keys:write`` (checked by the identity service).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, parse
from a2a_gateway.api.rest.views import key_view


class NewKeyBody(RestBody):
    """Key creation body (seed 002 field names)."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(default=None, max_length=32)  # None: the caller's own scopes
    expires_in_days: int | None = None
    mode: Literal["live", "sandbox"] | None = (
        None  # Agent Connect keys (nx_live_/nx_test_) that sign requests
    )
    # Credits the key's priced calls may hold or spend per UTC day (nex_ keys only; None: no cap).
    daily_spend_cap: int | None = Field(default=None, strict=True)


class ApiKeyApi:
    """The user-key routes: mint (shown once), list, revoke."""

    def __init__(self, authn: Authenticator) -> None:
        self._authn = authn
        self._auth = authn.auth

    def routes(self) -> list[BaseRoute]:
        """The route table of this resource."""
        return [
            Route("/api/v1/api-keys", self.create, methods=["POST"]),
            Route("/api/v1/api-keys", self.list_keys, methods=["GET"]),
            Route("/api/v1/api-keys/{key_id}", self.revoke, methods=["DELETE"]),
        ]

    async def create(self, request: Request) -> Response:
        """POST /api/v1/api-keys: a user key, or an Agent Connect key with its signing secret (``mode``)."""
        principal = await self._authn.resolve(request, required=True)
        body = await parse(request, NewKeyBody)
        issued = await self._auth.create_key(
            principal,
            body.name,
            body.scopes,
            body.expires_in_days,
            kind=body.mode or "user",
            daily_spend_cap=body.daily_spend_cap,
        )
        view = {**key_view(issued.record), "key": issued.plaintext}
        if issued.secret is not None:
            view["secret"] = issued.secret
        return data(view, 201)

    async def list_keys(self, request: Request) -> Response:
        """GET /api/v1/api-keys: the caller's keys, without key material."""
        principal = await self._authn.resolve(request, required=True)
        return data([key_view(k) for k in await self._auth.list_keys(principal)])

    async def revoke(self, request: Request) -> Response:
        """DELETE /api/v1/api-keys/{keyId}."""
        principal = await self._authn.resolve(request, required=True)
        key_id = request.path_params["key_id"]
        await self._auth.revoke_key(principal, key_id)
        return data({"id": key_id, "revoked": True})
