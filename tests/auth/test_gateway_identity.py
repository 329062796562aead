"""A kit agent verifies the gateway's caller assertions and the gateway credentials presented to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a2a_gateway.agent.caller import Caller
from a2a_gateway.auth import jws
from a2a_gateway.auth.assertions import INVALID_ASSERTION, CallerAssertions
from a2a_gateway.auth.gateway_identity import (
    CANNOT_VERIFY,
    NO_INTROSPECTION,
    NOT_REGISTERED,
    WRONG_KIND,
    GatewayIdentity,
    IntrospectionCache,
    IntrospectionUnavailable,
)
from a2a_gateway.auth.jwks_keys import JwksKeys
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.keys import generate_key
from a2a_gateway.auth.signing import MemoryNonceStore, NonceStore
from a2a_gateway.auth.tokens import INVALID_TOKEN, AccessTokens
from a2a_gateway.errors import Unauthenticated
from tests.fakes import MemorySigningKeys

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ISSUER = "https://gateway.example"
AGENT = "agent-1"
PEPPER = b"p" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class Gateway:
    """The gateway's side: a key ring, its assertions and access tokens, its published JWKS."""

    def __init__(self, clock: Clock, issuer: str = ISSUER) -> None:
        self.ring = KeyRing(MemorySigningKeys(), clock=clock, monotonic=clock.monotonic)
        self.assertions = CallerAssertions(self.ring, issuer=issuer, clock=clock)
        self.tokens = AccessTokens(self.ring, issuer=issuer, clock=clock)

    async def fetch(self) -> dict[str, Any]:
        return await self.ring.jwks()


