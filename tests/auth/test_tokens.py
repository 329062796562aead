"""Access tokens signed by the key ring: issue, verify, rotation, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a2a_gateway.auth import jws
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.tokens import (
    AccessTokens,
    constant_time_equal,
    keyed_hash,
    new_secret_token,
)
from a2a_gateway.errors import Unauthenticated
from tests.fakes import MemorySigningKeys

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ISSUER = "https://gateway.example"


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def ring(clock: Clock, store: MemorySigningKeys | None = None) -> KeyRing:
    return KeyRing(store or MemorySigningKeys(), clock=clock, monotonic=clock.monotonic)


def tokens_of(clock: Clock, **options: object) -> AccessTokens:
    return AccessTokens(ring(clock), issuer=ISSUER, clock=clock, **options)  # type: ignore[arg-type]


async def rejected(tokens: AccessTokens, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await tokens.verify(token)
    assert caught.value.message == "Invalid or expired access token"


async def test_round_trip_with_scopes_signed_with_eddsa_and_a_key_id() -> None:
    clock = Clock()
    tokens = tokens_of(clock)
    token, expires = await tokens.issue("user-1", ["tasks:write", "tasks:read", "tasks:read"])
    assert expires == T0 + timedelta(seconds=900)
    claims = await tokens.verify(token)
    assert claims.subject == "user-1"
    assert claims.scopes == frozenset({"tasks:read", "tasks:write"})
    assert claims.expires_at == expires and claims.token_id
    header = jwt.get_unverified_header(token)
    published = (await tokens.ring.jwks())["keys"]
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": published[0]["kid"]}
    key = jwt.PyJWK(published[0]).key
    payload = jwt.decode(token, key, algorithms=["EdDSA"], audience=ISSUER, options={"verify_exp": False})
    assert payload["scope"] == "tasks:read tasks:write" and payload["iss"] == ISSUER
    assert {"sub", "scope", "iat", "nbf", "exp", "iss", "aud", "jti"} <= payload.keys()


async def test_the_jwks_holds_public_halves_only() -> None:
    tokens = tokens_of(Clock())
    await tokens.issue("u", [])
    (published,) = (await tokens.ring.jwks())["keys"]
    assert set(published) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert published["kty"] == "OKP" and published["crv"] == "Ed25519" and published["use"] == "sig"


async def test_token_ids_are_unique_and_empty_scopes_allowed() -> None:
    tokens = tokens_of(Clock())
    first, _ = await tokens.issue("u", [])
    second, _ = await tokens.issue("u", [])
    assert (await tokens.verify(first)).token_id != (await tokens.verify(second)).token_id
    assert (await tokens.verify(first)).scopes == frozenset()


async def test_expiry_follows_the_injected_clock() -> None:
    clock = Clock()
    tokens = tokens_of(clock, ttl_seconds=60)
    token, _ = await tokens.issue("u", ["a"])
    clock.now = T0 + timedelta(seconds=59)
    await tokens.verify(token)
    clock.now = T0 + timedelta(seconds=60)
    await rejected(tokens, token)


async def test_not_yet_valid_is_refused_beyond_small_skew() -> None:
    clock = Clock()
    tokens = tokens_of(clock)
    token, _ = await tokens.issue("u", ["a"])
    clock.now = T0 - timedelta(seconds=2)
    await tokens.verify(token)  # a peer's clock slightly behind
    clock.now = T0 - timedelta(seconds=60)
    await rejected(tokens, token)


async def test_another_key_ring_audience_or_issuer_is_refused() -> None:
    clock = Clock()
    token, _ = await tokens_of(clock).issue("u", ["a"])
    await rejected(tokens_of(clock), token)  # same claims, another ring: unknown key id
    store = MemorySigningKeys()
    mine = AccessTokens(ring(clock, store), issuer=ISSUER, clock=clock)
    ours, _ = await mine.issue("u", ["a"])
    await rejected(AccessTokens(ring(clock, store), issuer=ISSUER, audience="other", clock=clock), ours)
    await rejected(AccessTokens(ring(clock, store), issuer="other", clock=clock), ours)
    assert (await AccessTokens(ring(clock, store), issuer=ISSUER, clock=clock).verify(ours)).subject == "u"


async def test_rotation_old_tokens_verify_until_retired_and_new_ones_use_the_new_key() -> None:
    clock = Clock()
    store = MemorySigningKeys()
    tokens = AccessTokens(ring(clock, store), issuer=ISSUER, ttl_seconds=900, clock=clock)
    old, _ = await tokens.issue("u", ["a"])
    old_kid = jwt.get_unverified_header(old)["kid"]
    # Another process (the CLI) rotates the shared store; this one sees it at its next reload.
    fresh = await ring(clock, store).rotate(timedelta(seconds=960))
    clock.now += timedelta(seconds=10)
    clock.mono += 31  # past the ring's reload interval
    new, _ = await tokens.issue("u", ["a"])
    assert jwt.get_unverified_header(new)["kid"] == fresh.kid != old_kid
    assert (await tokens.verify(old)).subject == "u"  # the session from before the switch keeps working
    assert (await tokens.verify(new)).subject == "u"
    assert {k["kid"] for k in (await tokens.ring.jwks())["keys"]} == {old_kid, fresh.kid}
    clock.now = T0 + timedelta(seconds=961)  # the old key is retired: out of the JWKS, verifies nothing
    assert [k["kid"] for k in (await tokens.ring.jwks())["keys"]] == [fresh.kid]
    await rejected(tokens, old)


async def test_a_process_meeting_an_unknown_key_id_reloads_at_once_but_not_for_every_request() -> None:
    clock = Clock()
    store = MemorySigningKeys()
    verifier = AccessTokens(ring(clock, store), issuer=ISSUER, clock=clock)
    await verifier.issue("u", [])  # loads the ring
    rotated = ring(clock, store)
    await rotated.rotate(timedelta(minutes=16))
    token, _ = await AccessTokens(rotated, issuer=ISSUER, clock=clock).issue("u", [])
    reads = store.reads
    assert (await verifier.verify(token)).subject == "u"  # reloaded on the unknown kid
    assert store.reads == reads + 1
    forged = jwt.encode(
        {"sub": "u"},
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": "nope", "typ": "at+jwt"},
    )
    await rejected(verifier, forged)
    assert store.reads == reads + 1  # a second unknown kid within the interval: no query
    clock.mono += 6
    for _ in range(3):
        await rejected(verifier, forged)
    assert store.reads == reads + 2  # one reload for the unknown kid, then none within the interval


def forge(claims: dict[str, object], **headers: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'at+jwt', **headers})}.{part(claims)}."


def valid_claims() -> dict[str, object]:
    now = int(T0.timestamp())
    return {
        "sub": "u",
        "scope": "admin",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "iss": ISSUER,
        "aud": ISSUER,
        "jti": "j",
    }


async def signed_like_ours(tokens: AccessTokens, claims: dict[str, object], typ: str = "at+jwt") -> str:
    kid, key = await tokens.ring.signer()
    return jws.encode(claims, kid, key, typ)


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
async def test_alg_none_hmac_confusion_and_tampering_rejected() -> None:
    tokens = tokens_of(Clock())
    token, _ = await tokens.issue("u", ["read"])
    kid = jwt.get_unverified_header(token)["kid"]
    await rejected(tokens, forge(valid_claims(), alg="none", kid=kid))
    # HMAC keyed with the public key (the classic algorithm confusion) never verifies.
    public_x = (await tokens.ring.jwks())["keys"][0]["x"].encode()
    hs = jwt.encode(valid_claims(), public_x, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"})
    await rejected(tokens, hs)
    header, _, signature = token.split(".")
    escalated = forge({**valid_claims(), "scope": "admin"}, alg="EdDSA", kid=kid).split(".")[1]
    await rejected(tokens, f"{header}.{escalated}.{signature}")
    for junk in ["", "a.b.c", "not a token", token + "x", "x" * 9000]:
        await rejected(tokens, junk)


async def test_a_caller_assertion_is_not_an_access_token() -> None:
    tokens = tokens_of(Clock())
    await rejected(tokens, await signed_like_ours(tokens, valid_claims(), typ="a2a-caller+jwt"))
    assert (await tokens.verify(await signed_like_ours(tokens, valid_claims()))).subject == "u"


@pytest.mark.parametrize("missing", ["sub", "exp", "nbf", "jti", "scope", "aud", "iss"])
async def test_claims_are_required(missing: str) -> None:
    tokens = tokens_of(Clock())
    claims = valid_claims()
    del claims[missing]
    await rejected(tokens, await signed_like_ours(tokens, claims))


async def test_wrongly_typed_claims_rejected() -> None:
    tokens = tokens_of(Clock())
    bads: list[dict[str, object]] = [
        {"exp": "soon"},
        {"exp": True},
        {"scope": ["a"]},
        {"sub": ""},
        {"aud": [ISSUER, "x"]},
    ]
    for bad in bads:
        await rejected(tokens, await signed_like_ours(tokens, {**valid_claims(), **bad}))


async def test_bad_scopes_and_ttl_refused() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        await tokens_of(Clock()).issue("u", ["two words"])
    with pytest.raises(ValueError, match="positive"):
        tokens_of(Clock(), ttl_seconds=0)


def test_helpers() -> None:
    assert len(new_secret_token()) == 43
    assert new_secret_token() != new_secret_token()
    assert keyed_hash(b"p", "v") != keyed_hash(b"q", "v")
    assert len(keyed_hash(b"p", "v")) == 64
    assert constant_time_equal("abc", "abc")
    assert not constant_time_equal("abc", "abd")
    assert not constant_time_equal("é", "e")  # non-ASCII does not raise
