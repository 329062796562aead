"""The technical sentiment score behind ``GET /sentiment``: arithmetic on replayed closes, nothing else.

For each instrument the service keeps the closes of its last ``RSI_PERIOD + 1`` bars (15) as the
simulator replays them. From the ``n`` changes between consecutive closes (14 once 15 bars have closed):

- ``rsi`` = 100 x (sum of the gains) / (sum of the gains + sum of the losses), the simple-average
  relative strength index over those changes (50 when the price did not move);
- ``score`` = (rsi - 50) / 50, from -1 (every change down) to +1 (every change up);
- ``momentum`` = percent change from the oldest kept close to the latest;
- ``label``: ``bullish`` when score >= 0.2, ``bearish`` when score <= -0.2, else ``neutral``.

All exact Decimals, rounded half-even to 4 places. With fewer than 2 closes there is no change to
score: ``score``, ``rsi`` and ``momentum`` are null and the label is ``insufficient data``. It says only
how the replayed price moved over the last bars; it is no prediction and no "AI".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

RSI_PERIOD: Final = 14
WINDOW: Final = RSI_PERIOD + 1
BULLISH_AT: Final = Decimal("0.2")
_Q: Final = Decimal("0.0001")
METHOD: Final = (
    f"Simple-average RSI over the changes between the last {WINDOW} replayed bar closes: "
    "rsi = 100 x gains / (gains + losses) (50 if flat); score = (rsi - 50) / 50 in [-1, 1]; "
    "momentum = percent change from the oldest of those closes to the latest; label bullish if "
    "score >= 0.2, bearish if score <= -0.2, else neutral. Rounded half-even to 4 places. "
    "A technical indicator from replayed prices, not a prediction."
)


def _round(value: Decimal) -> Decimal:
    return value.quantize(_Q, rounding=ROUND_HALF_EVEN)


def score(closes: Sequence[int]) -> dict[str, Any]:
    """The score of a run of closes (price units, oldest first), as the module doc defines it."""
    changes = [b - a for a, b in itertools.pairwise(closes)]
    if not changes:
        return {
            "score": None,
            "rsi": None,
            "momentum": None,
            "label": "insufficient data",
            "bars": len(closes),
        }
    gains = sum(c for c in changes if c > 0)
    losses = -sum(c for c in changes if c < 0)
    rsi = Decimal(50) if gains + losses == 0 else Decimal(100) * gains / (gains + losses)
    value = (rsi - 50) / 50
    label = "bullish" if value >= BULLISH_AT else "bearish" if value <= -BULLISH_AT else "neutral"
    momentum = Decimal(closes[-1] - closes[0]) * 100 / closes[0]
    return {
        "score": _round(value),
        "rsi": _round(rsi),
        "momentum": _round(momentum),
        "label": label,
        "bars": len(closes),
    }
