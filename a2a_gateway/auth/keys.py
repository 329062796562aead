"""API keys: a kind prefix plus 32 random bytes, stored only as a peppered HMAC."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from a2a_gateway.auth.tokens import constant_time_equal, keyed_hash

# Separate kinds so an agent's key cannot act as its owner (no prefix is a prefix of another).
KEY_PREFIXES: Final[Mapping[str, str]] = MappingProxyType(
    {"user": "nex_", "agent": "nxk_", "live": "nx_live_", "sandbox": "nx_test_"}
)
USER_KIND: Final = "user"
AGENT_KIND: Final = "agent"
_BODY_BYTES: Final = 32
_BODY: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 43 base64url characters, no padding
_LOOKUP_CHARS: Final = 8  # of the body kept in clear: enough to find and show a key, too few to guess it
# The largest daily spend cap a nex_ key may carry (credits): far above any purchase, far below BIGINT.
MAX_DAILY_SPEND_CAP: Final = 1_000_000_000_000


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the plaintext is shown once, only ``lookup`` and ``hashed`` are stored."""

    plaintext: str
    lookup: str
    hashed: str


def generate_key(kind: str, pepper: bytes) -> NewKey:
    """A new random key of ``kind`` (a KEY_PREFIXES name); ValueError for an unknown kind."""
    prefix = KEY_PREFIXES.get(kind)
    if prefix is None:
        raise ValueError(f"unknown key kind {kind!r}")
    plaintext = prefix + secrets.token_urlsafe(_BODY_BYTES)
    return NewKey(plaintext=plaintext, lookup=lookup_of(plaintext), hashed=keyed_hash(pepper, plaintext))


def kind_of(key: str) -> str | None:
    """The kind of a presented key, or None when it is not a well-formed key of any kind."""
    for kind, prefix in KEY_PREFIXES.items():
        if key.startswith(prefix) and _BODY.fullmatch(key, len(prefix)):
            return kind
    return None


def lookup_of(key: str) -> str:
    """The stored, displayable head of a well-formed key (its prefix and 8 characters); ValueError if not."""
    kind = kind_of(key)
    if kind is None:
        raise ValueError("not a well-formed API key")
    return key[: len(KEY_PREFIXES[kind]) + _LOOKUP_CHARS]


def key_matches(pepper: bytes, key: str, stored_hash: str) -> bool:
    """Whether ``key`` hashes to ``stored_hash`` under ``pepper``, compared in constant time."""
    return constant_time_equal(keyed_hash(pepper, key), stored_hash)
