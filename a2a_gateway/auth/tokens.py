"""Short-lived access tokens signed by the gateway's key ring, and the small secret helpers of auth."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from a2a_gateway.auth import jws
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol.base import utc_now

_REQUIRED_CLAIMS: Final = ["sub", "scope", "iat", "jti"]
INVALID_TOKEN: Final = "Invalid or expired access token"  # noqa: S105 (an error message)


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    subject: str
    scopes: frozenset[str]
    expires_at: datetime
    token_id: str


class AccessTokens:
    """Issues and verifies access JWTs (EdDSA, ``kid`` in the header) with the gateway's key ring.

    The audience is the network as a whole (the issuer itself by default): agents that accept gateway
    tokens on their own APIs verify them with the published JWKS.
    """

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str = "a2a-gateway",
        audience: str | None = None,
        ttl_seconds: int = 900,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self.ring = ring
        self.issuer = issuer
        self.audience = audience or issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    async def issue(self, subject: str, scopes: Iterable[str]) -> tuple[str, datetime]:
        """A signed token for ``subject`` with ``scopes``, and the instant it expires."""
        scope_list = sorted(set(scopes))
        if any(not scope or scope.split() != [scope] for scope in scope_list):
            raise ValueError("scopes must be non-empty and contain no whitespace")
        now = int(self._clock().timestamp())
        expires = now + self.ttl_seconds
        claims: dict[str, Any] = {
            "sub": subject,
            "scope": " ".join(scope_list),
            "iat": now,
            "nbf": now,
            "exp": expires,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": secrets.token_urlsafe(16),
        }
        kid, key = await self.ring.signer()
        return jws.encode(claims, kid, key, jws.ACCESS_TOKEN_TYPE), datetime.fromtimestamp(expires, UTC)

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; Unauthenticated if it is forged, malformed, expired or not ours."""
        claims = await jws.decode(
            token,
            self.ring.verifier,
            typ=jws.ACCESS_TOKEN_TYPE,
            issuer=self.issuer,
            audience=self.audience,
            required=_REQUIRED_CLAIMS,
            now=self._clock(),
            invalid=INVALID_TOKEN,
        )
        return access_claims(claims, INVALID_TOKEN)


def access_claims(claims: dict[str, Any], invalid: str) -> AccessClaims:
    """The typed view of an access token's decoded claims (Unauthenticated when one is mistyped)."""
    subject, scope, token_id = claims.get("sub"), claims.get("scope"), claims.get("jti")
    if not (isinstance(subject, str) and subject and isinstance(scope, str) and isinstance(token_id, str)):
        raise Unauthenticated(invalid)
    return AccessClaims(
        subject=subject,
        scopes=frozenset(scope.split()),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        token_id=token_id,
    )


def new_secret_token(nbytes: int = 32) -> str:
    """A URL-safe random token carrying ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def keyed_hash(pepper: bytes, value: str) -> str:
    """Hex HMAC-SHA256 of ``value`` under ``pepper``: how high-entropy secrets are stored."""
    return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    """String equality in time independent of where the strings differ."""
    # compare_digest refuses non-ASCII str, so compare the UTF-8 bytes instead.
    return hmac.compare_digest(a.encode(), b.encode())
