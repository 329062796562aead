"""Caller assertions: the gateway's signed word to an agent about who a relayed call is made for.

Every call the gateway relays to an agent carries one, in the ``A2A-Caller-Assertion`` header: a JWT of
type ``a2a-caller+jwt`` signed with the gateway's key ring, for the agent's id as audience, valid for
seconds. docs/protocol.md lists its claims.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from a2a_gateway.agent.caller import Caller
from a2a_gateway.auth import jws
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.models import Principal
from a2a_gateway.errors import Unauthenticated
from a2a_gateway.protocol.base import utc_now

INVALID_ASSERTION: Final = "Invalid, expired or replayed caller assertion"
ANONYMOUS_SUBJECT: Final = "anonymous"
# A known user whose credential is not known any more (a task resumed after a restart).
UNKNOWN_KIND: Final = "unknown"
_REQUIRED: Final = ["sub", "iat", "jti", "key_kind"]
_MAX_CLAIM_CHARS: Final = 256


def caller_of(principal: Principal) -> Caller:
    """The caller an authenticated (or anonymous) principal makes its calls as."""
    if not principal.authenticated:
        return Caller()
    return Caller(
        user=principal.id,
        key_kind=principal.key_kind or "session",
        key_id=principal.key_id,
        spend_cap=principal.daily_spend_cap,
    )


class CallerAssertions:
    """Signs assertions for relayed calls (gateway side)."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        ttl_seconds: int = 60,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._ring = ring
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    async def issue(
        self,
        agent_id: str,
        caller: Caller,
        *,
        task: str | None = None,
        skill: str | None = None,
        price: int | None = None,
    ) -> str:
        """An assertion for one call to ``agent_id`` made for ``caller`` (a fresh ``jti`` every time)."""
        now = int(self._clock().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": agent_id,
            "sub": caller.user or ANONYMOUS_SUBJECT,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "key_kind": caller.key_kind or (UNKNOWN_KIND if caller.user else ANONYMOUS_SUBJECT),
            "key_id": caller.key_id,
            "task": task,
            "skill": skill,
            "price": price,
        }
        kid, key = await self._ring.signer()
        return jws.encode(claims, kid, key, jws.ASSERTION_TYPE)


async def verify_assertion(
    token: str, keys: jws.KeyLookup, *, issuer: str, audience: str, now: datetime
) -> tuple[Caller, str, int]:
    """The caller a valid assertion vouches for, with its ``jti`` and expiry (for the replay check).

    Unauthenticated (one message for every reason) when it is forged, expired, for another audience or
    from another issuer; replays are the verifier's to refuse, as only it knows what it has seen.
    """
    claims = await jws.decode(
        token,
        keys,
        typ=jws.ASSERTION_TYPE,
        issuer=issuer,
        audience=audience,
        required=_REQUIRED,
        now=now,
        invalid=INVALID_ASSERTION,
    )
    sub, kind, jti = claims["sub"], claims["key_kind"], claims["jti"]
    key_id, task, skill, price = (claims.get(name) for name in ("key_id", "task", "skill", "price"))
    texts = (sub, kind, jti)
    optional = (key_id, task, skill)
    if not (
        all(isinstance(v, str) and 0 < len(v) <= _MAX_CLAIM_CHARS for v in texts)
        and all(v is None or (isinstance(v, str) and len(v) <= _MAX_CLAIM_CHARS) for v in optional)
        and (price is None or (jws.is_int(price) and price >= 0))
    ):
        raise Unauthenticated(INVALID_ASSERTION)
    anonymous = sub == ANONYMOUS_SUBJECT and kind == ANONYMOUS_SUBJECT
    caller = Caller(
        user=None if anonymous else sub,
        via_gateway=True,
        task=task,
        skill=skill,
        key_kind=None if anonymous else kind,
        key_id=key_id,
        price=price,
    )
    return caller, jti, int(claims["exp"])
