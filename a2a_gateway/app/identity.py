"""The kit's public helper for an agent's own REST and WebSocket routes: one account, the gateway's.

An agent that serves its own API accepts what the gateway hands its users: an access token
(``Authorization: Bearer``), verified with the gateway's published keys, or a ``nex_`` user key
(``X-API-Key`` or Bearer), checked through the gateway's introspection route with the agent's ``nxk_``
key. A browser WebSocket cannot set headers, so WebSocket routes also take a ``token`` query parameter.

    auth = GatewayAuth.from_settings(settings)

    @auth.protect
    async def orders(request: Request) -> Response:
        caller = request.state.caller  # a2a_gateway.agent.Caller: caller.user is the gateway user id

A kit agent's app (``create_agent_app``) has one already, sharing its caches: ``app.state.gateway_auth``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from a2a_gateway.agent.caller import Caller
from a2a_gateway.api.errors import error_response
from a2a_gateway.api.kit_authenticator import NO_GATEWAY
from a2a_gateway.api.principal import presented_credential
from a2a_gateway.auth.gateway_identity import Credential, GatewayIdentity
from a2a_gateway.auth.jwks_keys import JwksKeys
from a2a_gateway.auth.signing import NonceStore
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.outbound.gateway_identity_client import HttpIntrospector, HttpJwksSource
from a2a_gateway.outbound.ssrf import GuardedTransport, SsrfGuard
from a2a_gateway.settings import Settings

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])
_WS_POLICY_VIOLATION = 1008
_DENIAL = "websocket.http.response"


def build_identity(
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    agent_id: Callable[[], str | None],
    agent_key: Callable[[], str | None],
    replays: NonceStore | None = None,
) -> GatewayIdentity:
    """The gateway identity of an agent of ``settings.gateway_url``, reached through ``client``.

    ``agent_id`` and ``agent_key`` give the agent's id and ``nxk_`` key as far as they are known;
    ``replays`` remembers assertion ids (in memory unless given, e.g. the agent's Redis nonce store).
    """
    if not settings.gateway_url:
        raise ValueError("verifying gateway credentials needs gateway_url")
    gateway = settings.gateway_url.rstrip("/")
    timeout = min(settings.outbound_timeout_seconds, 10.0)
    keys = JwksKeys(HttpJwksSource(client, gateway, timeout=timeout))
    return GatewayIdentity(
        keys.lookup,
        issuer=settings.gateway_issuer or gateway,
        audience=agent_id,
        introspector=HttpIntrospector(client, gateway, agent_key, timeout=timeout),
        replays=replays,
    )


class GatewayAuth:
    """Authenticates the callers of an agent's own routes with their gateway credentials."""

    def __init__(
        self, identity: GatewayIdentity | None, *, owned_client: httpx.AsyncClient | None = None
    ) -> None:
        self.identity = identity
        self._owned_client = owned_client

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient | None = None) -> GatewayAuth:
        """From ``gateway_url``, ``gateway_issuer``, ``agent_id`` and ``agent_key`` (for ``nex_`` keys).

        Without ``client`` it makes its own, guarded by ``outbound_allowlist`` as every outbound call
        is; ``aclose`` (or ``async with``) closes it.
        """
        owned = None
        if client is None:
            owned = client = httpx.AsyncClient(
                transport=GuardedTransport(SsrfGuard(settings.outbound_allowlist)),
                timeout=httpx.Timeout(settings.outbound_timeout_seconds),
                follow_redirects=False,
            )
        key = settings.agent_key.get_secret_value() if settings.agent_key is not None else None
        identity = build_identity(settings, client, agent_id=lambda: settings.agent_id, agent_key=lambda: key)
        return cls(identity, owned_client=owned)

    async def credential(self, conn: HTTPConnection) -> Credential:
        """The verified gateway credential of a request or WebSocket; Unauthenticated when there is none."""
        token = presented_credential(conn, query_token=conn.scope["type"] == "websocket")
        if token is None:
            raise Unauthenticated(
                "Use 'Authorization: Bearer <gateway token or nex_ key>' or 'X-API-Key: nex_...'"
            )
        if self.identity is None:
            raise Unauthenticated(NO_GATEWAY)
        return await self.identity.verify_credential(token)

    async def authenticate(self, conn: HTTPConnection) -> Caller:
        """The caller of a request or WebSocket (``via_gateway`` False: it came directly)."""
        return (await self.credential(conn)).caller

    def protect(self, endpoint: Endpoint) -> Endpoint:
        """Wrap a Starlette endpoint (HTTP or WebSocket function): unauthenticated callers get 401
        (``{"error": {"code": "UNAUTHENTICATED", ...}}``); others reach it with ``request.state.caller``
        and ``request.state.scopes`` (the credential's scopes at the gateway)."""

        @functools.wraps(endpoint)
        async def guarded(conn: HTTPConnection, *args: Any, **kwargs: Any) -> Any:
            try:
                credential = await self.credential(conn)
            except Unauthenticated as refused:
                if isinstance(conn, WebSocket):
                    return await _deny(conn, refused)
                return error_response(refused)
            conn.state.caller = credential.caller
            conn.state.scopes = credential.scopes
            return await endpoint(conn, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Close the client ``from_settings`` made (a client passed in is its owner's to close)."""
        if self._owned_client is not None:
            await self._owned_client.aclose()

    async def __aenter__(self) -> GatewayAuth:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _deny(websocket: WebSocket, refused: Unauthenticated) -> None:
    # Before the handshake is accepted: an HTTP 401 with the REST body where the server can send one.
    if _DENIAL in websocket.scope.get("extensions", {}):
        response: Response = error_response(refused)
        await websocket.send_denial_response(response)
        return
    await websocket.close(code=_WS_POLICY_VIOLATION, reason=refused.message[:120])
