"""Password hashing with Argon2id, run in worker threads so a login never blocks the event loop."""

from __future__ import annotations

import asyncio
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi defaults: the RFC 9106 low-memory profile (64 MiB, t=3, p=4).
_HASHER: Final = PasswordHasher()

# A hash made with the same parameters as _HASHER (a test pins this), so verifying against it costs what a
# real verification costs and an unknown user cannot be told apart from a wrong password by timing.
_DUMMY_HASH: Final = (
    "$argon2id$v=19$m=65536,t=3,p=4$W+8lNKgGZXlW8rIPd6vmIg$uvgqGaxIdIz5wAqTF9KkHoJDi3BjFi/5t7uS2dqvILQ"
)
# Each Argon2 computation holds its memory cost (64 MiB by default) for its duration: a few at a time keep
# both cores busy without letting a burst of logins claim gigabytes.
DEFAULT_CONCURRENCY: Final = 2


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` in PHC string format, with a fresh random salt (blocking)."""
    return _HASHER.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches ``hashed``; False (never an exception) on mismatch or a malformed hash."""
    return _verify(_HASHER, hashed, password)


def burn_verify(password: str) -> None:
    """Spend the time of one verification without a real hash (for logins of unknown users; blocking)."""
    verify_password(_DUMMY_HASH, password)


def needs_rehash(hashed: str) -> bool:
    """Whether ``hashed`` was made with other parameters than today's and should be replaced on next login."""
    return _needs_rehash(_HASHER, hashed)


def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _needs_rehash(hasher: PasswordHasher, hashed: str) -> bool:
    try:
        return hasher.check_needs_rehash(hashed)
    except InvalidHashError:
        return True


class PasswordHashing:
    """Argon2id off the event loop: each hash or verification runs in a worker thread, a few at a time.

    The hasher (and so the cost) is injected: the gateway uses argon2-cffi's defaults, tests a cheap one.
    """

    def __init__(
        self, hasher: PasswordHasher | None = None, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._hasher = hasher or _HASHER
        self._slots = asyncio.Semaphore(concurrency)
        # The default hasher's dummy hash is pinned; another hasher gets one made with its own parameters.
        self._dummy: str | None = _DUMMY_HASH if hasher is None else None

    async def hash(self, password: str) -> str:
        """A fresh Argon2id hash of ``password``."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str, password: str) -> bool:
        """Whether ``password`` matches ``hashed`` (False for a mismatch or a malformed hash)."""
        async with self._slots:
            return await asyncio.to_thread(_verify, self._hasher, hashed, password)

    async def burn(self, password: str) -> None:
        """Spend one verification's time and memory, so an unknown email answers as slowly as a real one."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with other parameters than this hasher's (cheap: no hashing)."""
        return _needs_rehash(self._hasher, hashed)