class Introspector:
    """A fake introspection route: answers by key, counts calls."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.down = False

    async def introspect(self, token: str) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise IntrospectionUnavailable("down")
        return self.answers.get(token, {"active": False})


def identity_for(
    gateway: Gateway,
    clock: Clock,
    *,
    audience: str | None = AGENT,
    introspector: Introspector | None = None,
    replays: NonceStore | None = None,
) -> GatewayIdentity:
    keys = JwksKeys(gateway, monotonic=clock.monotonic)
    return GatewayIdentity(
        keys.lookup,
        issuer=ISSUER,
        audience=lambda: audience,
        introspector=introspector,
        replays=replays or MemoryNonceStore(clock=clock.monotonic),
        cache=IntrospectionCache(monotonic=clock.monotonic),
        clock=clock,
    )


async def refused(call: Any, message: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await call
    assert caught.value.message == message


USER = Caller(user="user-7", key_kind="user", key_id="key-3")


async def test_an_assertion_gives_the_user_task_skill_and_price() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    token = await gateway.assertions.issue(AGENT, USER, task="task-9", skill="echo", price=3)
    caller = await identity_for(gateway, clock).verify_assertion(token)
    assert caller == Caller(
        user="user-7", via_gateway=True, task="task-9", skill="echo", key_kind="user", key_id="key-3", price=3
    )


async def test_an_anonymous_callers_assertion_is_anonymous_but_via_the_gateway() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    caller = await identity_for(gateway, clock).verify_assertion(
        await gateway.assertions.issue(AGENT, Caller())
    )
    assert caller.anonymous and caller.via_gateway


async def test_a_forged_assertion_is_refused() -> None:
    clock = Clock()
    gateway, forger = Gateway(clock), Gateway(clock)
    await gateway.ring.load()
    forged = await forger.assertions.issue(AGENT, USER)
    await refused(identity_for(gateway, clock).verify_assertion(forged), INVALID_ASSERTION)


async def test_an_assertion_re_signed_with_another_key_under_the_gateways_key_id_is_refused() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    genuine = await gateway.assertions.issue(AGENT, USER)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    forged = jws.encode({**claims, "sub": "admin"}, kid, Ed25519PrivateKey.generate(), jws.ASSERTION_TYPE)
    await refused(identity_for(gateway, clock).verify_assertion(forged), INVALID_ASSERTION)


async def test_an_expired_assertion_is_refused() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    identity = identity_for(gateway, clock)
    token = await gateway.assertions.issue(AGENT, USER)
    clock.advance(gateway.assertions.ttl_seconds)
    await refused(identity.verify_assertion(token), INVALID_ASSERTION)


async def test_a_replayed_assertion_is_refused() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    identity = identity_for(gateway, clock)
    token = await gateway.assertions.issue(AGENT, USER)
    assert (await identity.verify_assertion(token)).user == "user-7"
    await refused(identity.verify_assertion(token), INVALID_ASSERTION)


async def test_an_assertion_for_another_agent_or_from_another_issuer_is_refused() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    identity = identity_for(gateway, clock)
    await refused(
        identity.verify_assertion(await gateway.assertions.issue("agent-2", USER)), INVALID_ASSERTION
    )
    other = Gateway(clock, issuer="https://other.example")
    other.ring = gateway.ring
    other.assertions = CallerAssertions(gateway.ring, issuer="https://other.example", clock=clock)
    await refused(identity.verify_assertion(await other.assertions.issue(AGENT, USER)), INVALID_ASSERTION)


async def test_an_access_token_is_no_assertion_and_an_assertion_no_access_token() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    identity = identity_for(gateway, clock)
    token, _ = await gateway.tokens.issue("user-7", ["tasks:write"])
    await refused(identity.verify_assertion(token), INVALID_ASSERTION)
    assertion = await gateway.assertions.issue(ISSUER, USER)  # even one made out to the issuer itself
    await refused(identity.verify_credential(assertion), INVALID_TOKEN)


async def test_assertions_are_refused_until_the_agent_knows_its_id() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    token = await gateway.assertions.issue(AGENT, USER)
    await refused(identity_for(gateway, clock, audience=None).verify_assertion(token), NOT_REGISTERED)


async def test_a_gateway_access_token_is_verified_with_the_jwks() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    token, _ = await gateway.tokens.issue("user-7", ["tasks:read", "tasks:write"])
    credential = await identity_for(gateway, clock).verify_credential(token)
    assert credential.caller == Caller(user="user-7", via_gateway=False, key_kind="session")
    assert credential.scopes == {"tasks:read", "tasks:write"}


async def test_an_access_token_signed_with_another_key_or_expired_is_refused() -> None:
    clock = Clock()
    gateway, forger = Gateway(clock), Gateway(clock)
    await gateway.ring.load()
    identity = identity_for(gateway, clock)
    forged, _ = await forger.tokens.issue("user-7", ["tasks:write"])
    await refused(identity.verify_credential(forged), INVALID_TOKEN)
    token, _ = await gateway.tokens.issue("user-7", ["tasks:write"])
    clock.advance(gateway.tokens.ttl_seconds)
    await refused(identity.verify_credential(token), INVALID_TOKEN)


async def test_a_rotated_key_keeps_verifying_and_the_new_one_is_fetched() -> None:
    clock = Clock()
    gateway = Gateway(clock)
    identity = identity_for(gateway, clock)
    old, _ = await gateway.tokens.issue("user-7", ["tasks:write"])
    assert (await identity.verify_credential(old)).caller.user == "user-7"
    await gateway.ring.rotate(timedelta(hours=1))
    clock.advance(10)  # past the unknown-key-id interval since the first fetch
    new, _ = await gateway.tokens.issue("user-8", ["tasks:write"])
    assert (await identity.verify_credential(new)).caller.user == "user-8"
    assert (await identity.verify_credential(old)).caller.user == "user-7"


def user_key() -> str:
    return generate_key("user", PEPPER).plaintext


ACTIVE = {
    "active": True,
    "sub": "user-7",
    "kind": "user",
    "scopes": ["tasks:write"],
    "keyId": "k1",
    "exp": None,
}


async def test_a_user_key_is_introspected_and_the_answer_cached() -> None:
    clock = Clock()
    introspector = Introspector()
    key = user_key()
    introspector.answers[key] = ACTIVE
    identity = identity_for(Gateway(clock), clock, introspector=introspector)
    credential = await identity.verify_credential(key)
    assert credential.caller == Caller(user="user-7", key_kind="user", key_id="k1")
    assert credential.scopes == {"tasks:write"}
    clock.advance(29)
    await identity.verify_credential(key)
    assert introspector.calls == 1
    clock.advance(1)
    await identity.verify_credential(key)
    assert introspector.calls == 2


async def test_an_inactive_answer_is_cached_for_a_shorter_while() -> None:
    clock = Clock()
    introspector = Introspector()
    key = user_key()
    identity = identity_for(Gateway(clock), clock, introspector=introspector)
    for _ in range(3):
        await refused(identity.verify_credential(key), "Invalid, expired or revoked API key")
    assert introspector.calls == 1
    clock.advance(5)
    introspector.answers[key] = ACTIVE  # the key was created meanwhile
    assert (await identity.verify_credential(key)).caller.user == "user-7"
    assert introspector.calls == 2


async def test_an_answer_is_not_trusted_past_the_keys_expiry() -> None:
    clock = Clock()
    introspector = Introspector()
    key = user_key()
    introspector.answers[key] = {**ACTIVE, "exp": (T0 + timedelta(seconds=10)).isoformat()}
    identity = identity_for(Gateway(clock), clock, introspector=introspector)
    await identity.verify_credential(key)
    clock.advance(10)
    introspector.answers[key] = {"active": False}
    await refused(identity.verify_credential(key), "Invalid, expired or revoked API key")
    assert introspector.calls == 2


async def test_the_cache_holds_hashes_not_keys_and_stays_bounded() -> None:
    clock = Clock()
    introspector = Introspector()
    cache = IntrospectionCache(max_entries=2, monotonic=clock.monotonic)
    keys = [user_key() for _ in range(3)]
    for key in keys:
        introspector.answers[key] = ACTIVE
    identity = GatewayIdentity(
        JwksKeys(Gateway(clock)).lookup,
        issuer=ISSUER,
        audience=lambda: AGENT,
        introspector=introspector,
        cache=cache,
    )
    for key in keys:
        await identity.verify_credential(key)
    assert len(cache) == 2
    assert all(key not in repr(cache._entries) for key in keys)
    await identity.verify_credential(keys[0])  # the oldest was dropped
    assert introspector.calls == 4


async def test_an_unreachable_introspection_route_means_cannot_verify_and_is_not_cached() -> None:
    clock = Clock()
    introspector = Introspector()
    introspector.down = True
    key = user_key()
    identity = identity_for(Gateway(clock), clock, introspector=introspector)
    await refused(identity.verify_credential(key), CANNOT_VERIFY)
    introspector.down = False
    introspector.answers[key] = ACTIVE
    assert (await identity.verify_credential(key)).caller.user == "user-7"


@pytest.mark.parametrize(
    "answer",
    [
        {"active": "yes"},
        {"active": True},
        {**ACTIVE, "kind": "session"},
        {**ACTIVE, "sub": ""},
        {**ACTIVE, "scopes": "tasks:write"},
        {**ACTIVE, "exp": "not a time"},
    ],
)
async def test_a_malformed_answer_means_cannot_verify(answer: dict[str, Any]) -> None:
    clock = Clock()
    introspector = Introspector()
    key = user_key()
    introspector.answers[key] = answer
    await refused(
        identity_for(Gateway(clock), clock, introspector=introspector).verify_credential(key), CANNOT_VERIFY
    )


async def test_without_an_introspector_user_keys_cannot_be_verified() -> None:
    clock = Clock()
    await refused(identity_for(Gateway(clock), clock).verify_credential(user_key()), NO_INTROSPECTION)


@pytest.mark.parametrize("kind", ["agent", "live", "sandbox"])
async def test_other_key_kinds_are_refused_without_asking_the_gateway(kind: str) -> None:
    clock = Clock()
    introspector = Introspector()
    key = generate_key(kind, PEPPER).plaintext
    identity = identity_for(Gateway(clock), clock, introspector=introspector)
    with pytest.raises(Unauthenticated) as caught:
        await identity.verify_credential(key)
    assert caught.value.message == WRONG_KIND and key not in caught.value.message
    assert introspector.calls == 0
