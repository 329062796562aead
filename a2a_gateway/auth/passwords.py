"""Password hashing with Argon2id (argon2-cffi defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER: Final = PasswordHasher()

# A hash made with the same parameters as _HASHER (a test pins this), so verifying against it costs what a
# real verification costs and an unknown user cannot be told apart from a wrong password by timing.
_DUMMY_HASH: Final = (
    "$argon2id$v=19$m=65536,t=3,p=4$W+8lNKgGZXlW8rIPd6vmIg$uvgqGaxIdIz5wAqTF9KkHoJDi3BjFi/5t7uS2dqvILQ"
)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` in PHC string format, with a fresh random salt."""
    return _HASHER.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches ``hashed``; False (never an exception) on mismatch or a malformed hash."""
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_verify(password: str) -> None:
    """Spend the time of one verification without a real hash (for logins of unknown users)."""
    verify_password(_DUMMY_HASH, password)


def needs_rehash(hashed: str) -> bool:
    """Whether ``hashed`` was made with other parameters than today's and should be replaced on next login."""
    try:
        return _HASHER.check_needs_rehash(hashed)
    except InvalidHashError:
        return True
