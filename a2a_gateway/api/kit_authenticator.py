"""Who is calling a kit agent: a call relayed by the gateway (its caller assertion), or a direct caller.

A relayed call carries the gateway's signed assertion in ``A2A-Caller-Assertion``; one that is present
but does not verify is always refused (an agent configured with no gateway_url ignores it). A direct
call may present a gateway credential (an access token as ``Authorization: Bearer``, or a ``nex_`` user
key as ``X-API-Key`` or Bearer), which is verified with the gateway and becomes the caller. An agent
that requires the gateway takes direct calls only from its owner and the users it lists; otherwise
direct calls may also be anonymous, as the open gateway's are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from starlette.requests import Request

from a2a_gateway.agent.caller import ANONYMOUS, ASSERTION_HEADER, Caller
from a2a_gateway.api.http import raw_header
from a2a_gateway.api.principal import OPEN_SCOPES, Authenticator, presented_credential
from a2a_gateway.api.rate_limiter import RateLimiter
from a2a_gateway.auth import scopes as scope_names
from a2a_gateway.auth.gateway_identity import Credential, GatewayIdentity
from a2a_gateway.auth.models import ANONYMOUS_ID, Principal
from a2a_gateway.auth.service import AuthService
from a2a_gateway.errors import Unauthenticated

THROUGH_GATEWAY: Final = (
    "This agent takes calls only through the gateway; only its owner and the users it lists may call it "
    "directly, with a gateway access token or nex_ key"
)
NO_GATEWAY: Final = "This agent has no gateway configured, so it cannot verify gateway credentials"
CONNECT_REFUSED: Final = "Agent Connect keys are for the gateway; a kit agent does not take them"
_ASSERTION: Final = ASSERTION_HEADER.lower().encode()
KIT_SCOPES: Final = OPEN_SCOPES  # what any caller may do with a kit agent: send and read its own tasks


def direct_principal(credential: Credential) -> Principal:
    """The principal of a verified direct credential: its user, with the kit scopes its scopes allow."""
    held = credential.scopes
    allowed = KIT_SCOPES if scope_names.ALL in held else KIT_SCOPES & held
    caller = credential.caller
    key_kind = "user" if caller.key_kind == "user" else None  # None: a session's access token
    return Principal(
        id=caller.user or ANONYMOUS_ID, kind="user", scopes=allowed, key_id=caller.key_id, key_kind=key_kind
    )


def relayed_principal(caller: Caller) -> Principal:
    """The principal of a relayed call: the user the gateway vouches for (or its anonymous caller)."""
    if caller.user is None:
        return Principal(id=ANONYMOUS_ID, kind="anonymous", scopes=KIT_SCOPES)
    return Principal(id=caller.user, kind="user", scopes=KIT_SCOPES, key_id=caller.key_id)


class KitAuthenticator(Authenticator):
    """The Authenticator of a kit agent's endpoints: the gateway vouches for callers, as described above.

    ``owner`` gives the owner's user id at the gateway once registration has learnt it.
    """

    def __init__(
        self,
        auth: AuthService,
        open_gateway: bool,
        limiter: RateLimiter,
        max_body_bytes: int,
        *,
        identity: GatewayIdentity | None,
        require_gateway: bool,
        owner: Callable[[], str | None],
        direct_callers: Iterable[str] = (),
    ) -> None:
        super().__init__(auth, open_gateway, limiter, max_body_bytes)
        self.identity = identity
        self.require_gateway = require_gateway
        self._owner = owner
        self._direct = frozenset(direct_callers)
        self._anonymous_principal = Principal(id=ANONYMOUS_ID, kind="anonymous", scopes=KIT_SCOPES)

    async def identify(self, conn: Request) -> tuple[Principal, Caller]:
        """The principal tasks are owned by, and the caller skills see."""
        assertion = raw_header(conn, _ASSERTION)
        # An agent that knows no gateway cannot check an assertion: the call counts as a direct one, with
        # no more trust than it had before assertions existed (a registration by card URL alone).
        if assertion is not None and self.identity is not None:
            caller = await self.identity.verify_assertion(assertion.strip())
            return relayed_principal(caller), caller
        if raw_header(conn, b"x-nx-key"):
            raise Unauthenticated(CONNECT_REFUSED)
        token = presented_credential(conn)
        if token is None:
            if self.require_gateway:
                raise Unauthenticated(THROUGH_GATEWAY)
            if not self.open_gateway:
                raise Unauthenticated()
            return self._anonymous_principal, ANONYMOUS
        credential = await self._identity().verify_credential(token)
        if self.require_gateway and not self.may_call_directly(credential.caller.user):
            raise Unauthenticated(THROUGH_GATEWAY)
        return direct_principal(credential), credential.caller

    async def resolve(self, conn: Request, *, required: bool = False) -> Principal:
        """The principal ``identify`` finds; with ``required``, an anonymous one is refused."""
        principal, _ = await self.identify(conn)
        if required and not principal.authenticated:
            raise Unauthenticated()
        return principal

    def may_call_directly(self, user: str | None) -> bool:
        """Whether ``user`` may skip the gateway: the agent's owner, or a user listed in direct_callers."""
        if user is None:
            return False
        owner = self._owner()
        return (owner is not None and user == owner) or user in self._direct

    def _identity(self) -> GatewayIdentity:
        if self.identity is None:
            raise Unauthenticated(NO_GATEWAY)
        return self.identity
