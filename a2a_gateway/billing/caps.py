"""Daily spend caps of ``nex_`` user keys: what a capped key has spent today, and the refusal.

A key's day is the UTC day. Its counter is what the holds made with the key that day hold or have
captured: a hold adds its price (in the hold's own transaction, refused when it would pass the cap), a
release takes it off again (the call was not paid, so the cap is given back), a capture leaves it (the
credits are spent). A hold released on a later day gives back to the day it was made on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from a2a_gateway.auth.keys import MAX_DAILY_SPEND_CAP
from a2a_gateway.errors import GatewayError

__all__ = ["MAX_DAILY_SPEND_CAP", "SpendCap", "SpendCapReached", "day_of"]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SpendCap:
    """The cap a hold counts against: the key it was made with and the credits it may spend a day."""

    key_id: str
    limit: int


class SpendCapReached(GatewayError):
    """The key's daily spend cap does not leave room for this call: nothing was held, stored or sent."""

    reason = "SPEND_CAP_REACHED"
    default_message = "This key's daily spend cap is reached"

    def __init__(self, *, cap: int, spent: int, price: int) -> None:
        super().__init__(
            f"The call costs {price} credits; this key may spend {cap} a day and {spent} are spent or held "
            "today (UTC)",
            metadata={"cap": str(cap), "spent": str(spent), "price": str(price)},
        )
        self.cap = cap
        self.spent = spent
        self.price = price


def day_of(at: datetime) -> int:
    """The UTC day of an instant, as days since 1970-01-01 (how the counters are keyed)."""
    return (at.astimezone(UTC) - _EPOCH).days
