"""Who is calling, and the records identity is made of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from a2a_gateway.auth import scopes as scope_names
from a2a_gateway.errors import Forbidden, NotFound

AGENT_KEY_REFUSED = (
    "A per-agent key may only read and update its own agent, send its heartbeat "
    "and read the tasks routed to its agent"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or anonymous) caller; ``id`` owns the resources it creates.

    The one place that decides what a caller may do (decision 0013): a session or user key may do
    what its scopes allow; a per-agent key is confined to its own agent whatever its scopes say.
    """

    id: str
    kind: str  # "user" (JWT session or user key) or "anonymous"
    scopes: frozenset[str]
    key_id: str | None = None
    key_kind: str | None = None  # "user", "agent", "live" or "sandbox" when the caller used an API key
    agent_id: str | None = None  # set for a per-agent key (nxk_...): the agent it speaks for
    daily_spend_cap: int | None = None  # credits the caller's nex_ key may spend a UTC day (None: no cap)

    def allows(self, scope: str) -> bool:
        """Whether this caller holds ``scope`` (``*`` holds them all)."""
        return scope_names.ALL in self.scopes or scope in self.scopes

    @property
    def confined(self) -> bool:
        """True for a per-agent key, which acts for one agent only."""
        return self.agent_id is not None

    def speaks_for(self, agent_id: str) -> bool:
        """Whether this is the per-agent key of ``agent_id`` (its heartbeat needs no other scope)."""
        return self.agent_id is not None and self.agent_id == agent_id

    def may_address(self, agent_id: str) -> bool:
        """Whether the caller may see agent ``agent_id`` at all: a per-agent key sees its own only."""
        return self.agent_id is None or self.agent_id == agent_id

    def require(self, scope: str = "", *, agent: str | None = None, routed_tasks: bool = False) -> None:
        """Raise unless the caller may take this action; every route and JSON-RPC method asks here.

        ``scope`` is the scope the action needs ("" for none beyond being this caller). An action on one
        agent's record names it in ``agent``: a per-agent key gets NotFound for any agent but its own,
        so other ids cannot be probed. ``routed_tasks`` marks a read of tasks that a per-agent key
        answers with the tasks routed to its agent. Any other action is Forbidden for a per-agent key,
        so a route that says nothing is closed to it by default.
        """
        if self.agent_id is not None:
            if agent is not None:
                if agent != self.agent_id:
                    raise NotFound(f"Agent {agent[:64]} not found")
            elif not routed_tasks:
                raise Forbidden(AGENT_KEY_REFUSED, metadata={"keyKind": "agent"})
        if scope:
            scope_names.require(self.scopes, scope)

    @property
    def authenticated(self) -> bool:
        """False for the open gateway's anonymous caller."""
        return self.kind != "anonymous"


ANONYMOUS_ID = "anonymous"


@dataclass(slots=True)
class User:
    """A person who owns agents, keys, tasks and credits."""

    id: str
    email: str
    password_hash: str
    created_at: datetime


@dataclass(slots=True)
class ApiKeyRecord:
    """A stored API key: only a lookup prefix and a keyed hash, never the key itself."""

    id: str
    owner_id: str
    kind: str
    name: str
    lookup: str
    hashed: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    agent_id: str | None = None
    daily_spend_cap: int | None = None  # a nex_ user key's credits per UTC day on priced calls

    def usable(self, now: datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(slots=True)
class RefreshRecord:
    """A refresh token (stored hashed) in its rotation family."""

    token_hash: str
    family_id: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """What a login or refresh hands back."""

    user: User
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: the record and the plaintext, which is shown exactly once."""

    record: ApiKeyRecord
    plaintext: str
    secret: str | None = None  # the HMAC signing secret of an Agent Connect key, also shown once
