"""The kit's cache of the gateway's JWKS: which keys it takes, when it fetches, what a failure keeps."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    SECP384R1,
    EllipticCurvePublicKey,
    generate_private_key,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import ECAlgorithm

from a2a_gateway.auth.jwks_keys import MAX_KEYS, JwksKeys, JwksUnavailable, parse_jwks
from a2a_gateway.auth.keyring import new_signing_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ed25519_jwk(kid: str | None = None) -> dict[str, Any]:
    jwk = dict(new_signing_key(NOW).public_jwk)
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def ec_jwk(kid: str, curve: Any = None) -> dict[str, Any]:
    private = generate_private_key(curve or SECP256R1())
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


class Source:
    """A JwksSource whose document (or failure) the test sets; counts fetches."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.document: dict[str, Any] = {"keys": list(keys)}
        self.failing = False
        self.calls = 0

    async def fetch(self) -> dict[str, Any]:
        self.calls += 1
        if self.failing:
            raise JwksUnavailable("the gateway is down")
        return self.document


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_ed25519_eddsa_and_p256_es256_public_signing_keys_are_taken() -> None:
    good_ed, good_ec = ed25519_jwk("ed"), ec_jwk("ec")
    private_ed = {**ed25519_jwk("private"), "d": base64.urlsafe_b64encode(b"x" * 32).rstrip(b"=").decode()}
    keys = parse_jwks(
        {
            "keys": [
                good_ed,
                good_ec,
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
                {**ed25519_jwk("wrong-alg"), "alg": "ES256"},
                {**ed25519_jwk("no-alg"), "alg": None},
                {**ed25519_jwk("for-encryption"), "use": "enc"},
                {**ec_jwk("p384", SECP384R1()), "crv": "P-384"},
                {**ec_jwk("ec-as-eddsa"), "alg": "EdDSA"},
                {"kty": "OKP", "crv": "Ed25519", "x": "short", "kid": "bad-x", "alg": "EdDSA"},
                private_ed,
                {**ed25519_jwk(), "kid": 7},
                "not a key",
            ]
        }
    )
    assert set(keys) == {"ed", "ec"}
    assert isinstance(keys["ed"], Ed25519PublicKey)
    assert isinstance(keys["ec"], EllipticCurvePublicKey)


def test_a_duplicated_key_id_verifies_nothing_and_the_set_is_capped() -> None:
    assert parse_jwks({"keys": [ed25519_jwk("same"), ed25519_jwk("same"), ed25519_jwk("other")]}).keys() == {
        "other"
    }
    many = parse_jwks({"keys": [ed25519_jwk(f"k{i}") for i in range(MAX_KEYS + 5)]})
    assert len(many) == MAX_KEYS


@pytest.mark.parametrize("document", [[], {"keys": "nope"}, {}, "text"])
def test_a_document_that_is_no_key_set_is_refused(document: Any) -> None:
    with pytest.raises(JwksUnavailable):
        parse_jwks(document)


async def test_keys_are_fetched_once_and_served_from_the_cache() -> None:
    jwk = ed25519_jwk("k1")
    source, mono = Source(jwk), Mono()
    keys = JwksKeys(source, monotonic=mono)
    first = await keys.lookup("k1")
    mono.now += 299
    assert await keys.lookup("k1") is first and first is not None
    assert source.calls == 1


async def test_an_unknown_kid_refetches_at_most_once_per_interval() -> None:
    source, mono = Source(ed25519_jwk("k1")), Mono()
    keys = JwksKeys(source, unknown_kid_seconds=10, monotonic=mono)
    assert await keys.lookup("k1") is not None
    for i in range(50):
        assert await keys.lookup(f"random-{i}") is None
    assert source.calls == 1  # the first fetch just happened: random kids cost nothing more

    mono.now += 10
    source.document["keys"].append(ed25519_jwk("k2"))  # a rotation at the gateway
    assert await keys.lookup("k2") is not None
    assert source.calls == 2
    mono.now += 5
    assert await keys.lookup("random") is None
    assert source.calls == 2


async def test_concurrent_lookups_of_an_unknown_kid_share_one_fetch() -> None:
    source, mono = Source(ed25519_jwk("k1")), Mono()
    keys = JwksKeys(source, monotonic=mono)
    found = await asyncio.gather(*(keys.lookup("k1") for _ in range(10)))
    assert all(k is not None for k in found)
    assert source.calls == 1


class SlowSource(Source):
    """A source whose fetch waits until the test opens the gate (a first fetch still in flight)."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        super().__init__(*keys)
        self.gate = asyncio.Event()

    async def fetch(self) -> dict[str, Any]:
        await self.gate.wait()
        return await super().fetch()


async def test_lookups_while_the_first_fetch_is_in_flight_wait_for_its_keys() -> None:
    source, mono = SlowSource(ed25519_jwk("k1")), Mono()
    keys = JwksKeys(source, monotonic=mono)
    lookups = [asyncio.ensure_future(keys.lookup("k1")) for _ in range(5)]
    await asyncio.sleep(0)  # every lookup has started; the first one's fetch waits at the gate
    source.gate.set()
    found = await asyncio.gather(*lookups)
    assert all(k is not None for k in found)
    assert source.calls == 1


async def test_keys_are_refetched_after_refresh_seconds_and_retired_keys_drop_out() -> None:
    source, mono = Source(ed25519_jwk("old")), Mono()
    keys = JwksKeys(source, refresh_seconds=300, monotonic=mono)
    assert await keys.lookup("old") is not None
    source.document = {"keys": [ed25519_jwk("new")]}
    mono.now += 300
    assert await keys.lookup("old") is None
    assert await keys.lookup("new") is not None


async def test_a_failed_fetch_keeps_the_keys_and_is_not_retried_at_once() -> None:
    source, mono = Source(ed25519_jwk("k1")), Mono()
    keys = JwksKeys(source, refresh_seconds=300, unknown_kid_seconds=10, monotonic=mono)
    assert await keys.lookup("k1") is not None
    source.failing = True
    mono.now += 300
    assert await keys.lookup("k1") is not None  # stale, the refetch failed: the cached key still verifies
    calls = source.calls
    for _ in range(20):
        assert await keys.lookup("k1") is not None
    assert source.calls == calls  # a gateway that is down is not asked on every call
    source.failing = False
    mono.now += 10
    await keys.lookup("k1")
    assert source.calls == calls + 1


async def test_nothing_verifies_while_the_gateway_was_never_reached() -> None:
    source, mono = Source(ed25519_jwk("k1")), Mono()
    source.failing = True
    keys = JwksKeys(source, monotonic=mono)
    assert await keys.lookup("k1") is None
    source.failing = False
    mono.now += 10
    assert await keys.lookup("k1") is not None
