"""Documents with Decimals turned into JSON numbers, as the seeds' clients expect (``toFixed``, ``:.2f``).

An integral Decimal becomes an ``int`` and any other a ``float`` through its shortest string, so
``Decimal("0.05")`` is written ``0.05``. Money inside the engine stays Decimal; only views use this.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def number(value: Decimal) -> int | float:
    """One Decimal as a JSON number."""
    if value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    return float(value)


def plain(doc: Any) -> Any:
    """``doc`` with every Decimal (at any depth) as a JSON number; tuples become lists."""
    if isinstance(doc, Decimal):
        return number(doc)
    if isinstance(doc, dict):
        return {key: plain(value) for key, value in doc.items()}
    if isinstance(doc, list | tuple):
        return [plain(value) for value in doc]
    return doc
