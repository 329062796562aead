"""A trading signal's input: the real Nexgent body, with the seed's spellings accepted.

Nexgent takes ``{tokenAddress, symbol?, signalType, signalStrength (integer 1-5), activationReason?,
source?}``. The seed's examples send ``{"action": "buy", "score": 4}``; ``action`` is read as
``signalType`` and ``score`` as ``signalStrength``. Giving both spellings with different values is an
error, as is any unknown field. Strings are stripped and bounded (Nexgent's limits).

The same publisher, token, type and strength within :data:`DUPLICATE_WINDOW_MS` is a duplicate
(``409 SIGNAL_DUPLICATE``); :func:`dedupe_key` is what is compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agents_examples.trading.engine.domain.config import FieldError

DUPLICATE_WINDOW_MS: Final = 60_000
FIELDS: Final = frozenset(
    {
        "tokenAddress",
        "symbol",
        "signalType",
        "signalStrength",
        "activationReason",
        "source",
        "action",
        "score",
    }
)
_STRENGTHS: Final = frozenset(range(1, 6))  # 4.0 == 4 is in it; 4.5, inf and nan are not
_LIMITS: Final = {"tokenAddress": 255, "signalType": 50, "symbol": 50, "source": 100, "activationReason": 500}


class SignalError(ValueError):
    """A signal body that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(f"{first.field}: {first.message}")


@dataclass(frozen=True, slots=True)
class SignalInput:
    """A validated signal (real Nexgent names)."""

    token_address: str
    symbol: str | None
    signal_type: str
    signal_strength: int
    activation_reason: str | None
    source: str | None

    @property
    def is_sell(self) -> bool:
        """Whether this is a ``sell`` signal (our extension: it closes the position in the token)."""
        return self.signal_type.strip().lower() == "sell"


def _aliased(doc: dict[str, object], name: str, alias: str, errors: list[FieldError]) -> object:
    value, other = doc.get(name), doc.get(alias)
    if value is not None and other is not None and value != other:
        errors.append(FieldError(alias, f"{alias} and {name} disagree; send one of them"))
    return value if value is not None else other


def _text(
    doc: dict[str, object], name: str, value: object, errors: list[FieldError], *, required: bool
) -> str | None:
    if value is None:
        if required:
            errors.append(FieldError(name, f"{name} is required"))
        return None
    limit = _LIMITS[name]
    if not isinstance(value, str) or (required and not value.strip()) or len(value.strip()) > limit:
        errors.append(
            FieldError(
                name,
                f"{name} must be a {'non-empty ' if required else ''}string of at most {limit} characters",
            )
        )
        return None
    return value.strip() or None


def parse_signal(doc: object) -> SignalInput:
    """The signal ``doc`` describes; SignalError lists every problem."""
    if not isinstance(doc, dict):
        raise SignalError([FieldError("", "the signal must be a JSON object")])
    unknown = sorted(str(key) for key in doc if key not in FIELDS)
    errors = [FieldError(name, "unknown field") for name in unknown]
    signal_type = _aliased(doc, "signalType", "action", errors)
    strength = _aliased(doc, "signalStrength", "score", errors)
    token = _text(doc, "tokenAddress", doc.get("tokenAddress"), errors, required=True)
    kind = _text(doc, "signalType", signal_type, errors, required=True)
    symbol = _text(doc, "symbol", doc.get("symbol"), errors, required=False)
    reason = _text(doc, "activationReason", doc.get("activationReason"), errors, required=False)
    source = _text(doc, "source", doc.get("source"), errors, required=False)
    level: int | None = None
    if strength is None:
        errors.append(FieldError("signalStrength", "signalStrength is required"))
    elif isinstance(strength, bool) or not isinstance(strength, int | float) or strength not in _STRENGTHS:
        errors.append(FieldError("signalStrength", "signalStrength must be an integer from 1 to 5"))
    else:
        level = int(strength)
    if errors or token is None or kind is None or level is None:
        raise SignalError(errors or [FieldError("", "invalid signal")])
    return SignalInput(token, symbol, kind, level, reason, source)


def dedupe_key(publisher: str, signal: SignalInput) -> tuple[str, str, str, int]:
    """What two signals share when one duplicates the other: the publisher, the token (exact: Solana
    addresses are case-sensitive), the type (any case) and the strength."""
    return (
        publisher,
        signal.token_address,
        signal.signal_type.strip().lower(),
        signal.signal_strength,
    )
