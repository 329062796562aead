"""Short-lived HS256 access tokens and the small secret helpers the rest of auth builds on."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jwt

from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol.base import utc_now

_ALGORITHM: Final = "HS256"
_REQUIRED_CLAIMS: Final = ["sub", "scope", "iat", "nbf", "exp", "iss", "aud", "jti"]
# Tokens are issued by one process and may be checked by another whose clock runs a little behind; only
# "not yet valid" gets this grace, expiry is exact.
_CLOCK_SKEW_SECONDS: Final = 5
_MIN_SECRET_BYTES: Final = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash output
_INVALID: Final = "Invalid or expired access token"


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    subject: str
    scopes: frozenset[str]
    expires_at: datetime
    token_id: str


class AccessTokens:
    """Issues and verifies access JWTs signed with one shared secret."""

    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str = "a2a-gateway",
        audience: str = "a2a-gateway",
        ttl_seconds: int = 900,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"the access token secret must be at least {_MIN_SECRET_BYTES} bytes")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._clock = clock

    def issue(self, subject: str, scopes: Iterable[str]) -> tuple[str, datetime]:
        """A signed token for ``subject`` with ``scopes``, and the instant it expires."""
        scope_list = sorted(set(scopes))
        if any(not scope or scope.split() != [scope] for scope in scope_list):
            raise ValueError("scopes must be non-empty and contain no whitespace")
        now = int(self._clock().timestamp())
        expires = now + self._ttl
        claims: dict[str, Any] = {
            "sub": subject,
            "scope": " ".join(scope_list),
            "iat": now,
            "nbf": now,
            "exp": expires,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return token, datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; Unauthenticated if it is forged, malformed, expired or not ours."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],  # an allowlist: "none" and other algorithms never verify
                audience=self._audience,
                issuer=self._issuer,
                # PyJWT reads the wall clock for these; we check them below against the injected clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "strict_aud": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthenticated(_INVALID) from None
        subject, scope, token_id = claims["sub"], claims["scope"], claims["jti"]
        expires, not_before = claims["exp"], claims["nbf"]
        if not (
            isinstance(subject, str)
            and subject
            and isinstance(scope, str)
            and isinstance(token_id, str)
            and _is_int(expires)
            and _is_int(not_before)
        ):
            raise Unauthenticated(_INVALID)
        now = self._clock().timestamp()
        if now >= expires or now + _CLOCK_SKEW_SECONDS < not_before:
            raise Unauthenticated(_INVALID)
        return AccessClaims(
            subject=subject,
            scopes=frozenset(scope.split()),
            expires_at=datetime.fromtimestamp(expires, UTC),
            token_id=token_id,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
