"""A kit agent's view of the gateway's identity: who a relayed call is for, and whose credential it is.

Two things are verified here. A caller assertion, which the gateway adds to every call it relays (for
this agent's id as audience, used once). And a credential presented to the agent directly: a gateway
access token, checked against the gateway's published keys (no shared secret), or a ``nex_`` user key,
which only the gateway can check, through its introspection route; those answers are cached briefly,
keyed by a hash of the key. Every refusal is Unauthenticated, and no message repeats the credential.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from a2a_gateway.agent.caller import Caller
from a2a_gateway.auth import jws
from a2a_gateway.auth.assertions import INVALID_ASSERTION, verify_assertion
from a2a_gateway.auth.keys import kind_of
from a2a_gateway.auth.signing import MemoryNonceStore, NonceStore
from a2a_gateway.auth.tokens import INVALID_TOKEN, access_claims
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol.base import utc_now

ASSERTION_NONCES: Final = "caller-assertion"  # the nonce namespace of assertion ids

NOT_REGISTERED: Final = (
    "This agent is not registered with the gateway yet and cannot verify caller assertions"
)
CANNOT_VERIFY: Final = "The gateway could not be reached to verify the credential; try again later"
NO_INTROSPECTION: Final = "This agent cannot verify nex_ keys (it has no per-agent key at the gateway)"
INVALID_KEY: Final = "Invalid, expired or revoked API key"
WRONG_KIND: Final = (
    "Only gateway access tokens and nex_ user keys are accepted here (not per-agent or Agent Connect keys)"
)
log = logging.getLogger(__name__)

_ACCESS_REQUIRED: Final = ["sub", "scope", "iat", "jti"]
_MAX_CLAIM_CHARS: Final = 256
_MAX_SCOPES: Final = 64


class IntrospectionUnavailable(Exception):
    """The gateway's introspection route could not answer (down, refused this agent, a bad answer)."""


