"""The gateway's published verifying keys (its JWKS), cached by a kit agent and looked up by key id.

Keys are fetched on first use, again after ``refresh_seconds`` (a rotation retires keys there), and when
a token names a key id not in the cache (a new key that signs since the last fetch). Fetches of any kind
are at most one per ``unknown_kid_seconds``, so tokens with random key ids, or a gateway that is down,
cost one request per interval, not one per call. A failed fetch keeps the keys the cache had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from a2a_gateway.auth.jws import VerifyingKey

log = logging.getLogger(__name__)

MAX_KEYS: Final = 20  # a key set holds the current key and a few retiring ones; more are ignored
_MAX_KID_CHARS: Final = 128
# (kty, crv) -> the one algorithm each kind of key may verify with
_ACCEPTED: Final[dict[tuple[object, object], str]] = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}


class JwksUnavailable(Exception):
    """The key set could not be fetched or was not a key set (the message never holds key material)."""


class JwksSource(Protocol):
    """Where the gateway's JWK Set comes from (the kit's adapter GETs ``/.well-known/jwks.json``)."""

    async def fetch(self) -> dict[str, Any]:
        """The JWK Set document; JwksUnavailable when it cannot be had."""
        ...


def parse_jwks(document: object) -> dict[str, VerifyingKey]:
    """The usable public keys of a JWK Set by key id: Ed25519 (EdDSA) and P-256 (ES256) only.

    Keys of other types or algorithms, private keys, keys for encryption and duplicated key ids are left
    out; at most MAX_KEYS are kept. JwksUnavailable when the document is not a JWK Set at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("the JWKS document has no 'keys' list")
    keys: dict[str, VerifyingKey] = {}
    duplicated: set[str] = set()
    for entry in document["keys"]:
        if len(keys) >= MAX_KEYS:
            break
        parsed = _parse_key(entry)
        if parsed is None:
            continue
        kid, key = parsed
        if kid in keys or kid in duplicated:
            keys.pop(kid, None)  # an ambiguous key id verifies nothing
            duplicated.add(kid)
            continue
        keys[kid] = key
    return keys


def _parse_key(entry: object) -> tuple[str, VerifyingKey] | None:
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_CHARS:
        return None
    algorithm = _ACCEPTED.get((entry.get("kty"), entry.get("crv")))
    if algorithm is None or entry.get("alg") != algorithm or entry.get("use", "sig") != "sig":
        return None
    if "d" in entry:
        return None  # a private key has no business in a published set
    try:
        key = jwt.PyJWK(entry, algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if isinstance(key, Ed25519PublicKey):
        return kid, key
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return kid, key
    return None


class JwksKeys:
    """A ``jws.KeyLookup`` over the gateway's JWKS, cached and refreshed as the module describes."""

    def __init__(
        self,
        source: JwksSource,
        *,
        refresh_seconds: float = 300.0,
        unknown_kid_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh_seconds <= 0 or unknown_kid_seconds < 0:
            raise ValueError("refresh_seconds must be positive and unknown_kid_seconds not negative")
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._min_interval = unknown_kid_seconds
        self._monotonic = monotonic
        self._keys: dict[str, VerifyingKey] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._attempted_at: float | None = None  # the last fetch tried, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0  # fetches tried, for tests and metrics

    async def lookup(self, kid: str) -> VerifyingKey | None:
        """The verifying key named ``kid``, or None when the gateway does not publish it."""
        now = self._monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self._refresh_seconds
        if stale or kid not in self._keys:
            if self._may_fetch(now):
                await self._refresh(self._attempted_at)
            elif self._lock.locked():
                # A fetch is in flight (many callers at once right after start-up): wait for its keys.
                async with self._lock:
                    pass
        return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_interval

    async def _refresh(self, seen_attempt: float | None) -> None:
        async with self._lock:
            if self._attempted_at != seen_attempt:
                return  # another lookup fetched while this one waited: use its result
            self._attempted_at = self._monotonic()
            self.fetches += 1
            try:
                keys = parse_jwks(await self._source.fetch())
            except JwksUnavailable as exc:
                log.warning(
                    "could not fetch the gateway's JWKS, keeping %d cached keys: %s", len(self._keys), exc
                )
                return
            self._keys = keys
            self._fetched_at = self._attempted_at
