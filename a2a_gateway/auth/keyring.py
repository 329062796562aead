"""The gateway's key ring: Ed25519 keys that sign access tokens and caller assertions, with rotation.

The newest key without a retirement time signs. A rotation adds a new key and gives the previous ones a
retirement time far enough ahead that every token they signed has expired by then; until that time they
still verify and stay published in the JWKS. Every process sharing the store picks a rotation up within
``reload_seconds`` (and at once when it meets a key id it does not know yet).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from a2a_gateway.auth.ports import SigningKey, SigningKeyStore
from a2a_gateway.protocol.base import utc_now

ALGORITHM: Final = "EdDSA"
# A verifier meeting an unknown key id reloads the store at most this often: random key ids sent by an
# attacker cost one query per interval, not one per request.
_UNKNOWN_KID_RELOAD_SECONDS: Final = 5.0


def new_signing_key(now: datetime) -> SigningKey:
    """A fresh Ed25519 key with a random key id."""
    private = Ed25519PrivateKey.generate()
    kid = secrets.token_urlsafe(12)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk, created_at=now)


class KeyRing:
    """Signs with the current key and verifies with any published one; the store is the source of truth."""

    def __init__(
        self,
        store: SigningKeyStore,
        *,
        reload_seconds: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._reload_seconds = reload_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._keys: list[SigningKey] = []
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        self._loaded_at: float | None = None
        self._unknown_reload_at = -_UNKNOWN_KID_RELOAD_SECONDS

    async def load(self) -> None:
        """Read the store, creating the first key when it is empty (one process wins that race)."""
        keys = await self._store.all()
        if not keys:
            await self._store.add_first(new_signing_key(self._clock()))
            keys = await self._store.all()
        self._use(keys)

    def _use(self, keys: list[SigningKey]) -> None:
        private: dict[str, Ed25519PrivateKey] = {}
        public: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            loaded = self._private.get(key.kid)
            if loaded is None:
                parsed = serialization.load_pem_private_key(key.private_pem, password=None)
                if not isinstance(parsed, Ed25519PrivateKey):
                    raise RuntimeError(f"signing key {key.kid} is not an Ed25519 key")
                loaded = parsed
            private[key.kid] = loaded
            public[key.kid] = loaded.public_key()
        self._keys, self._private, self._public = keys, private, public
        self._loaded_at = self._monotonic()

    async def _fresh(self) -> None:
        if self._loaded_at is None or self._monotonic() - self._loaded_at >= self._reload_seconds:
            await self.load()

    async def signer(self) -> tuple[str, Ed25519PrivateKey]:
        """The key id and private key that sign now."""
        await self._fresh()
        current = self._current()
        return current.kid, self._private[current.kid]

    def _current(self) -> SigningKey:
        for key in self._keys:  # newest first
            if key.retires_at is None:
                return key
        raise RuntimeError("the key ring has no current signing key")

    async def verifier(self, kid: str) -> Ed25519PublicKey | None:
        """The public key of ``kid`` while it is published; None for an unknown or retired key id."""
        await self._fresh()
        if kid not in self._public:
            now = self._monotonic()
            if now - self._unknown_reload_at < _UNKNOWN_KID_RELOAD_SECONDS:
                return None
            self._unknown_reload_at = now
            await self.load()  # a rotation made by another process
        key = next((k for k in self._keys if k.kid == kid), None)
        if key is None or (key.retires_at is not None and key.retires_at <= self._clock()):
            return None
        return self._public[kid]

    async def jwks(self) -> dict[str, Any]:
        """The published public keys as a JWK Set (current first)."""
        await self._fresh()
        now = self._clock()
        live = [k for k in self._keys if k.retires_at is None or k.retires_at > now]
        return {"keys": [dict(k.public_jwk) for k in live]}

    async def rotate(self, grace: timedelta) -> SigningKey:
        """Make a new key the signer; the current ones keep verifying for ``grace`` (then are pruned)."""
        now = self._clock()
        fresh = new_signing_key(now)
        await self._store.rotate(fresh, now + grace, prune_before=now)
        await self.load()
        return fresh

    async def keys(self) -> list[SigningKey]:
        """Every stored key, newest first (for the CLI's listing)."""
        await self.load()
        return list(self._keys)
