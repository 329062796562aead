"""Agent Connect HMAC request signing: HMAC-SHA256(secret, timestamp + METHOD + path + body)."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import time
from collections.abc import Callable
from typing import Final, Protocol

from a2a_gateway.auth.tokens import constant_time_equal
from a2a_gateway.errors import Unauthenticated

HEADER_KEY: Final = "X-NX-Key"
HEADER_TIMESTAMP: Final = "X-NX-Timestamp"
HEADER_SIGNATURE: Final = "X-NX-Signature"
_MAX_TIMESTAMP_DIGITS: Final = 15  # milliseconds until the year 33658; longer is junk, not a clock


def sign(secret: str, timestamp_ms: int | str, method: str, path: str, body: bytes | str = b"") -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}{METHOD}{path}{body}"`` under ``secret``."""
    head = f"{timestamp_ms}{method.upper()}{path}".encode()
    # Appending the raw body bytes equals encoding the decoded text for any UTF-8 body, and stays total (a
    # bad signature, not a crash) when a caller sends bytes that are not UTF-8.
    payload = head + (body.encode() if isinstance(body, str) else body)
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signed_headers(
    key: str, secret: str, method: str, path: str, body: bytes | str = b"", *, now_ms: int | None = None
) -> dict[str, str]:
    """The three X-NX headers authenticating one request (``body`` must be exactly the bytes sent)."""
    timestamp = str(time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    return {
        HEADER_KEY: key,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: sign(secret, timestamp, method, path, body),
    }


class NonceStore(Protocol):
    """Remembers signatures already accepted, so a captured request cannot be replayed."""

    async def remember(self, key_id: str, signature: str, ttl_seconds: float) -> bool:
        """Atomically record a signature; False if it was already seen within its TTL."""
        ...


class MemoryNonceStore(NonceStore):
    """A process-local NonceStore holding at most ``max_entries`` signatures."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        # Ordered by expiry so purging and eviction cost O(log n); entries whose key was re-remembered
        # later are stale and skipped (their expiry no longer matches _expiry).
        self._heap: list[tuple[float, tuple[str, str]]] = []

    async def remember(self, key_id: str, signature: str, ttl_seconds: float) -> bool:
        """Record ``signature`` for ``key_id``; False if it is already held and not expired."""
        now = self._clock()
        entry = (key_id, signature)
        self._drop_until(lambda expires: expires <= now)
        if entry in self._expiry:
            return False
        # Full of live entries: drop the ones closest to expiry (the oldest, as every caller uses one TTL).
        self._drop_until(lambda _: len(self._expiry) >= self._max)
        expires = now + ttl_seconds
        self._expiry[entry] = expires
        heapq.heappush(self._heap, (expires, entry))
        return True

    @property
    def size(self) -> int:
        """How many entries the store holds now."""
        return len(self._expiry)

    def _drop_until(self, should_drop: Callable[[float], bool]) -> None:
        while self._heap and should_drop(self._heap[0][0]):
            expires, entry = heapq.heappop(self._heap)
            if self._expiry.get(entry) == expires:
                del self._expiry[entry]


async def verify_signature(
    *,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    key_id: str,
    nonces: NonceStore,
    now_ms: int,
    window_ms: int = 30_000,
) -> None:
    """Accept a signed request or raise Unauthenticated saying (safely) why not."""
    if not timestamp or not signature:
        raise Unauthenticated("Missing request signature headers")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise Unauthenticated("Malformed request timestamp")
    if abs(now_ms - int(timestamp)) > window_ms:
        raise Unauthenticated("Request timestamp is outside the allowed window")
    expected = sign(secret, timestamp, method, path, body)
    if not constant_time_equal(signature.lower(), expected):
        raise Unauthenticated("Invalid request signature")
    # Checked last so unsigned junk cannot fill the store. Keyed by the canonical signature so re-sending
    # it in upper case is still a replay. A request stays acceptable for 2 x window (either side of now).
    if not await nonces.remember(key_id, expected, ttl_seconds=2 * window_ms / 1000):
        raise Unauthenticated("Replayed request")
