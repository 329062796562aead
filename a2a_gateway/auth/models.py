"""Who is calling, and the records identity is made of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or anonymous) caller; ``id`` owns the resources it creates."""

    id: str
    kind: str  # "user" (JWT session or user key) or "anonymous"
    scopes: frozenset[str]
    key_id: str | None = None
    key_kind: str | None = None  # "user", "agent", "live" or "sandbox" when the caller used an API key
    agent_id: str | None = None  # set for a per-agent key (nxk_...): the agent it speaks for

    def allows(self, scope: str) -> bool:
        """Whether this caller holds ``scope`` (``*`` holds them all)."""
        return "*" in self.scopes or scope in self.scopes

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
