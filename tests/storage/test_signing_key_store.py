"""The signing key store on SQLite and PostgreSQL: keys round-trip with their private half encrypted at
rest, the first key is stored once however many processes race for it, rotation retires and prunes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from a2a_gateway.auth.ports import SigningKey
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.signing_key_repository import SqlSigningKeyStore
from a2a_gateway.storage.tables import signing_keys

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PEPPER = b"p" * 32

Engines = Callable[[], AsyncEngine]


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[Engines]:
    """Factory of migrated engines on one database, one per simulated gateway process."""
    made: list[AsyncEngine] = []

    def make() -> AsyncEngine:
        engine = db.create_engine(database_url)
        made.append(engine)
        return engine

    await db.upgrade(make())
    yield make
    for engine in made:
        await engine.dispose()


def key(kid: str, created_at: datetime = T0, retires_at: datetime | None = None) -> SigningKey:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": f"x-{kid}", "kid": kid, "alg": "EdDSA", "use": "sig"}
    return SigningKey(
        kid=kid,
        algorithm="EdDSA",
        private_pem=pem,
        public_jwk=jwk,
        created_at=created_at,
        retires_at=retires_at,
    )


async def test_a_key_round_trips_and_its_private_half_is_encrypted_at_rest(engines: Engines) -> None:
    engine = engines()
    store = SqlSigningKeyStore(engine, PEPPER)
    first = key("k1")
    assert await store.add_first(first) is True
    assert await store.all() == [first]
    async with engine.connect() as conn:
        stored = (await conn.execute(select(signing_keys.c.private_key))).scalar_one()
    body = first.private_pem.split(b"\n")[1].decode()  # the base64 body of the PEM
    assert b"PRIVATE KEY" not in stored.encode() and body not in stored
    again = await SqlSigningKeyStore(engines(), PEPPER).all()
    assert again[0].private_pem == first.private_pem  # another process with the same pepper reads it


async def test_the_first_key_is_stored_only_once(engines: Engines) -> None:
    store = SqlSigningKeyStore(engines(), PEPPER)
    assert await store.add_first(key("k1")) is True
    assert await store.add_first(key("k2", T0 + timedelta(seconds=1))) is False
    assert [k.kid for k in await store.all()] == ["k1"]


async def test_processes_starting_at_once_store_exactly_one_first_key(engines: Engines) -> None:
    stores = [SqlSigningKeyStore(engines(), PEPPER) for _ in range(4)]
    won = await asyncio.gather(*(s.add_first(key(f"k{i}")) for i, s in enumerate(stores)))
    assert sorted(won) == [False, False, False, True]
    kept = await stores[0].all()
    assert [k.kid for k in kept] == [f"k{won.index(True)}"]


async def test_rotation_retires_the_current_key_and_prunes_only_long_retired_ones(engines: Engines) -> None:
    store = SqlSigningKeyStore(engines(), PEPPER)
    await store.add_first(key("old", T0))
    await store.rotate(key("mid", T0 + timedelta(hours=1)), T0 + timedelta(hours=2), T0)
    listed = await store.all()
    assert [(k.kid, k.retires_at) for k in listed] == [("mid", None), ("old", T0 + timedelta(hours=2))]

    newest = key("new", T0 + timedelta(hours=3))
    # "old" retired before the prune limit and goes; "mid" is retired from now on and stays.
    await store.rotate(newest, T0 + timedelta(hours=5), T0 + timedelta(hours=3))
    listed = await store.all()
    assert [(k.kid, k.retires_at) for k in listed] == [("new", None), ("mid", T0 + timedelta(hours=5))]
    assert listed[0] == newest


async def test_keys_are_listed_newest_first_with_the_kid_breaking_ties(engines: Engines) -> None:
    store = SqlSigningKeyStore(engines(), PEPPER)
    await store.add_first(key("a", T0))
    await store.rotate(key("c", T0 + timedelta(hours=1)), T0 + timedelta(days=1), T0)
    await store.rotate(key("b", T0 + timedelta(hours=1)), T0 + timedelta(days=1), T0)
    assert [k.kid for k in await store.all()] == ["c", "b", "a"]


async def test_another_pepper_fails_with_a_clear_error(engines: Engines) -> None:
    await SqlSigningKeyStore(engines(), PEPPER).add_first(key("k1"))
    with pytest.raises(RuntimeError, match="key pepper changed") as raised:
        await SqlSigningKeyStore(engines(), b"q" * 32).all()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(engines: Engines) -> None:
    engine = engines()
    store = SqlSigningKeyStore(engine, PEPPER)
    await store.add_first(key("k1", T0))
    await store.rotate(key("k2", T0 + timedelta(hours=1)), T0 + timedelta(days=1), T0)
    async with engine.begin() as conn:
        sealed = (
            await conn.execute(select(signing_keys.c.private_key).where(signing_keys.c.kid == "k1"))
        ).scalar_one()
        await conn.execute(update(signing_keys).where(signing_keys.c.kid == "k2").values(private_key=sealed))
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        await store.all()
