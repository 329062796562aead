"""Ports of the identity service; storage adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from a2a_gateway.auth.models import ApiKeyRecord, RefreshRecord, User


class UserRepository(Protocol):
    """Users by id and by (normalized) email."""

    async def add(self, user: User) -> bool:
        """Store a new user; False when the email is taken."""
        ...

    async def by_email(self, email: str) -> User | None:
        """The user with this normalized email."""
        ...

    async def by_id(self, user_id: str) -> User | None:
        """The user with this id."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a user's password hash (after a rehash with current parameters)."""
        ...


class ApiKeyRepository(Protocol):
    """API keys, looked up by their stored prefix."""

    async def add(self, key: ApiKeyRecord) -> None:
        """Store a new key."""
        ...

    async def by_lookup(self, lookup: str) -> list[ApiKeyRecord]:
        """Keys whose lookup prefix matches (normally one)."""
        ...

    async def for_owner(self, owner_id: str, agent_id: str | None) -> list[ApiKeyRecord]:
        """An owner's user keys (``agent_id`` None) or the keys of one of its agents, newest first."""
        ...

    async def revoke(self, owner_id: str, key_id: str, at: datetime, agent_id: str | None) -> bool:
        """Revoke an owner's key (of that agent, when given); False when there is no such key."""
        ...


class RefreshTokenRepository(Protocol):
    """Refresh tokens by their hash, grouped in rotation families."""

    async def add(self, record: RefreshRecord) -> None:
        """Store a newly issued token."""
        ...

    async def by_hash(self, token_hash: str) -> RefreshRecord | None:
        """The token with this hash."""
        ...

    async def mark_used(self, token_hash: str, at: datetime) -> bool:
        """Mark a token used; False if it already was (a concurrent or replayed refresh)."""
        ...

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        """Revoke every token of a family."""
        ...


class LoginFailures(Protocol):
    """Failed logins per submitted identifier (known or not, so both behave alike)."""

    async def record(self, identifier: str, at: datetime) -> None:
        """Count one failure."""
        ...

    async def since(self, identifier: str, since: datetime) -> list[datetime]:
        """Failure times after ``since``, oldest first."""
        ...

    async def clear(self, identifier: str) -> None:
        """Forget the failures (after a successful login)."""
        ...


@dataclass(frozen=True, slots=True)
class IdentityStores:
    """The four identity repositories, handed to the service together."""

    users: UserRepository
    api_keys: ApiKeyRepository
    refresh_tokens: RefreshTokenRepository
    failures: LoginFailures


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One asymmetric key of the gateway's key ring (the private half never leaves the process).

    The key that signs is the newest one without ``retires_at``; a key being rotated out keeps
    verifying (and stays in the JWKS) until ``retires_at``, after which it may be pruned.
    """

    kid: str
    algorithm: str  # a JWS "alg": "EdDSA" (Ed25519) or "ES256"
    private_pem: bytes  # PKCS#8 PEM; storage adapters encrypt it at rest
    public_jwk: dict[str, str]  # the public half as a JWK, with kid, alg and use
    created_at: datetime
    retires_at: datetime | None = None


class SigningKeyStore(Protocol):
    """The key ring at rest, shared by every gateway process on one database."""

    async def all(self) -> list[SigningKey]:
        """Every stored key, newest first."""
        ...

    async def add_first(self, key: SigningKey) -> bool:
        """Store ``key`` if the store holds no key yet; False when one exists (another process won)."""
        ...

    async def rotate(self, new: SigningKey, retire_at: datetime, prune_before: datetime) -> None:
        """In one transaction: every key without ``retires_at`` gets ``retire_at``, ``new`` is stored,
        and keys whose ``retires_at`` is before ``prune_before`` are deleted."""
        ...
