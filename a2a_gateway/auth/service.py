"""Identity service: registration, login with lockout, rotating refresh tokens, API keys, authentication."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from a2a_gateway.auth import keys, scopes, signing
from a2a_gateway.auth.models import ApiKeyRecord, IssuedKey, Principal, RefreshRecord, Session, User
from a2a_gateway.auth.passwords import PasswordHashing
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.tokens import AccessTokens, keyed_hash, new_secret_token
from a2a_gateway.errors import AccountLocked, Conflict, Forbidden, InvalidParams, NotFound, Unauthenticated
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.protocol.ids import new_id

BAD_LOGIN = "Invalid email or password"
INTROSPECTION_REFUSED = "Only a registered agent may introspect credentials: authenticate with its nxk_ key"
CONNECT_KINDS = frozenset({"live", "sandbox"})
MAX_KEY_DAYS = 3650


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What an HMAC signature covers, and the signature headers as received."""

    method: str
    path: str
    body: bytes
    timestamp: str | None
    signature: str | None


@dataclass(frozen=True, slots=True)
class Introspection:
    """The answer about one presented credential: inactive, or whom it stands for."""

    active: bool
    subject: str | None = None
    kind: str | None = None  # "session" (an access token) or "user" (a nex_ key)
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    key_id: str | None = None


def _principal(record: ApiKeyRecord) -> Principal:
    return Principal(
        id=record.owner_id,
        kind="user",
        scopes=frozenset(record.scopes),
        key_id=record.id,
        key_kind=record.kind,
        agent_id=record.agent_id,
        daily_spend_cap=record.daily_spend_cap,
    )


def _check_spend_cap(cap: int, kind: str, agent_id: str | None) -> None:
    if kind != keys.USER_KIND or agent_id is not None:
        raise InvalidParams(
            "dailySpendCap is for nex_ user keys only",
            violations=[{"field": "dailySpendCap", "description": "nex_ user keys only"}],
        )
    if isinstance(cap, bool) or not 0 <= cap <= keys.MAX_DAILY_SPEND_CAP:
        raise InvalidParams(
            f"dailySpendCap must be 0 to {keys.MAX_DAILY_SPEND_CAP} credits",
            violations=[{"field": "dailySpendCap", "description": f"0 to {keys.MAX_DAILY_SPEND_CAP}"}],
        )


def _own_scopes(principal: Principal) -> list[str]:
    return [scopes.ALL] if scopes.ALL in principal.scopes else sorted(principal.scopes)


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many failures in which window lock an account, and for how long."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased; InvalidParams when it is not an address."""
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > 254 or any(c.isspace() for c in value):
        raise InvalidParams(
            "email is not a valid address", violations=[{"field": "email", "description": "invalid"}]
        )
    return value


