"""Who may call a route of the engine's REST API, as in the real Nexgent.

Every route but ``/health*`` and the forwarded ``/auth/register|login|refresh`` needs a gateway
credential (401 ``UNAUTHENTICATED`` without one). A **login session** (an access token, caller
``key_kind`` ``"session"``) may do everything. A ``nex_`` **API key** (``key_kind`` ``"user"``) may
read everything and create or delete trading signals; every other write is 403 ``JWT_REQUIRED``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from a2a_gateway.agent import Caller
from agents_examples.trading.engine.errors import EngineError

SESSION_KIND: Final = "session"
JWT_REQUIRED_MESSAGE: Final = (
    "This route needs a login session (Authorization: Bearer <access token>), not an API key"
)


class Access(Enum):
    """A route's audience."""

    PUBLIC = "public"  # no credential needed
    READ = "read"  # any gateway credential
    SIGNALS = "signals"  # a session or an API key: signal writes
    SESSION = "session"  # a login session only: every other write


class Presented(Protocol):
    """A verified gateway credential (the kit's ``Credential``): who presented it."""

    @property
    def caller(self) -> Caller: ...


class CredentialSource(Protocol):
    """Where the API gets a request's credential: :class:`a2a_gateway.app.GatewayAuth` in production.
    ``credential`` raises :class:`a2a_gateway.errors.Unauthenticated` when there is none."""

    async def credential(self, conn: HTTPConnection) -> Presented: ...


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated call: its caller (``user`` is the gateway user id it acts for)."""

    caller: Caller
    user: str

    @property
    def session(self) -> bool:
        """Whether the credential is a login session (not an API key)."""
        return self.caller.key_kind == SESSION_KIND

    @property
    def budget_key(self) -> str:
        """The key a per-credential rate limit counts under: the user and the key or session."""
        return f"{self.user}:{self.caller.key_kind or '-'}:{self.caller.key_id or '-'}"


ANONYMOUS_CALL: Final = Call(Caller(), "")

Handler = Callable[[Request, Call], Awaitable[Response]]


def permit(access: Access, call: Call) -> None:
    """Refuse ``call`` (403 ``JWT_REQUIRED``) when its credential may not use a route of ``access``."""
    if access is Access.SESSION and not call.session:
        raise EngineError(403, "JWT_REQUIRED", JWT_REQUIRED_MESSAGE)


@dataclass(frozen=True, slots=True)
class Spec:
    """One route: its path (under ``/api/v1``), methods, handler and audience."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    access: Access
