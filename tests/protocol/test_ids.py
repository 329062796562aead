"""Server-generated ids are valid, unique, time-ordered UUIDv7 strings."""

from __future__ import annotations

import time
import uuid

from a2a_gateway.protocol.ids import new_id


def test_ids_are_uuid_v7_unique_and_ordered_by_time() -> None:
    first = new_id()
    time.sleep(0.002)
    ids = [new_id() for _ in range(1000)]
    parsed = uuid.UUID(first)
    assert str(parsed) == first and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == 1000
    assert all(first < later for later in ids)
    millis = int(first.replace("-", "")[:12], 16)
    assert abs(millis - time.time() * 1000) < 5000
