"""Who is calling: credentials from headers turned into a Principal (or the open gateway's anonymous)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from a2a_gateway.auth.keys import kind_of
from a2a_gateway.auth.models import ANONYMOUS_ID, Principal
from a2a_gateway.auth.service import AuthService
from a2a_gateway.errors import Unauthenticated

OPEN_SCOPES = frozenset({"tasks:read", "tasks:write", "agents:read"})


class Authenticator:
    """Resolves ``Authorization: Bearer <JWT | key>`` and ``X-API-Key: <key>``."""

    def __init__(self, auth: AuthService, open_gateway: bool) -> None:
        self.auth = auth
        self.open_gateway = open_gateway
        self._anonymous = Principal(id=ANONYMOUS_ID, kind="anonymous", scopes=OPEN_SCOPES)

    async def resolve(self, conn: HTTPConnection, *, required: bool = False) -> Principal:
        """The caller; anonymous only when no credentials came and anonymous calls are allowed."""
        key = _header(conn, b"x-api-key")
        if key:
            return await self.auth.authenticate_key(key)
        authorization = _header(conn, b"authorization")
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            credentials = credentials.strip()
            if scheme.lower() != "bearer" or not credentials:
                raise Unauthenticated("Use 'Authorization: Bearer <token or key>' or 'X-API-Key: <key>'")
            if kind_of(credentials) is not None:
                return await self.auth.authenticate_key(credentials)
            return self.auth.authenticate_access_token(credentials)
        if required or not self.open_gateway:
            raise Unauthenticated()
        return self._anonymous


def _header(conn: HTTPConnection, name: bytes) -> str | None:
    for key, value in conn.scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None
