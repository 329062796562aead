"""Identifiers: time-ordered UUIDv7 strings (RFC 9562), made without uuid.UUID objects (hot path).

Ids that grow with time make every insert land at the right edge of the primary-key and foreign-key
B-trees instead of on a random page; measured on SQLite, random UUIDv4 keys cut throughput by a third
once the task tables outgrew the page cache.
"""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits, in canonical string form."""
    raw = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big"))
    raw += os.urandom(10)
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
