"""JSON with exact decimal numbers: a ``Decimal`` is written as the JSON number it is, digit for digit.

orjson and the stdlib encoder would turn a Decimal into a string or a float; the seed's client formats
``price``, ``change24h`` and ``totalValue`` with ``:,.2f``, so they must be JSON numbers, and money must
not pass through a binary float on the way. :func:`dumps` writes ``format(value, "f")`` for a Decimal
(plain digits, no exponent), ints as ints, strings escaped by the stdlib encoder, and refuses floats
(none of the API's values is one), NaN and infinities. A client that parses the numbers as floats gets
the nearest double, as it would from any JSON API; one that parses them as decimals gets them exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal

_string = json.encoder.encode_basestring_ascii


def dumps(value: object) -> bytes:
    """``value`` as compact JSON bytes (see the module doc)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode()


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        out.append(format(value, "f"))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON (floats are refused: send a Decimal)")
