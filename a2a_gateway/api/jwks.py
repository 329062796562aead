"""GET /.well-known/jwks.json: the public keys that verify gateway access tokens and caller assertions."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.auth.keyring import KeyRing

# Short: a verifier that meets an unknown key id fetches again anyway, and a rotation should reach
# shared HTTP caches within a minute.
MAX_AGE_SECONDS = 60


class JwksEndpoint:
    """Serves the key ring's published keys (public halves only)."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    async def serve(self, request: Request) -> Response:
        """The JWK Set, current key first."""
        return Response(
            orjson.dumps(await self._ring.jwks()),
            media_type="application/jwk-set+json",
            headers={"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"},
        )
