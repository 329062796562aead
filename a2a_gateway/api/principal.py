"""Who is calling: credentials from headers turned into a Principal (or the open gateway's anonymous)."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from a2a_gateway.agent.caller import Caller
from a2a_gateway.api.http import raw_header, read_body
from a2a_gateway.api.rate_limiter import RateLimiter
from a2a_gateway.auth import signing
from a2a_gateway.auth.assertions import caller_of
from a2a_gateway.auth.keys import kind_of
from a2a_gateway.auth.models import ANONYMOUS_ID, Principal
from a2a_gateway.auth.service import CONNECT_KINDS, AuthService, SignedRequest
from a2a_gateway.errors import Unauthenticated

OPEN_SCOPES = frozenset({"tasks:read", "tasks:write", "agents:read"})
BAD_AUTHORIZATION = "Use 'Authorization: Bearer <token or key>' or 'X-API-Key: <key>'"


def presented_credential(conn: HTTPConnection, *, query_token: bool = False) -> str | None:
    """The credential of ``X-API-Key`` or ``Authorization: Bearer`` (or, if asked, the ``token`` query
    parameter a browser WebSocket must use); None when none came. The gateway and kit agents read
    credentials the same way."""
    key = raw_header(conn, b"x-api-key")
    if key:
        return key.strip()
    authorization = raw_header(conn, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthenticated(BAD_AUTHORIZATION)
        return credentials
    if query_token:
        return conn.query_params.get("token") or None
    return None


class Authenticator:
    """Resolves ``X-NX-Key`` (signed), ``X-API-Key: <key>`` and ``Authorization: Bearer <JWT | key>``."""

    def __init__(
        self, auth: AuthService, open_gateway: bool, limiter: RateLimiter, max_body_bytes: int
    ) -> None:
        self.auth = auth
        self.open_gateway = open_gateway
        self.limiter = limiter
        self._max_body = max_body_bytes
        self._anonymous = Principal(id=ANONYMOUS_ID, kind="anonymous", scopes=OPEN_SCOPES)

    async def resolve(self, conn: Request, *, required: bool = False) -> Principal:
        """The caller; anonymous only when no credentials came and anonymous calls are allowed."""
        connect_key = raw_header(conn, b"x-nx-key")
        if connect_key:
            return await self._connect(conn, connect_key)
        principal = await self._resolve(conn, required)
        if principal.key_kind in CONNECT_KINDS:
            raise Unauthenticated("Agent Connect keys go in X-NX-Key, with X-NX-Timestamp and X-NX-Signature")
        return principal

    async def identify(self, conn: Request) -> tuple[Principal, Caller]:
        """The caller as ``resolve`` finds it, and who its tasks are made for (a kit agent overrides this)."""
        principal = await self.resolve(conn)
        return principal, caller_of(principal)

    async def _connect(self, conn: Request, key: str) -> Principal:
        signed = SignedRequest(
            method=conn.scope["method"],
            path=conn.scope["path"],
            body=await read_body(conn, self._max_body),
            timestamp=raw_header(conn, signing.HEADER_TIMESTAMP.lower().encode()),
            signature=raw_header(conn, signing.HEADER_SIGNATURE.lower().encode()),
        )
        principal = await self.auth.authenticate_signed(key, signed)
        await self.limiter.check("connect", principal, conn.client.host if conn.client else None)
        return principal

    async def _resolve(self, conn: Request, required: bool) -> Principal:
        credential = presented_credential(conn)
        if credential is not None:
            if kind_of(credential) is not None or raw_header(conn, b"x-api-key"):
                return await self.auth.authenticate_key(credential)  # X-API-Key holds keys only
            return await self.auth.authenticate_access_token(credential)
        if required or not self.open_gateway:
            raise Unauthenticated()
        return self._anonymous
