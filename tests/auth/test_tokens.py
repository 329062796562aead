"""HS256 access tokens: issue, verify, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from a2a_gateway.auth.tokens import (
    AccessTokens,
    constant_time_equal,
    keyed_hash,
    new_secret_token,
)
from a2a_gateway.errors import Unauthenticated

SECRET = b"s" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def rejected(tokens: AccessTokens, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        tokens.verify(token)
    assert caught.value.message == "Invalid or expired access token"


def test_round_trip_with_scopes() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, clock=clock)
    token, expires = tokens.issue("user-1", ["tasks:write", "tasks:read", "tasks:read"])
    assert expires == T0 + timedelta(seconds=900)
    claims = tokens.verify(token)
    assert claims.subject == "user-1"
    assert claims.scopes == frozenset({"tasks:read", "tasks:write"})
    assert claims.expires_at == expires
    assert claims.token_id
    payload = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="a2a-gateway", options={"verify_exp": False}
    )
    assert payload["scope"] == "tasks:read tasks:write"
    assert {"sub", "scope", "iat", "nbf", "exp", "iss", "aud", "jti"} <= payload.keys()


def test_token_ids_are_unique_and_empty_scopes_allowed() -> None:
    tokens = AccessTokens(SECRET, clock=Clock())
    first, _ = tokens.issue("u", [])
    second, _ = tokens.issue("u", [])
    assert tokens.verify(first).token_id != tokens.verify(second).token_id
    assert tokens.verify(first).scopes == frozenset()


def test_expiry_follows_the_injected_clock() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, ttl_seconds=60, clock=clock)
    token, _ = tokens.issue("u", ["a"])
    clock.now = T0 + timedelta(seconds=59)
    tokens.verify(token)
    clock.now = T0 + timedelta(seconds=60)
    rejected(tokens, token)


def test_not_yet_valid_is_refused_beyond_small_skew() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, clock=clock)
    token, _ = tokens.issue("u", ["a"])
    clock.now = T0 - timedelta(seconds=2)
    tokens.verify(token)  # a peer's clock slightly behind
    clock.now = T0 - timedelta(seconds=60)
    rejected(tokens, token)


def test_wrong_secret_audience_or_issuer() -> None:
    clock = Clock()
    token, _ = AccessTokens(SECRET, clock=clock).issue("u", ["a"])
    rejected(AccessTokens(b"x" * 32, clock=clock), token)
    rejected(AccessTokens(SECRET, audience="other", clock=clock), token)
    rejected(AccessTokens(SECRET, issuer="other", clock=clock), token)


def forge(claims: dict[str, object], **headers: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', **headers})}.{part(claims)}."


def valid_claims() -> dict[str, object]:
    now = int(T0.timestamp())
    return {
        "sub": "u",
        "scope": "admin",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "iss": "a2a-gateway",
        "aud": "a2a-gateway",
        "jti": "j",
    }


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # the forger's HS512 with our key
def test_alg_none_hs512_and_tampering_rejected() -> None:
    tokens = AccessTokens(SECRET, clock=Clock())
    rejected(tokens, forge(valid_claims(), alg="none"))
    rejected(tokens, jwt.encode(valid_claims(), SECRET, algorithm="HS512"))
    token, _ = tokens.issue("u", ["read"])
    header, _, signature = token.split(".")
    escalated = forge({**valid_claims(), "scope": "admin"}, alg="HS256").split(".")[1]
    rejected(tokens, f"{header}.{escalated}.{signature}")
    for junk in ["", "a.b.c", "not a token", token + "x"]:
        rejected(tokens, junk)


@pytest.mark.parametrize("missing", ["sub", "exp", "nbf", "jti", "scope", "aud", "iss"])
def test_claims_are_required(missing: str) -> None:
    claims = valid_claims()
    del claims[missing]
    rejected(AccessTokens(SECRET, clock=Clock()), jwt.encode(claims, SECRET, algorithm="HS256"))


def test_wrongly_typed_claims_rejected() -> None:
    tokens = AccessTokens(SECRET, clock=Clock())
    bads: list[dict[str, object]] = [
        {"exp": "soon"},
        {"exp": True},
        {"scope": ["a"]},
        {"sub": ""},
        {"aud": ["a2a-gateway", "x"]},
    ]
    for bad in bads:
        rejected(tokens, jwt.encode({**valid_claims(), **bad}, SECRET, algorithm="HS256"))


def test_short_secret_and_bad_scopes_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AccessTokens(b"short")
    with pytest.raises(ValueError, match="whitespace"):
        AccessTokens(SECRET).issue("u", ["two words"])


def test_helpers() -> None:
    assert len(new_secret_token()) == 43
    assert new_secret_token() != new_secret_token()
    assert keyed_hash(b"p", "v") != keyed_hash(b"q", "v")
    assert len(keyed_hash(b"p", "v")) == 64
    assert constant_time_equal("abc", "abc")
    assert not constant_time_equal("abc", "abd")
    assert not constant_time_equal("é", "e")  # non-ASCII does not raise
