"""What a caller lets one call cost: ``metadata.maxPrice``, checked before anything is held."""

from __future__ import annotations

from typing import Any, Final

from a2a_gateway.errors import GatewayError, InvalidParams

MAX_PRICE_KEY: Final = "maxPrice"


class PriceAboveLimit(GatewayError):
    """The call costs more than the caller's ``maxPrice``: refused before anything was held or sent."""

    reason = "PRICE_ABOVE_LIMIT"
    default_message = "The call costs more than maxPrice allows"

    def __init__(self, *, price: int, limit: int) -> None:
        super().__init__(
            f"The call costs {price} credits, more than maxPrice {limit}",
            metadata={"price": str(price), "maxPrice": str(limit)},
        )


def max_price(metadata: dict[str, Any]) -> int | None:
    """The caller's cap on this call's price, if it set one; InvalidParams when it is not a whole number."""
    value = metadata.get(MAX_PRICE_KEY)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParams(
            "metadata.maxPrice must be a whole number of credits, 0 or more",
            violations=[{"field": "metadata.maxPrice", "description": "integer >= 0"}],
        )
    return value