class Introspector(Protocol):
    """Asks the gateway what a credential stands for (``POST /api/v1/auth/introspect``)."""

    async def introspect(self, token: str) -> dict[str, Any]:
        """The ``data`` of the gateway's answer; IntrospectionUnavailable when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class Credential:
    """A verified direct credential: who presented it, and the scopes it carries at the gateway."""

    caller: Caller
    scopes: frozenset[str]


class IntrospectionCache:
    """Introspection answers by a hash of the credential, for a short while; the oldest go first when full."""

    def __init__(
        self,
        *,
        active_seconds: float = 30.0,
        inactive_seconds: float = 5.0,
        max_entries: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.active_seconds = active_seconds
        self.inactive_seconds = inactive_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, Credential | None]] = OrderedDict()

    @staticmethod
    def key_of(token: str) -> str:
        """What an answer is stored under: never the credential itself."""
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, key: str) -> tuple[bool, Credential | None]:
        """(found, credential or None for an inactive one)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if self._monotonic() >= entry[0]:
            del self._entries[key]
            return False, None
        return True, entry[1]

    def put(self, key: str, credential: Credential | None, seconds: float) -> None:
        """Keep an answer for ``seconds`` (nothing for zero or less)."""
        if seconds <= 0:
            return
        self._entries[key] = (self._monotonic() + seconds, credential)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class GatewayIdentity:
    """Verifies caller assertions and direct gateway credentials for one kit agent.

    ``audience`` gives this agent's id at the gateway, which may be learnt only at registration: until
    it returns one, assertions are refused.
    """

    def __init__(
        self,
        keys: jws.KeyLookup,
        *,
        issuer: str,
        audience: Callable[[], str | None],
        introspector: Introspector | None = None,
        replays: NonceStore | None = None,
        cache: IntrospectionCache | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._keys = keys
        self._audience = audience
        self._introspector = introspector
        # The same store that refuses replayed signed requests: in memory, or shared through Redis.
        self._replays = replays if replays is not None else MemoryNonceStore()
        self._cache = cache if cache is not None else IntrospectionCache()
        self._clock = clock

    async def verify_assertion(self, token: str) -> Caller:
        """The caller a relayed call's assertion vouches for (``via_gateway``); each one is good once."""
        audience = self._audience()
        if not audience:
            raise Unauthenticated(NOT_REGISTERED)
        now = self._clock()
        caller, jti, expires = await verify_assertion(
            token, self._keys, issuer=self.issuer, audience=audience, now=now
        )
        # Remembered until it expires: a second use within its life is a replay.
        if not await self._replays.remember(ASSERTION_NONCES, jti, expires - now.timestamp()):
            raise Unauthenticated(INVALID_ASSERTION)
        return caller

    async def verify_credential(self, token: str) -> Credential:
        """Whose gateway credential ``token`` is: an access token (JWT) or a ``nex_`` user key."""
        kind = kind_of(token)
        if kind is None:
            return await self._access_token(token)
        if kind != "user":
            raise Unauthenticated(WRONG_KIND)
        return await self._user_key(token)

    async def _access_token(self, token: str) -> Credential:
        claims = await jws.decode(
            token,
            self._keys,
            typ=jws.ACCESS_TOKEN_TYPE,
            issuer=self.issuer,
            audience=self.issuer,
            required=_ACCESS_REQUIRED,
            now=self._clock(),
            invalid=INVALID_TOKEN,
        )
        verified = access_claims(claims, INVALID_TOKEN)
        if len(verified.subject) > _MAX_CLAIM_CHARS:
            raise Unauthenticated(INVALID_TOKEN)
        return Credential(Caller(user=verified.subject, key_kind="session"), verified.scopes)

    async def _user_key(self, token: str) -> Credential:
        key = IntrospectionCache.key_of(token)
        found, cached = self._cache.get(key)
        if found:
            if cached is None:
                raise Unauthenticated(INVALID_KEY)
            return cached
        if self._introspector is None:
            raise Unauthenticated(NO_INTROSPECTION)
        try:
            answer = await self._introspector.introspect(token)
            credential, seconds = self._read_answer(answer)
        except IntrospectionUnavailable as exc:
            log.warning("could not introspect a key at the gateway: %s", exc)
            raise Unauthenticated(CANNOT_VERIFY) from None
        self._cache.put(key, credential, seconds)
        if credential is None:
            raise Unauthenticated(INVALID_KEY)
        return credential

    def _read_answer(self, answer: dict[str, Any]) -> tuple[Credential | None, float]:
        """The credential an introspection answer describes (None when inactive) and how long to keep it."""
        active = answer.get("active") if isinstance(answer, dict) else None
        if active is False:
            return None, self._cache.inactive_seconds
        if active is not True:
            raise IntrospectionUnavailable("the introspection answer has no 'active' flag")
        sub, kind, scopes, key_id, expires = (
            answer.get(name) for name in ("sub", "kind", "scopes", "keyId", "exp")
        )
        if not (
            isinstance(sub, str)
            and 0 < len(sub) <= _MAX_CLAIM_CHARS
            and kind == "user"  # only nex_ keys are introspected
            and isinstance(scopes, list)
            and len(scopes) <= _MAX_SCOPES
            and all(isinstance(s, str) for s in scopes)
            and (key_id is None or (isinstance(key_id, str) and len(key_id) <= _MAX_CLAIM_CHARS))
            and (expires is None or isinstance(expires, str))
        ):
            raise IntrospectionUnavailable("the introspection answer is malformed")
        seconds = self._cache.active_seconds
        if expires is not None:
            try:
                left = (
                    datetime.fromisoformat(expires.replace("Z", "+00:00")) - self._clock()
                ).total_seconds()
            except (ValueError, TypeError):
                raise IntrospectionUnavailable("the introspection answer has a malformed 'exp'") from None
            if left <= 0:
                return None, self._cache.inactive_seconds
            seconds = min(seconds, left)  # a key about to expire is not trusted past its expiry
        caller = Caller(user=sub, key_kind="user", key_id=key_id)
        return Credential(caller, frozenset(scopes)), seconds
