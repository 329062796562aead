"""SQL store of the signing key ring, private keys encrypted at rest under a key derived from the pepper."""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import BigInteger, String, Text, and_, delete, exists, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from a2a_gateway.auth.ports import SigningKey
from a2a_gateway.storage.tables import signing_keys
from a2a_gateway.storage.timestamps import from_micros, micros

_HKDF_INFO: Final = b"a2a-gateway signing keys"
_NONCE_BYTES: Final = 12
UNDECRYPTABLE: Final = "signing keys cannot be decrypted: the key pepper changed (A2A_GATEWAY_KEY_PEPPER)"


def _cipher(pepper: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(pepper)
    return AESGCM(key)


class SqlSigningKeyStore:
    """Implements auth.ports.SigningKeyStore."""

    def __init__(self, engine: AsyncEngine, pepper: bytes) -> None:
        self._engine = engine
        self._aes = _cipher(pepper)

    async def all(self) -> list[SigningKey]:
        """Every key, newest first; RuntimeError when they were encrypted under another pepper."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(signing_keys).order_by(signing_keys.c.created_us.desc(), signing_keys.c.kid.desc())
                )
            ).all()
        return [
            SigningKey(
                kid=r.kid,
                algorithm=r.algorithm,
                private_pem=self._open(r.kid, r.private_key),
                public_jwk=orjson.loads(r.public_jwk),
                created_at=_at(r.created_us),
                retires_at=from_micros(r.retires_us),
            )
            for r in rows
        ]

    async def add_first(self, key: SigningKey) -> bool:
        """Insert ``key`` only into an empty table, in one statement guarded by the table lock."""
        values = self._row(key)
        guarded = select(
            literal(values["kid"], String),
            literal(values["algorithm"], String),
            literal(values["private_key"], Text),
            literal(values["public_jwk"], Text),
            literal(values["created_us"], BigInteger),
            literal(values["retires_us"], BigInteger),
        ).where(~exists(select(signing_keys.c.kid)))
        async with self._engine.begin() as conn:
            await _serialize_writers(conn)
            result = await conn.execute(signing_keys.insert().from_select(list(values), guarded))
        return bool(result.rowcount)

    async def rotate(self, new: SigningKey, retire_at: datetime, prune_before: datetime) -> None:
        """Retire the current keys, store ``new`` and prune long-retired keys, in one transaction."""
        async with self._engine.begin() as conn:
            await _serialize_writers(conn)
            await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.retires_us.is_(None))
                .values(retires_us=micros(retire_at))
            )
            await conn.execute(signing_keys.insert().values(**self._row(new)))
            await conn.execute(
                delete(signing_keys).where(
                    and_(
                        signing_keys.c.retires_us.is_not(None),
                        signing_keys.c.retires_us < micros(prune_before),
                    )
                )
            )

    def _row(self, key: SigningKey) -> dict[str, Any]:
        # Column order matters: add_first inserts these values positionally from a SELECT.
        return {
            "kid": key.kid,
            "algorithm": key.algorithm,
            "private_key": self._seal(key.kid, key.private_pem),
            "public_jwk": orjson.dumps(key.public_jwk).decode(),
            "created_us": micros(key.created_at),
            "retires_us": micros(key.retires_at) if key.retires_at else None,
        }

    def _seal(self, kid: str, pem: bytes) -> str:
        # The kid is the associated data: a ciphertext copied onto another row does not decrypt there.
        nonce = os.urandom(_NONCE_BYTES)
        return base64.b64encode(nonce + self._aes.encrypt(nonce, pem, kid.encode())).decode()

    def _open(self, kid: str, stored: str) -> bytes:
        sealed = base64.b64decode(stored)
        try:
            return self._aes.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise RuntimeError(UNDECRYPTABLE) from None


async def _serialize_writers(conn: AsyncConnection) -> None:
    """Make the key ring's writers take turns, so two processes starting or rotating at once cannot both
    see "no key" / "this is the current key" and both write.

    On PostgreSQL the writers lock the table in SHARE ROW EXCLUSIVE mode until commit: that mode conflicts
    with itself (and with any other writer) but not with plain reads, so ``all()`` never waits. Preferred
    over an advisory lock because it needs no lock number shared with whatever else uses the database, and
    over a bare INSERT ... WHERE NOT EXISTS because under READ COMMITTED two of those can both see the
    empty table. SQLite needs nothing: it has one writer at a time, and each write transaction here starts
    with its guarded statement, so the check and the write see the same state.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))


def _at(value: int) -> datetime:
    stamp = from_micros(value)
    assert stamp is not None
    return stamp