class AuthService:
    """Everything about who a caller is; storage comes in through ports."""

    def __init__(
        self,
        stores: IdentityStores,
        tokens: AccessTokens,
        pepper: bytes,
        *,
        nonces: signing.NonceStore | None = None,
        refresh_ttl: timedelta = timedelta(days=30),
        lockout: LockoutPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        passwords: PasswordHashing | None = None,
    ) -> None:
        self._users = stores.users
        self._keys = stores.api_keys
        self._refresh = stores.refresh_tokens
        self._failures = stores.failures
        self._tokens = tokens
        self._pepper = pepper
        self._refresh_ttl = refresh_ttl
        self._nonces = nonces or signing.MemoryNonceStore()
        self._lockout = lockout or LockoutPolicy()
        self._clock = clock
        self._passwords = passwords or PasswordHashing()

    # --- users and sessions -----------------------------------------------------------------------

    async def register(self, email: str, password: str) -> User:
        """Create a user; Conflict when the email is taken."""
        if not 8 <= len(password) <= 1024:
            raise InvalidParams(
                "password must be 8 to 1024 characters",
                violations=[{"field": "password", "description": "8 to 1024 characters"}],
            )
        address = normalize_email(email)  # before hashing: a bad address costs no Argon2 run
        user = User(
            id=new_id(),
            email=address,
            password_hash=await self._passwords.hash(password),
            created_at=self._clock(),
        )
        if not await self._users.add(user):
            raise Conflict("An account with this email already exists")
        return user

    async def login(self, email: str, password: str) -> Session:
        """A new session; 423 while locked, and the same answer for unknown emails and bad passwords."""
        identifier = email.strip().lower()
        now = self._clock()
        recent = await self._failures.since(identifier, now - self._lockout.window)
        if len(recent) >= self._lockout.max_failures:
            unlock = recent[-1] + self._lockout.lock
            if unlock > now:
                await self._passwords.burn(password)
                raise AccountLocked(
                    "Too many failed logins; try again later", retry_after=(unlock - now).total_seconds()
                )
        user = await self._users.by_email(identifier)
        if user is None:
            await self._passwords.burn(password)
            ok = False
        else:
            ok = await self._passwords.verify(user.password_hash, password)
        if not ok or user is None:
            await self._failures.record(identifier, now)
            raise Unauthenticated(BAD_LOGIN)
        await self._failures.clear(identifier)
        if self._passwords.needs_rehash(user.password_hash):
            # Hashing parameters were raised since this hash was made: upgrade it while we have the password.
            user.password_hash = await self._passwords.hash(password)
            await self._users.set_password_hash(user.id, user.password_hash)
        return await self._open_session(user, new_id())

    async def refresh(self, refresh_token: str) -> Session:
        """Rotate a refresh token; presenting a used one revokes its whole family."""
        now = self._clock()
        record = await self._refresh.by_hash(keyed_hash(self._pepper, refresh_token))
        if record is None or record.revoked_at is not None or record.expires_at <= now:
            raise Unauthenticated("Invalid or expired refresh token")
        if record.used_at is not None or not await self._refresh.mark_used(record.token_hash, now):
            # Reuse means the token leaked (or a client replayed it): end every session of the family.
            await self._refresh.revoke_family(record.family_id, now)
            raise Unauthenticated("Refresh token reuse detected; please log in again")
        user = await self._users.by_id(record.user_id)
        if user is None:
            raise Unauthenticated("Invalid or expired refresh token")
        return await self._open_session(user, record.family_id)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the family of a refresh token (idempotent)."""
        record = await self._refresh.by_hash(keyed_hash(self._pepper, refresh_token))
        if record is not None:
            await self._refresh.revoke_family(record.family_id, self._clock())

    async def me(self, principal: Principal) -> User:
        """The user behind a principal."""
        user = await self._users.by_id(principal.id) if principal.authenticated else None
        if user is None:
            raise Unauthenticated()
        return user

    async def _open_session(self, user: User, family_id: str) -> Session:
        now = self._clock()
        access, access_expires = await self._tokens.issue(user.id, [scopes.ALL])
        plaintext = new_secret_token()
        record = RefreshRecord(
            token_hash=keyed_hash(self._pepper, plaintext),
            family_id=family_id,
            user_id=user.id,
            issued_at=now,
            expires_at=now + self._refresh_ttl,
        )
        await self._refresh.add(record)
        return Session(user, access, access_expires, plaintext, record.expires_at)

    # --- authentication ---------------------------------------------------------------------------

    async def authenticate_access_token(self, token: str) -> Principal:
        """The principal of a valid access JWT."""
        claims = await self._tokens.verify(token)
        return Principal(id=claims.subject, kind="user", scopes=claims.scopes)

    async def authenticate_key(self, presented: str) -> Principal:
        """The principal of a valid, unexpired, unrevoked API key (constant-time hash check)."""
        return _principal(await self._key_record(presented))

    async def authenticate_signed(self, presented: str, request: SignedRequest) -> Principal:
        """An Agent Connect key (``X-NX-Key``): live keys must sign, sandbox keys may; signatures checked."""
        record = await self._key_record(presented)
        if record.kind not in CONNECT_KINDS:
            raise Unauthenticated("X-NX-Key takes an Agent Connect key (nx_live_... or nx_test_...)")
        if request.signature is None and request.timestamp is None and record.kind == "sandbox":
            return _principal(record)
        if request.signature is None and record.kind == "live":
            raise Unauthenticated("Live keys must sign every request (X-NX-Timestamp and X-NX-Signature)")
        await signing.verify_signature(
            secret=self.signing_secret(record),
            method=request.method,
            path=request.path,
            body=request.body,
            timestamp=request.timestamp,
            signature=request.signature,
            key_id=record.id,
            nonces=self._nonces,
            now_ms=int(self._clock().timestamp() * 1000),
        )
        return _principal(record)

    async def introspect(self, principal: Principal, token: str) -> Introspection:
        """What a gateway credential presented to an agent stands for (RFC 7662 in spirit).

        Only a registered agent may ask, with its per-agent key; the answer names the user, the kind and
        scopes, never key material. Access tokens and ``nex_`` user keys can be active; any other
        credential, and any that fails to verify, is inactive.
        """
        if principal.key_kind != keys.AGENT_KIND or principal.agent_id is None:
            raise Forbidden(INTROSPECTION_REFUSED)
        try:
            if keys.kind_of(token) is None:
                claims = await self._tokens.verify(token)
                return Introspection(
                    active=True,
                    subject=claims.subject,
                    kind="session",
                    scopes=tuple(sorted(claims.scopes)),
                    expires_at=claims.expires_at,
                )
            record = await self._key_record(token)
        except Unauthenticated:
            return Introspection(active=False)
        if record.kind != keys.USER_KIND:
            return Introspection(active=False)
        return Introspection(
            active=True,
            subject=record.owner_id,
            kind="user",
            scopes=tuple(sorted(record.scopes)),
            expires_at=record.expires_at,
            key_id=record.id,
        )

    def csrf_token(self, access_token: str) -> str:
        """The CSRF token bound to a browser session (stateless: derived from the session's token)."""
        return keyed_hash(self._pepper, "csrf:" + access_token)[:40]

    def signing_secret(self, record: ApiKeyRecord) -> str:
        """The HMAC secret of a connect key, derived from the pepper: shown once and never stored."""
        digest = hmac.new(self._pepper, b"connect-secret:" + record.hashed.encode(), hashlib.sha256).digest()
        return "nxs_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def _key_record(self, presented: str) -> ApiKeyRecord:
        if keys.kind_of(presented) is None:
            raise Unauthenticated("Invalid API key")
        now = self._clock()
        for record in await self._keys.by_lookup(keys.lookup_of(presented)):
            if keys.key_matches(self._pepper, presented, record.hashed):
                if not record.usable(now):
                    raise Unauthenticated("API key is expired or revoked")
                return record
        raise Unauthenticated("Invalid API key")

    # --- API keys ---------------------------------------------------------------------------------

    async def create_key(
        self,
        principal: Principal,
        name: str,
        wanted: list[str] | None,
        expires_in_days: int | None,
        *,
        kind: str = "user",
        agent_id: str | None = None,
        daily_spend_cap: int | None = None,
    ) -> IssuedKey:
        """Issue a key for the caller (``keys:write``); it cannot grant scopes the caller does not hold.

        Without ``wanted`` the key gets the caller's own scopes. A ``nex_`` user key may carry a
        ``daily_spend_cap``: the credits its priced calls may hold or spend per UTC day (billing/caps.py).
        """
        if not principal.authenticated:
            raise Unauthenticated()
        principal.require("keys:write")
        granted = scopes.validate(wanted if wanted is not None else _own_scopes(principal))
        missing = [s for s in granted if not principal.allows(s)]
        if missing:
            raise Forbidden(f"Cannot grant scopes you do not hold: {', '.join(missing)[:200]}")
        if not name.strip() or len(name) > 100:
            raise InvalidParams(
                "name must be 1 to 100 characters", violations=[{"field": "name", "description": "1-100"}]
            )
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_KEY_DAYS:
            raise InvalidParams(
                f"expiresInDays must be 1 to {MAX_KEY_DAYS}",
                violations=[{"field": "expiresInDays", "description": f"1 to {MAX_KEY_DAYS}"}],
            )
        if daily_spend_cap is not None:
            _check_spend_cap(daily_spend_cap, kind, agent_id)
        now = self._clock()
        fresh = keys.generate_key(kind, self._pepper)
        record = ApiKeyRecord(
            id=new_id(),
            owner_id=principal.id,
            kind=kind,
            name=name.strip(),
            lookup=fresh.lookup,
            hashed=fresh.hashed,
            scopes=granted,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            agent_id=agent_id,
            daily_spend_cap=daily_spend_cap,
        )
        await self._keys.add(record)
        secret = self.signing_secret(record) if kind in CONNECT_KINDS else None
        return IssuedKey(record=record, plaintext=fresh.plaintext, secret=secret)

    async def list_keys(self, principal: Principal, agent_id: str | None = None) -> list[ApiKeyRecord]:
        """The caller's user keys, or the keys of one of its agents (no key material; ``keys:read``)."""
        if not principal.authenticated:
            raise Unauthenticated()
        principal.require("keys:read")
        return await self._keys.for_owner(principal.id, agent_id)

    async def revoke_key(self, principal: Principal, key_id: str, agent_id: str | None = None) -> None:
        """Revoke a key of the caller (``keys:write`` and every scope it holds); another's is NotFound."""
        if not principal.authenticated:
            raise Unauthenticated()
        principal.require("keys:write")
        target = next((k for k in await self._keys.for_owner(principal.id, agent_id) if k.id == key_id), None)
        if target is None:
            raise NotFound(f"API key {key_id[:64]} not found")
        if not scopes.covers(principal.scopes, target.scopes):
            # Otherwise a narrow key could take the owner's full-access keys out of service.
            raise Forbidden("Cannot revoke a key with scopes you do not hold")
        if not await self._keys.revoke(principal.id, key_id, self._clock(), agent_id):
            raise NotFound(f"API key {key_id[:64]} not found")
