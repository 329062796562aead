"""/api/v1/api-keys: user keys (``X-API-Key: nex_...``), shown once, listed without key material.

Listing needs ``keys:read``, minting and revoking ``keys:write`` (checked by the identity service).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rest.bodies import RestBody, data, parse, rest
from a2a_gateway.auth.models import ApiKeyRecord
from a2a_gateway.auth.service import CONNECT_KINDS
from a2a_gateway.protocol.base import format_timestamp


class NewKeyBody(RestBody):
    """Key creation body (seed 002 field names)."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(default=None, max_length=32)  # None: the caller's own scopes
    expires_in_days: int | None = None
    mode: Literal["live", "sandbox"] | None = (
        None  # Agent Connect keys (nx_live_/nx_test_) that sign requests
    )


def key_view(record: ApiKeyRecord) -> dict[str, Any]:
    """A key as listed: prefix and metadata, never the key or its hash."""
    view: dict[str, Any] = {
        "id": record.id,
        "mode": record.kind if record.kind in CONNECT_KINDS else None,
        "name": record.name,
        "prefix": record.lookup,
        "scopes": record.scopes,
        "createdAt": format_timestamp(record.created_at),
        "expiresAt": format_timestamp(record.expires_at) if record.expires_at else None,
    }
    if record.revoked_at is not None:
        view["revokedAt"] = format_timestamp(record.revoked_at)
    return view


def routes(authn: Authenticator) -> list[BaseRoute]:
    """The API-key routes."""
    auth = authn.auth

    @rest
    async def create(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        body = await parse(request, NewKeyBody)
        issued = await auth.create_key(
            principal, body.name, body.scopes, body.expires_in_days, kind=body.mode or "user"
        )
        view = {**key_view(issued.record), "key": issued.plaintext}
        if issued.secret is not None:
            view["secret"] = issued.secret
        return data(view, 201)

    @rest
    async def list_keys(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        return data([key_view(k) for k in await auth.list_keys(principal)])

    @rest
    async def revoke(request: Request) -> Response:
        principal = await authn.resolve(request, required=True)
        key_id = request.path_params["key_id"]
        await auth.revoke_key(principal, key_id)
        return data({"id": key_id, "revoked": True})

    return [
        Route("/api/v1/api-keys", create, methods=["POST"]),
        Route("/api/v1/api-keys", list_keys, methods=["GET"]),
        Route("/api/v1/api-keys/{key_id}", revoke, methods=["DELETE"]),
    ]
