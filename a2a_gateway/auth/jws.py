"""Signed JWTs of the network: one encoder and one strict decoder shared by the gateway and the kit.

Two token types are told apart by the JOSE ``typ`` header, so neither can stand in for the other:
access tokens (``at+jwt``, RFC 9068) and caller assertions (``a2a-caller+jwt``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from a2a_gateway.errors import Unauthenticated

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, not a secret)
ASSERTION_TYPE: Final = "a2a-caller+jwt"
# Tokens are issued by one process and may be checked by another whose clock runs a little behind; only
# "not yet valid" gets this grace, expiry is exact.
CLOCK_SKEW_SECONDS: Final = 5
MAX_TOKEN_BYTES: Final = 8192
_ALGORITHMS: Final = ["EdDSA", "ES256"]  # an allowlist: "none" and HMAC never verify

VerifyingKey = Ed25519PublicKey | EllipticCurvePublicKey
KeyLookup = Callable[[str], Awaitable[VerifyingKey | None]]


def encode(claims: dict[str, Any], kid: str, key: Ed25519PrivateKey, typ: str) -> str:
    """A compact JWS of ``claims`` signed with ``key`` (EdDSA), naming ``kid`` and ``typ``."""
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


async def decode(
    token: str,
    keys: KeyLookup,
    *,
    typ: str,
    issuer: str,
    audience: str,
    required: Sequence[str],
    now: datetime,
    invalid: str,
) -> dict[str, Any]:
    """The claims of a token of type ``typ`` signed by a key ``keys`` knows, for ``audience``.

    Anything else (malformed, another type, unknown key id, bad signature, wrong issuer or audience,
    expired, not yet valid) raises Unauthenticated with the message ``invalid``, whatever the reason.
    """
    if not token or len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(invalid)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(invalid) from None
    kid, kind, algorithm = header.get("kid"), header.get("typ"), header.get("alg")
    if not isinstance(kid, str) or kind != typ or algorithm not in _ALGORITHMS:
        raise Unauthenticated(invalid)
    key = await keys(kid)
    if key is None:
        raise Unauthenticated(invalid)
    expected = "EdDSA" if isinstance(key, Ed25519PublicKey) else "ES256"
    if algorithm != expected:
        raise Unauthenticated(invalid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[expected],
            audience=audience,
            issuer=issuer,
            # PyJWT reads the wall clock for these; they are checked below against the injected clock.
            options={
                "require": [*required, "exp", "nbf", "iss", "aud"],
                "strict_aud": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        raise Unauthenticated(invalid) from None
    expires, not_before = claims["exp"], claims["nbf"]
    if not (is_int(expires) and is_int(not_before)):
        raise Unauthenticated(invalid)
    instant = now.timestamp()
    if instant >= expires or instant + CLOCK_SKEW_SECONDS < not_before:
        raise Unauthenticated(invalid)
    return claims


def is_int(value: object) -> bool:
    """An integer that is not a bool (JSON numbers in claims)."""
    return isinstance(value, int) and not isinstance(value, bool)
