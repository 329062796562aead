"""Instants stored as integer microseconds since the epoch: same ordering and filters on every database."""

from __future__ import annotations

from datetime import UTC, datetime


def micros(value: datetime | None) -> int:
    """Microseconds since the epoch (UTC); now when ``value`` is None."""
    value = value or datetime.now(UTC)
    return int(value.timestamp() * 1_000_000)


def from_micros(value: int | None) -> datetime | None:
    """The UTC instant of a stored microsecond count (None stays None)."""
    return None if value is None else datetime.fromtimestamp(value / 1_000_000, UTC)
